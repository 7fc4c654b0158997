"""The budgets of ``ablate train`` and the checks of a request, before any work.

Three budgets share one code path and differ only in their numbers:

- ``quick``: tiny everything, for tests (about a minute on a CPU);
- ``small``: a 2-core CPU in about an hour for all three claims (hidden 96, 600 steps of batch 32
  per arm, 3 seeds; docs/ablations.md has the measured wall time);
- ``gpu``: one H100 in about 10 minutes (the recipe's width 192, 1,200 steps of batch 128, bf16;
  an estimate, not measured: docs/ablations.md says so).

Every arm trains ``steps`` steps (equal budgets) and is evaluated ``evals`` times, evenly spaced;
the stage-1 runs (class-conditional, for claim 2's arms) train ``stage1_steps`` before that.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from bench.ablate.arms import CLAIMS
from bench.errors import BenchError, check_out_folder, check_range
from bench.world.components import check_components


@dataclass(frozen=True)
class TrainAblationBudget:
    n_train: int  # 64 px training images (the recipe's dataset, seed 0)
    n_val: int  # held-out images after them (val_mse, text_gain)
    hidden: int
    depth: int
    heads: int
    patch_size: int
    batch_size: int
    steps: int  # stage-2 steps of every arm
    stage1_steps: int  # class-conditional steps of each stage-1 run
    evals: int  # evaluations per arm, at steps/evals, 2·steps/evals, ..., steps
    seeds: int  # seeds per arm (0, 1, ...)
    prompts_per_category: int  # evaluation prompts per category (single, color, texture, spatial)
    sample_seeds: int  # images per evaluation prompt
    sample_steps: int  # sampler steps (SDE-DPM-Solver++, guidance 2)
    lr: float = 3e-4  # the recipe's
    warmup_steps: int = 50
    mixed_precision: str = "no"
    workers: int = 1  # processes that render the dataset and score images with the oracle

    def eval_steps(self) -> list[int]:
        return [self.steps * k // self.evals for k in range(1, self.evals + 1)]


BUDGETS = {
    "quick": TrainAblationBudget(n_train=64, n_val=16, hidden=48, depth=1, heads=2, patch_size=4, batch_size=8,
                                 steps=4, stage1_steps=2, evals=2, seeds=2, prompts_per_category=1, sample_seeds=1,
                                 sample_steps=2),
    "small": TrainAblationBudget(n_train=2000, n_val=128, hidden=96, depth=4, heads=3, patch_size=2, batch_size=32,
                                 steps=600, stage1_steps=300, evals=3, seeds=3, prompts_per_category=8,
                                 sample_seeds=1, sample_steps=20),
    "gpu": TrainAblationBudget(n_train=8000, n_val=512, hidden=192, depth=4, heads=3, patch_size=2, batch_size=128,
                               steps=1200, stage1_steps=300, evals=3, seeds=3, prompts_per_category=16,
                               sample_seeds=1, sample_steps=20, mixed_precision="bf16", workers=8),
}


def parse_claims(text: str) -> list[int]:
    """'1,3' → [1, 3]; BenchError naming --claims for anything else."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts or not all(p in {str(n) for n in CLAIMS} for p in parts):
        raise BenchError(f"--claims must be a comma-separated list of {', '.join(map(str, CLAIMS))} (e.g. 1,3), "
                         f"got {text!r}")
    return sorted({int(p) for p in parts})


def make_budget(name: str, *, steps: int | None = None, seeds: int | None = None,
                workers: int | None = None) -> TrainAblationBudget:
    """The named budget with the command line's overrides, every number checked (BenchError naming the option)."""
    if name not in BUDGETS:
        raise BenchError(f"--budget must be one of {', '.join(BUDGETS)}, got {name!r}")
    b = BUDGETS[name]
    if steps is not None:
        check_range("--steps", steps, b.evals, 10_000_000, whole=True,
                    why=f"each arm is evaluated {b.evals} times, evenly spaced")
        if steps % b.evals:
            raise BenchError(f"--steps {steps} must be a multiple of {b.evals}, the evaluations per arm of budget "
                             f"{name}")
        b = dataclasses.replace(b, steps=int(steps))
    if seeds is not None:
        check_range("--seeds", seeds, 1, 1000, whole=True)
        b = dataclasses.replace(b, seeds=int(seeds))
    if workers is not None:
        check_range("--workers", workers, 1, 256, whole=True)
        b = dataclasses.replace(b, workers=int(workers))
    return b


def check_request(out, budget: TrainAblationBudget, components, threads: int | None) -> dict:
    """The request's checks, before any work: ``--out`` a folder (or new), ``--components`` a pipeline
    folder, ``--threads`` in range, and an ``--out`` that already holds an ablation made with the same
    budget and components. Returns the settings to record (``settings.json``)."""
    from pixart.errors import read_json

    out = check_out_folder(out, "--out")
    check_components(Path(components))
    if threads is not None:
        check_range("--threads", threads, 1, 1024, whole=True)
    settings = {"budget": {k: v for k, v in dataclasses.asdict(budget).items() if k not in ("seeds", "workers")},
                "components": str(Path(components).resolve())}
    earlier = out / "settings.json"
    if earlier.is_file():
        old = read_json(earlier, BenchError, "ablation settings")
        if old != settings:
            changed = sorted(k for k in {**old.get("budget", {}), **settings["budget"]}
                             if old.get("budget", {}).get(k) != settings["budget"].get(k))
            if old.get("components") != settings["components"]:
                changed.append("components")
            raise BenchError(f"--out {out} holds a training ablation with other settings ({', '.join(changed)}); "
                             "resume it with its own --budget, --steps and --components, or use another --out")
    return settings
