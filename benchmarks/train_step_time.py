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
the training forward (its compile falls in the skipped first 20 steps). ``--profile`` prints torch.profiler's busiest operators
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/train-step-time"))
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--variants", default="preload+device-rng", help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from bench.world.demo import REFERENCE
    from bench.world.reference import ReferenceBudget, extract_features, make_data, stage_configs
    from pixart.train import train

    batches = [int(b) for b in args.batches.split(",")]
    shape = ReferenceBudget(n_images_64=max(batches), hidden=args.hidden, depth=args.depth, heads=args.heads,
                            patch_size=args.patch)
    make_data(args.work, shape, sizes=(64,))
    extract_features(stage_configs(shape, args.work, components=Path(REFERENCE))["stage2"])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device}; model hidden {args.hidden}, depth {args.depth}, patch {args.patch}; 64 px", flush=True)

    def config(b: int, variant: str, steps: int):
        cfg = stage_configs(replace(shape, batch_size=b), args.work, components=Path(REFERENCE))["stage2"]
        out = args.work / f"b{b}-{variant}-{time.time_ns()}"
        v = VARIANTS[variant]
        return out, replace(cfg, output_dir=str(out), max_steps=steps, save_every=steps,
                            data=replace(cfg.data, preload_features=v["preload"]), device_rng=v["device_rng"],
                            mixed_precision=v.get("mixed_precision", "no"), compile=v.get("compile", False))

    variants = args.variants.split(",")
    for b in batches:
        for variant in variants:
            out, cfg = config(b, variant, args.steps)
            train(cfg, progress=False)
            rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
            # the mean, not the median: on a GPU the host runs ahead and waits at the metric reads
            # (every log_every steps), so single steps' host times are uneven while their sum is not
            sec = statistics.fmean(r["sec_per_step"] for r in rows[20:])
            print(f"batch {b:5d} {variant:>20}: {sec * 1000:7.1f} ms/step  ({b / sec:8.0f} samples/s); "
                  f"loss, mean of steps 21+: {statistics.fmean(r['loss'] for r in rows[20:]):.4f}", flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        _, cfg = config(batches[-1], variants[-1], 30)
        with profile(activities=activities) as prof:
            train(cfg, progress=False)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), flush=True)
    return 0


VARIANTS = {
    "items": dict(preload=False, device_rng=False),
    "preload": dict(preload=True, device_rng=False),
    "preload+device-rng": dict(preload=True, device_rng=True),
    "bf16": dict(preload=True, device_rng=True, mixed_precision="bf16"),
    "compile": dict(preload=True, device_rng=True, compile=True),
    "bf16+compile": dict(preload=True, device_rng=True, mixed_precision="bf16", compile=True),
}


if __name__ == "__main__":
    raise SystemExit(main())
