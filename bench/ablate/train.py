"""``pixart-bench ablate train``: the paper's three training claims tested on the shapes world.

One run of ``run_train_ablation(out, budget, claims)``:

1. **Data, once, shared by every arm** (``out/data64``, ``out/components``, ``out/cache64``): the
   recipe's 64 px dataset (``bench.world.dataset.make_dataset``, seed 0), its first ``n_train``
   images for training and the next ``n_val`` held out; the tokenizer, T5 and VAE copied from a
   pipeline folder (``--components``, default the bundled reference: ``reuse_components``); three
   manifests (the recipe's captions, the sparse captions, the held-out images with the suites'
   phrasing) and one feature cache for all of them (``bench.world.reference.extract_features``).
2. **Runs, sequentially, seed by seed** (``out/runs/NAME/seed-S``): the stage-1 runs that the
   chosen arms start from, then every arm (``bench.ablate.arms``), each with ``pixart.train.train``
   through a ``TrainConfig`` (the recipe's stage 2 with the budget's sizes). An arm trains in
   ``evals`` segments; after each, its checkpoint's EMA weights are evaluated
   (``bench.ablate.evaluate``) into ``eval/step-NNNNNNN.json``.
3. **Results** (``out/ablate_train.json``, ``out/ablate_train.csv``, ``out/plots/claimN.{png,svg}``):
   the curves, each claim's comparisons and verdicts (``bench.ablate.verdicts``) and claim 1's
   costs (parameters, seconds per step, peak GPU memory). The JSON and CSV are written after every
   seed (the results so far), the plots at the end.

Resumable: a finished run (``done.json``) is skipped, so running the command again trains
nothing; an interrupted one resumes from its last checkpoint (the trainer's resume sees the
batches and noise of an uninterrupted run), or, when its files do not fit the plan (a checkpoint
past an evaluation that is missing), is set aside and restarted. Adding seeds or claims to a
finished ``out`` trains only the new runs; another budget or components is refused.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.ablate.arms import ARMS, STAGE1, Arm, arms_for, copy_shared, reparam, stage1_runs_for
from bench.ablate.train_budget import TrainAblationBudget, check_request
from bench.errors import BenchError
from pixart.errors import read_json
from pixart.files import package_versions, write_json_atomic, write_text_atomic

MAX_LENGTH = 32  # the recipe's text length (ReferenceBudget.max_length)
RESULTS, CSV = "ablate_train.json", "ablate_train.csv"


def _manifest_rows(data: Path, b: TrainAblationBudget) -> dict[str, list[dict]]:
    """The three manifests' rows: train (recipe captions), train-sparse, val (the suites' phrasing)."""
    from bench.world.dataset import medium_caption
    from bench.world.scene import Scene

    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines() if line.strip()]

    def item(r, caption):
        return {"path": r["path"], "caption": caption, "width": r["width"], "height": r["height"], "class": r["class"]}

    train, val = rows[: b.n_train], rows[b.n_train : b.n_train + b.n_val]
    return {"train": [item(r, r["caption"]) for r in train],
            "train-sparse": [item(r, r["sparse_caption"]) for r in train],
            "val": [item(r, medium_caption(Scene.from_dict(r["scene"]))) for r in val]}


def prepare(out: Path, b: TrainAblationBudget, components: Path, sparse: bool, log) -> dict[str, Path]:
    """Dataset, components, manifests and the feature cache in ``out`` (each kept when already there)."""
    from bench.world.components import ensure_components
    from bench.world.dataset import make_dataset
    from bench.world.reference import ReferenceBudget, extract_features

    data = out / "data64"
    make_dataset(data, b.n_train + b.n_val, 64, seed=0, workers=b.workers)  # the same files with any workers
    ensure_components(out, ReferenceBudget(), log, source=components)
    manifests = {}
    for name, items in _manifest_rows(data, b).items():
        manifests[name] = data / f"{name}.jsonl"
        text = "".join(json.dumps(it) + "\n" for it in items)
        if not manifests[name].is_file() or manifests[name].read_text() != text:
            write_text_atomic(manifests[name], text)
    for name in ("train", "val") + (("train-sparse",) if sparse else ()):
        extract_features(base_config(out, b, manifests[name], seed=0))
    return manifests


def base_config(out: Path, b: TrainAblationBudget, manifest: Path, seed: int, adaln: str = "single"):
    """The recipe's 64 px stage at the budget's sizes: the ``TrainConfig`` every run starts from."""
    from pixart.train import DataConfig, OptimConfig, TrainConfig

    comp = str(out / "components")
    t5_dim = json.loads((out / "components" / "text_encoder" / "config.json").read_text())["d_model"]
    model = {"hidden_size": b.hidden, "depth": b.depth, "num_heads": b.heads, "patch_size": b.patch_size,
             "caption_channels": t5_dim, "model_max_length": MAX_LENGTH, "input_size": 16, "adaln": adaln}
    return TrainConfig(model="S-2-256", model_overrides=model, t5=comp, vae=comp, max_length=MAX_LENGTH, seed=seed,
                       tensorboard=False, mixed_precision=b.mixed_precision, batch_size=b.batch_size,
                       optim=OptimConfig(lr=b.lr, weight_decay=0.0, grad_clip=1.0, warmup_steps=b.warmup_steps),
                       ema_decay=0.999, keep_checkpoints=1000, log_every=10,
                       data=DataConfig(manifest=str(manifest), features=str(out / "cache64"), resolution=64,
                                       preload_features=True))


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("step-"))


def _checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step-*"))


def _train_to(cfg, steps: int, progress: bool) -> float | None:
    """Train ``cfg`` (resuming) up to ``steps``; the peak GPU memory in bytes (None on a CPU)."""
    from pixart.train import train

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    train(replace(cfg, max_steps=steps), resume=True, progress=progress)
    return float(torch.cuda.max_memory_allocated()) if cuda else None


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _cost(run: Path, steps: int, peak) -> dict:
    from pixart.checkpoints import load_transformer

    seconds = [m["sec_per_step"] for m in _metrics(run) if m["step"] <= steps]
    model = load_transformer(_checkpoints(run)[-1] / "ema")
    return {"parameters": sum(p.numel() for p in model.parameters()), "train_seconds": sum(seconds),
            "sec_per_step": statistics.median(seconds) if seconds else None, "peak_memory_bytes": peak}


def _set_aside(run: Path, why: str, log) -> None:
    n = 1
    while run.with_name(f"{run.name}.set-aside-{n}").exists():
        n += 1
    log(f"{run}: {why}; set aside as {run.name}.set-aside-{n}, starting it again")
    run.rename(run.with_name(f"{run.name}.set-aside-{n}"))


def run_stage1(out: Path, b: TrainAblationBudget, name: str, seed: int, manifests, progress: bool) -> dict:
    """The class-conditional stage 1 of adaLN ``STAGE1[name]`` for ``seed``; its record (``done.json``)."""
    from bench.world.scene import NUM_CLASSES

    run = out / "runs" / name / f"seed-{seed}"
    if (run / "done.json").is_file():
        return read_json(run / "done.json", BenchError, "run record")
    cfg = replace(base_config(out, b, manifests["train"], seed, STAGE1[name]), output_dir=str(run),
                  class_conditional=True, num_classes=NUM_CLASSES, save_every=b.stage1_steps)
    peak = _train_to(cfg, b.stage1_steps, progress)
    record = {"run": name, "seed": seed, "steps": b.stage1_steps, **_cost(run, b.stage1_steps, peak)}
    write_json_atomic(run / "done.json", record)
    return record


def init_weights(out: Path, arm: Arm, seed: int, run: Path) -> str | None:
    """The weights ``arm`` starts from for ``seed``: None (scratch), stage 1's EMA, or its conversion
    (written once to ``run/init``)."""
    if arm.stage1 is None:
        return None
    from pixart.checkpoints import load_transformer, save_transformer

    parent = _checkpoints(out / "runs" / arm.stage1 / f"seed-{seed}")[-1] / "ema"
    if arm.init == "stage1":
        return str(parent)
    target = run / "init"
    if not (target / "config.json").is_file():
        block = load_transformer(parent)
        model = reparam(block) if arm.init == "dit-reparam" else copy_shared(block, seed=seed)
        tmp = run / "init.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_transformer(model, tmp, "native")
        tmp.rename(target)
    return str(target)


def run_arm(out: Path, b: TrainAblationBudget, arm: Arm, seed: int, manifests, evaluator, progress: bool, log) -> dict:
    """Train and evaluate one arm for one seed, resuming what is there; its record (``done.json``)."""
    run = out / "runs" / arm.name / f"seed-{seed}"
    if (run / "done.json").is_file():
        return read_json(run / "done.json", BenchError, "run record")
    steps = b.eval_steps()
    done = [s for s in steps if (run / "eval" / f"step-{s:07d}.json").is_file()]
    last = _step_of(_checkpoints(run)[-1]) if _checkpoints(run) else 0
    pending = [s for s in steps if s not in done]
    if run.exists() and (done != steps[: len(done)] or (pending and last > pending[0])):
        _set_aside(run, "its checkpoints and evaluations do not fit the plan", log)
    run.mkdir(parents=True, exist_ok=True)
    manifest = manifests["train-sparse" if arm.captions == "sparse" else "train"]
    cfg = replace(base_config(out, b, manifest, seed, arm.adaln), output_dir=str(run),
                  init_from=init_weights(out, arm, seed, run), save_every=steps[0])
    peaks = []
    for step in steps:
        target = run / "eval" / f"step-{step:07d}.json"
        if target.is_file():
            continue
        peaks.append(_train_to(cfg, step, progress))
        t0 = time.perf_counter()
        record = evaluator(run / "checkpoints" / f"step-{step:07d}" / "ema", run / "eval" / f"step-{step:07d}")
        losses = [m["loss"] for m in _metrics(run) if step - (steps[0] // 2) < m["step"] <= step]
        record.update(step=step, train_loss=sum(losses) / len(losses) if losses else None,
                      eval_seconds=time.perf_counter() - t0)
        write_json_atomic(target, record)
        for old in _checkpoints(run)[:-1]:  # evaluated: only the latest is needed to go on
            shutil.rmtree(old)
    peak = max((p for p in peaks if p is not None), default=None)
    record = {"run": arm.name, "seed": seed, "steps": b.steps, "init": arm.init, "captions": arm.captions,
              "adaln": arm.adaln, **_cost(run, b.steps, peak),
              "eval_seconds": sum(read_json(run / "eval" / f"step-{s:07d}.json", BenchError, "evaluation record")
                                  ["eval_seconds"] for s in steps)}
    write_json_atomic(run / "done.json", record)
    return record


def collect(out: Path, arms: list[str], seeds: list[int], b: TrainAblationBudget) -> dict:
    """``curves[arm][seed]``: the evaluation records (less per-image lists) of every finished run."""
    curves = {}
    for arm in arms:
        for seed in seeds:
            run = out / "runs" / arm / f"seed-{seed}"
            if (run / "done.json").is_file():
                records = [read_json(run / "eval" / f"step-{s:07d}.json", BenchError, "evaluation record")
                           for s in b.eval_steps()]
                curves.setdefault(arm, {})[seed] = [{k: v for k, v in r.items() if k != "per_image"} for r in records]
    return curves


def costs_of(records: list[dict]) -> dict:
    """Per arm: parameters, the median seconds per step and peak GPU memory across its seeds."""
    out = {}
    for arm in {r["run"] for r in records}:
        rs = [r for r in records if r["run"] == arm]
        per_step = [r["sec_per_step"] for r in rs if r.get("sec_per_step")]
        peaks = [r["peak_memory_bytes"] for r in rs if r.get("peak_memory_bytes")]
        out[arm] = {"parameters": rs[0]["parameters"],
                    "sec_per_step": statistics.median(per_step) if per_step else None,
                    "peak_memory_bytes": max(peaks) if peaks else None,
                    "memory_note": None if peaks else "not measured on a CPU here: see `pixart-bench ablate cost`"}
    return out


def write_results(out: Path, settings: dict, claims: list[int], seeds: list[int], records: list[dict],
                  wall: float, plots: bool = True) -> dict:
    from bench.ablate.curves import plot_claims, write_csv
    from bench.ablate.verdicts import summarise

    arms = arms_for(claims)
    b = TrainAblationBudget(**settings["budget"], seeds=len(seeds))
    curves = collect(out, arms, seeds, b)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    result = {"settings": {**settings, "claims": claims, "seeds": seeds, "device": device,
                           "threads": torch.get_num_threads()},
              "date": date.today().isoformat(), "versions": package_versions(("pixart-bench", "torch", "diffusers")),
              "arms": {a: asdict(ARMS[a]) for a in arms},
              "runs": [r for r in records if r["run"] in ARMS], "stage1": [r for r in records if r["run"] in STAGE1],
              "curves": {a: {str(s): v for s, v in c.items()} for a, c in curves.items()},
              "claims": summarise(curves, claims, costs_of([r for r in records if r["run"] in ARMS])),
              "wall_seconds": wall}
    write_csv(out / CSV, curves)
    if plots:
        result["plots"] = [str(p.relative_to(out)) for p in plot_claims(
            curves, claims, out / "plots", f"{len(seeds)} seeds, mean and bootstrap 95% CI across seeds; {device}")]
    write_json_atomic(out / RESULTS, result)
    return result


def run_train_ablation(out, budget: TrainAblationBudget, claims: list[int], *, components, threads: int | None = None,
                       progress: bool = True, log=print) -> dict:
    """The whole ablation (see the module): returns the ``ablate_train.json`` record. Bad input is a
    ``BenchError`` before anything is written. ``threads``: torch's CPU threads while it runs."""
    t0 = time.perf_counter()
    out, components = Path(out), Path(components)
    settings = check_request(out, budget, components, threads)
    if not claims:
        raise BenchError("--claims: choose at least one claim (1, 2, 3)")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(out, budget, claims, settings, components, progress, log, t0)
    finally:
        torch.set_num_threads(before)  # the caller's setting (a test session, a notebook) is left as it was


def _run(out: Path, budget: TrainAblationBudget, claims: list[int], settings: dict, components: Path, progress: bool,
         log, t0: float) -> dict:
    from bench.ablate.evaluate import Evaluator
    from bench.world.demo import SUITES
    from pixart.data import read_manifest

    arms = arms_for(claims)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "settings.json", settings)
    manifests = prepare(out, budget, components, "sparse" in arms, log)
    seeds = list(range(budget.seeds))
    plan = [(name, s) for s in seeds for name in stage1_runs_for(arms) + arms]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    records = []
    with Evaluator(out / "components", MAX_LENGTH, read_manifest(manifests["val"]), out / "cache64", SUITES,
                   per_category=budget.prompts_per_category, sample_seeds=budget.sample_seeds,
                   sample_steps=budget.sample_steps, device=device, workers=budget.workers) as evaluator:
        bar = tqdm(plan, desc="ablation runs", unit="run", disable=not progress)
        for k, (name, seed) in enumerate(bar):
            bar.set_postfix_str(f"{name} seed {seed}")
            if name in STAGE1:
                records.append(run_stage1(out, budget, name, seed, manifests, progress))
            else:
                records.append(run_arm(out, budget, ARMS[name], seed, manifests, evaluator, progress, log))
            if k + 1 == len(plan) or plan[k + 1][1] != seed:  # a seed is complete: results so far (plots at the end)
                result = write_results(out, settings, claims, seeds[: seed + 1], records, time.perf_counter() - t0,
                                       plots=k + 1 == len(plan))
    for number, claim in result["claims"].items():
        log(f"claim {number}: {claim['verdict']} ({claim['title']})")
    return result
