"""Seconds per optimiser step of the project's trainer, for the world reference model's shapes.

On a GPU the reference model is small enough that a step costs about the same at batch 32 and
batch 128, and with 4 times the tokens (see docs/world.md, "Recipe sweep"). This prints the median
step time of ``pixart.train`` (from its metrics.jsonl, first 20 steps skipped) for a few batch
sizes, so that changes to the training loop's per-step overhead can be measured on any machine.

    python benchmarks/train_step_time.py                       # batch 32 and 128, 120 steps each
    python benchmarks/train_step_time.py --batches 32,256,1024 --steps 200 --depth 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_recipe_sweep import prepare_data, train_overrides  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/train-step-time"))
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--patch", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from bench.world.demo import REFERENCE
    from pixart.train import load_config, train

    batches = [int(b) for b in args.batches.split(",")]
    data, cache = prepare_data(args.work, max(batches), Path(REFERENCE), workers=1, max_length=32)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device}; model hidden {args.hidden}, depth {args.depth}, patch {args.patch}; 64 px", flush=True)
    for b in batches:
        v = dict(batch=b, lr=3e-4, hidden=args.hidden, depth=args.depth, heads=args.heads, patch=args.patch)
        out = args.work / f"b{b}-{time.time_ns()}"
        # a later override wins: max_steps replaces the sweep's open-ended one
        cfg = load_config(None, train_overrides(out.name, v, data, cache, args.work, Path(REFERENCE), args.steps, 32)
                          + [f"max_steps={args.steps}"])
        train(cfg, progress=False)
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
        sec = statistics.median(r["sec_per_step"] for r in rows[20:])
        print(f"batch {b:5d}: {sec * 1000:7.1f} ms/step  ({b / sec:8.0f} samples/s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
