"""Validate the pixel-only shapes-world oracle (bench/world/oracle/) on rendered scenes.

Draws scenes with ``scene.sample_scene``, renders them at 64, 128, 96, 64×96 and 128×96
(height × width) with per-pixel noise (std 0–8), JPEG (quality 75–95), Gaussian blur (radius
≤ 0.7 px) and ±10 % rescales mixed at random (``oracle.validation_case``), runs ``detect`` and
``score`` on the pixels alone and prints per-attribute accuracy (shape, color, texture, size),
region and relation accuracy, object-count and self-score agreement, a per-size breakdown and
the wall time. ``--hard`` applies every corruption at its limit at once (noise 8, JPEG 75,
blur 0.7, rescale 0.9 or 1.1).

    .venv/bin/python benchmarks/oracle_validation.py [--scenes 2000] [--seed 0] [--hard] [--workers 1] [--judge]

``--judge`` measures the world judge (``bench.world.judge.judge_detect``) the same way.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

from bench.world.oracle import VALIDATION_KEYS, validate


def _detector(judge: bool):
    if not judge:
        return None
    from bench.world.judge import judge_detect

    return judge_detect


def _chunk(args):
    start, n, seed, hard, judge = args
    return validate(n, seed=seed, hard=hard, start=start, detector=_detector(judge))


def run(scenes: int, seed: int = 0, hard: bool = False, workers: int = 1, judge: bool = False) -> dict:
    """validate() over ``scenes`` scenes, split across ``workers`` processes; merged counts."""
    t0 = time.perf_counter()
    if workers <= 1:
        parts = [validate(scenes, seed=seed, hard=hard, detector=_detector(judge))]
    else:
        step = -(-scenes // workers)
        jobs = [(s, min(step, scenes - s), seed, hard, judge) for s in range(0, scenes, step)]
        with ProcessPoolExecutor(workers) as ex:
            parts = list(ex.map(_chunk, jobs))
    hits = {k: sum(p["hits"][k] for p in parts) for k in VALIDATION_KEYS}
    totals = {k: sum(p["totals"][k] for p in parts) for k in VALIDATION_KEYS}
    by_size: dict = {}
    for p in parts:
        for size, (h, t) in p["by_size_counts"].items():
            sh, st = by_size.setdefault(size, ({k: 0 for k in VALIDATION_KEYS}, {k: 0 for k in VALIDATION_KEYS}))
            for k in VALIDATION_KEYS:
                sh[k] += h[k]
                st[k] += t[k]
    sizes = {s: {k: h[k] / t[k] for k in VALIDATION_KEYS if t[k]} for s, (h, t) in by_size.items()}
    return {"hits": hits, "totals": totals, "by_size": sizes,
            "failures": [f for p in parts for f in p["failures"]], "wall_s": time.perf_counter() - t0,
            "detect_s": sum(p["wall_s"] for p in parts)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hard", action="store_true", help="every corruption at its limit at once")
    ap.add_argument("--workers", type=int, default=1, help="processes")
    ap.add_argument("--show-failures", type=int, default=10)
    ap.add_argument("--judge", action="store_true", help="measure the world judge (bench.world.judge) instead")
    args = ap.parse_args()

    r = run(args.scenes, args.seed, args.hard, args.workers, args.judge)
    mode = "hard (noise 8, JPEG 75, blur 0.7, rescale ±10% — all at once)" if args.hard else \
        "mixed (noise 0–8, JPEG 75–95 / none, blur ≤ 0.7 / none, rescale ±10% / none)"
    print(f"{'judge' if args.judge else 'oracle'} validation: {args.scenes} scenes, seed {args.seed}, corruptions {mode}")
    print(f"{'measure':<12} {'accuracy':>9} {'correct':>8} {'of':>6}")
    for k in VALIDATION_KEYS:
        if r["totals"][k]:
            print(f"{k:<12} {100 * r['hits'][k] / r['totals'][k]:>8.2f}% {r['hits'][k]:>8} {r['totals'][k]:>6}")
    sizes = r["by_size"]
    if sizes:
        print("\nper image size (height × width, before rescaling):")
        cols = [k for k in VALIDATION_KEYS if k != "self_score"]
        print(f"{'size':<10} " + " ".join(f"{k:>8}" for k in cols))
        for s, acc in sizes.items():
            print(f"{s:<10} " + " ".join(f"{100 * acc.get(k, float('nan')):>7.2f}%" for k in cols))
    n_img = args.scenes
    print(f"\nwall time {r['wall_s']:.1f} s ({1000 * r['detect_s'] / n_img:.1f} ms per scene for render + corrupt + "
          f"detect + score, {args.workers} worker(s))")
    if r["failures"]:
        print(f"\n{len(r['failures'])} scene(s) with an error; first {min(args.show_failures, len(r['failures']))}:")
        for f in r["failures"][: args.show_failures]:
            print(f"  #{f['index']} {f['meta']} errors={f['errors']} score={f['score']}")


if __name__ == "__main__":
    main()
