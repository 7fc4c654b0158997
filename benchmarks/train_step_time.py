"""Seconds per optimiser step of the project's trainer, for the world reference model's shapes.

The reference model is small, so on a GPU a step's cost is mostly the training loop's per-step
overhead rather than the model's arithmetic. This prints the mean step time of ``pixart.train``
(from its metrics.jsonl, first 20 steps skipped) for a few batch sizes, so that changes to that
overhead can be measured on any machine. Each run is the recipe's stage 2 (``world
train-reference``: its ``stage_configs``, data and feature cache, with the bundled model's T5 and
VAE), with the model shape, batch sizes and steps of its options.

    python benchmarks/train_step_time.py                       # batch 32 and 128, 120 steps each
    python benchmarks/train_step_time.py --batches 32,256,1024 --steps 200 --depth 8
    python benchmarks/train_step_time.py --batches 1024 --variants items,preload,preload+device-rng --profile
    python benchmarks/train_step_time.py --batches 256 --depth 6 --variants preload+device-rng,bf16,bf16+compile

Variants switch the trainer's per-step host work: ``items`` reads the feature cache item by item and
draws the noise on the CPU (the trainer before data.preload_features), ``preload`` keeps the cache in
memory (on the training device), ``preload+device-rng`` also draws the noise on the GPU (the
default; on a CPU it equals ``preload``); ``bf16`` adds bf16 autocast, ``compile`` torch.compile of
the training forward (its compile falls in the skipped first 20 steps; ``--skip``), ``compile-ro`` and
``bf16+compile-ro`` compile with ``mode="reduce-overhead"`` (on a GPU, the step replays as CUDA graphs, which
a launch-bound step needs). ``--json FILE`` keeps the rows. ``--profile`` prints torch.profiler's busiest operators
(self CPU time) for 30 steps of the last variant at the last batch size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(work: Path, batches: list[int], steps: int = 120, *, hidden: int = 192, depth: int = 4, heads: int = 3,
            patch: int = 2, variants=("preload+device-rng",), skip: int = 20, log=None) -> list[dict]:
    """One row per (batch, variant): the trainer's mean seconds per step after the first ``skip`` steps. The
    data and features are made in ``work`` first (kept for a later call). A variant whose training raises
    (out of memory, a compile error) gives a row with status "failed" and the reason; the others still run."""
    import torch

    from bench.world.demo import REFERENCE
    from bench.world.reference import ReferenceBudget, extract_features, make_data, stage_configs
    from pixart.train import train

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if not 0 <= skip < steps:
        raise ValueError(f"skip must be from 0 to steps - 1 ({steps - 1}), got {skip}")
    work = Path(work)
    shape = ReferenceBudget(n_images_64=max(batches), hidden=hidden, depth=depth, heads=heads, patch_size=patch)
    make_data(work, shape, sizes=(64,))
    extract_features(stage_configs(shape, work, components=Path(REFERENCE))["stage2"])
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)"
    rows = []
    for b in batches:
        for variant in variants:
            row = {"batch": b, "variant": variant, "steps": steps, "skipped_steps": skip, "hidden": hidden,
                   "depth": depth, "heads": heads, "patch": patch, "device": device, "torch": torch.__version__}
            try:
                out, cfg = _config(work, shape, b, variant, steps)
                train(cfg, progress=False)
                metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
                # the mean, not the median: on a GPU the host runs ahead and waits at the metric reads
                # (every log_every steps), so single steps' host times are uneven while their sum is not
                sec = statistics.fmean(r["sec_per_step"] for r in metrics[skip:])
                row.update(status="ok", seconds=sec, samples_per_s=b / sec,
                           loss=statistics.fmean(r["loss"] for r in metrics[skip:]))
            except Exception as e:  # noqa: BLE001 - any failure is this row's result
                text = str(e).strip()
                row.update(status="failed", reason=f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text
                           else type(e).__name__)
            rows.append(row)
            if log:
                log(row)
    return rows


def _config(work: Path, shape, b: int, variant: str, steps: int):
    """(output folder, the recipe's stage-2 trainer config at batch ``b`` with ``variant``'s switches)."""
    from bench.world.demo import REFERENCE
    from bench.world.reference import stage_configs

    cfg = stage_configs(replace(shape, batch_size=b), work, components=Path(REFERENCE))["stage2"]
    out = work / f"b{b}-{variant}-{time.time_ns()}"
    v = VARIANTS[variant]
    return out, replace(cfg, output_dir=str(out), max_steps=steps, save_every=steps,
                        data=replace(cfg.data, preload_features=v["preload"]), device_rng=v["device_rng"],
                        mixed_precision=v.get("mixed_precision", "no"), compile=v.get("compile", False),
                        compile_mode=v.get("compile_mode", "default"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/train-step-time"))
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--skip", type=int, default=20, help="first steps left out of the mean (compile, warm-up)")
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--variants", default="preload+device-rng", help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from pixart.train import train

    batches = [int(b) for b in args.batches.split(",")]
    variants = args.variants.split(",")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device}; model hidden {args.hidden}, depth {args.depth}, patch {args.patch}; 64 px", flush=True)

    def show(r):
        if r["status"] != "ok":
            print(f"batch {r['batch']:5d} {r['variant']:>20}: failed: {r['reason']}", flush=True)
            return
        print(f"batch {r['batch']:5d} {r['variant']:>20}: {r['seconds'] * 1000:7.1f} ms/step  "
              f"({r['samples_per_s']:8.0f} samples/s); loss, mean of steps {args.skip + 1}+: {r['loss']:.4f}",
              flush=True)

    rows = measure(args.work, batches, args.steps, hidden=args.hidden, depth=args.depth, heads=args.heads,
                   patch=args.patch, variants=variants, skip=args.skip, log=show)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        from bench.world.reference import ReferenceBudget

        shape = ReferenceBudget(n_images_64=max(batches), hidden=args.hidden, depth=args.depth, heads=args.heads,
                                patch_size=args.patch)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        _, cfg = _config(args.work, shape, batches[-1], variants[-1], 30)
        with profile(activities=activities) as prof:
            train(cfg, progress=False)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), flush=True)
    return 0


VARIANTS = {
    "items": {"preload": False, "device_rng": False},
    "preload": {"preload": True, "device_rng": False},
    "preload+device-rng": {"preload": True, "device_rng": True},
    "bf16": {"preload": True, "device_rng": True, "mixed_precision": "bf16"},
    "compile": {"preload": True, "device_rng": True, "compile": True},
    "bf16+compile": {"preload": True, "device_rng": True, "mixed_precision": "bf16", "compile": True},
    # torch.compile(mode="reduce-overhead"): on a GPU the compiled step replays as CUDA graphs
    "compile-ro": {"preload": True, "device_rng": True, "compile": True, "compile_mode": "reduce-overhead"},
    "bf16+compile-ro": {"preload": True, "device_rng": True, "mixed_precision": "bf16", "compile": True,
                        "compile_mode": "reduce-overhead"},
}


if __name__ == "__main__":
    raise SystemExit(main())
