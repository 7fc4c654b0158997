"""Compare stage-2 recipes for the shapes world's reference model in the same wall-clock budget.

The bundled recipe (`world train-reference`) plateaus on the oracle at 64 px (single 0.234 at 79,000
and at 100,000 steps on the 2-core CPU), so the question is which change to the recipe makes the
transformer learn shapes, colour binding and relations faster. Each variant below trains stage 2
(dense/medium-caption text-to-image at 64 px, from scratch: stage 1 is only 500 steps of the recipe)
with the project's trainer (`python -m bench train`, one process per variant, all at once) for
``--minutes`` of wall time. Then the latest EMA checkpoint of each is sampled on held-out suite
prompts (the demo's sampler, ``bench.world.demo.DEMO_SAMPLER``: SDE-DPM-Solver++, 20 steps,
guidance 2; the sweep figures in docs/world.md, made before 2026-11-26's sampler study, used
DPM-Solver, 20 steps, guidance 4.5) and scored with the oracle, with
bootstrap 95% CIs. It prints a table and writes ``results.json`` and one ``grid-<variant>.png`` per
variant to ``--out``.

Tokenizer, frozen T5 and VAE are the bundled reference's (``bench/world/reference/``), so only the
transformer recipe changes. On a GPU all variants share the device; the table reports the steps and
samples each one reached, so compare them by samples seen as well as by wall time.

    python benchmarks/reference_recipe_sweep.py --work runs/sweep --out sweep-results --minutes 5
    python benchmarks/reference_recipe_sweep.py --variants base,patch1 --minutes 0.5 --images 300   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# name -> (training images, batch, learning rate, hidden, depth, heads, patch size)
VARIANTS = {
    "base": dict(images=8000, batch=32, lr=3e-4, hidden=192, depth=4, heads=3, patch=2),  # the bundled recipe
    "bs128": dict(images=8000, batch=128, lr=6e-4, hidden=192, depth=4, heads=3, patch=2),
    "data40k": dict(images=40000, batch=128, lr=6e-4, hidden=192, depth=4, heads=3, patch=2),
    "patch1": dict(images=40000, batch=128, lr=6e-4, hidden=192, depth=4, heads=3, patch=1),
    "deep8": dict(images=40000, batch=128, lr=6e-4, hidden=192, depth=8, heads=3, patch=2),
}
CATEGORIES = ("single", "color", "spatial")


def prepare_data(work: Path, n: int, reference: Path, workers: int, max_length: int) -> tuple[Path, Path]:
    from bench.world.dataset import make_dataset
    from pixart.extract import run_extract

    data, cache = work / f"data64-{n}", work / f"cache64-{n}"
    make_dataset(data, n, 64, seed=0, workers=workers)
    run_extract(cache, None, [f"data.root={data}", f"t5={reference}", f"vae={reference}", "data.resolution=64",
                              f"max_length={max_length}"], batch_size=256)
    return data, cache


def train_overrides(name: str, v: dict, data: Path, cache: Path, work: Path, reference: Path, save_every: int,
                    max_length: int) -> list[str]:
    model = (f"model_overrides={{hidden_size: {v['hidden']}, depth: {v['depth']}, num_heads: {v['heads']}, "
             f"patch_size: {v['patch']}, caption_channels: 64, model_max_length: {max_length}, input_size: 16}}")
    # the same optimiser, EMA and precision as `world train-reference`'s stage 2, only the variant's fields change
    return ["model=S-2-256", model, f"t5={reference}", f"vae={reference}", f"max_length={max_length}", "seed=0",
            "tensorboard=false", f"optim.lr={v['lr']}", "optim.weight_decay=0.0", "optim.grad_clip=1.0",
            "optim.warmup_steps=200", "ema_decay=0.999", "keep_checkpoints=2", "log_every=50",
            f"output_dir={work / name}", f"data.root={data}", f"data.features={cache}", "data.resolution=64",
            f"batch_size={v['batch']}", "max_steps=10000000", f"save_every={save_every}"]


def run_variants(jobs: dict[str, list[str]], work: Path, seconds: float) -> dict[str, float]:
    """Start every variant's trainer at once; stop those still running after ``seconds`` (their last
    complete checkpoint is kept: checkpoints are renamed into place only when written)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    procs, logs, started = {}, {}, {}
    for name, overrides in jobs.items():
        logs[name] = (work / f"{name}.log").open("w")
        args = [sys.executable, "-m", "bench", "train", *[a for o in overrides for a in ("--set", o)]]
        procs[name] = subprocess.Popen(args, stdout=logs[name], stderr=subprocess.STDOUT, env=env, cwd=REPO)
        started[name] = time.perf_counter()
    deadline = time.perf_counter() + seconds
    while any(p.poll() is None for p in procs.values()) and time.perf_counter() < deadline:
        time.sleep(2)
    wall = {}
    for name, p in procs.items():
        if p.poll() is None:
            p.terminate()
            p.wait()
        elif p.returncode != 0:
            print(f"{name}: trainer exited with {p.returncode}; see {work / (name + '.log')}", flush=True)
        wall[name] = time.perf_counter() - started[name]
        logs[name].close()
    return wall


def evaluate(ckpt: Path, reference: Path, prompts: int, seeds: int, device: str, grid: Path) -> tuple[dict, int]:
    import numpy as np

    from bench.world.dataset import load_suite
    from bench.world.demo import DEMO_CFG, DEMO_SAMPLER, DEMO_STEPS, SUITES, _grid, bootstrap_ci
    from bench.world.oracle import score
    from pixart.pipeline import PixArtPipeline, SampleSettings

    pipe = PixArtPipeline.from_pretrained(ckpt, t5=reference, vae=reference, device=device)
    settings = SampleSettings(sampler=DEMO_SAMPLER, steps=DEMO_STEPS, guidance_scale=DEMO_CFG, height=64, width=64)
    out, rows = {}, []
    for category in CATEGORIES:
        specs = load_suite(SUITES, category)[:prompts]
        texts = [s["prompt"] for s in specs for _ in range(seeds)]
        images = pipe(texts, seeds=list(range(len(texts))), settings=settings, batch_size=64, progress=False)
        per_image = [score(im, specs[k // seeds])["score"] for k, im in enumerate(images)]
        lo, hi = bootstrap_ci(per_image)
        out[category] = {"score": float(np.mean(per_image)), "ci95": [lo, hi], "images": len(per_image)}
        rows.append((category, images[: 4 * seeds]))
    _grid(rows, grid, cell=64)
    return out, sum(p.numel() for p in pipe.transformer.parameters())


def main(argv=None) -> int:
    from bench.world.demo import REFERENCE

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/recipe-sweep"))
    ap.add_argument("--out", type=Path, default=Path("recipe-sweep"))
    ap.add_argument("--variants", default="base,bs128,data40k,patch1,deep8")
    ap.add_argument("--minutes", type=float, default=5.0, help="wall time of the (concurrent) training")
    ap.add_argument("--images", type=int, default=None, help="override every variant's training-set size (smoke runs)")
    ap.add_argument("--prompts", type=int, default=16, help="held-out prompts per category")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = ap.parse_args(argv)

    import torch

    from pixart.train import latest_checkpoint

    device = "cuda" if torch.cuda.is_available() else "cpu"
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    reference, max_length = Path(REFERENCE), 32
    variants = {n: {**VARIANTS[n], **({"images": args.images} if args.images else {})} for n in names}

    t0 = time.perf_counter()
    data = {n: prepare_data(args.work, n, reference, args.workers, max_length)
            for n in sorted({v["images"] for v in variants.values()})}
    print(f"data + feature caches: {time.perf_counter() - t0:.0f} s", flush=True)
    jobs = {n: train_overrides(n, v, *data[v["images"]], args.work, reference, args.save_every, max_length)
            for n, v in variants.items()}
    wall = run_variants(jobs, args.work, args.minutes * 60)

    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "minutes": args.minutes,
               "prompts": args.prompts, "seeds": args.seeds, "variants": {}}
    for n, v in variants.items():
        ckpt = latest_checkpoint(args.work / n)
        metrics = [json.loads(x) for x in (args.work / n / "metrics.jsonl").read_text().splitlines() if x.strip()] \
            if (args.work / n / "metrics.jsonl").is_file() else []
        row = {**v, "wall_seconds": wall[n], "steps_logged": len(metrics),
               "checkpoint": str(ckpt) if ckpt else None,
               "loss_last_500": sum(m["loss"] for m in metrics[-500:]) / max(1, len(metrics[-500:]))}
        if ckpt is not None:
            step = int(ckpt.name.split("-")[1])
            row.update(step=step, samples=step * v["batch"])
            row["scores"], row["params"] = evaluate(ckpt / "ema", reference, args.prompts, args.seeds, device,
                                                    args.out / f"grid-{n}.png")
        results["variants"][n] = row
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        s = row.get("scores", {})
        print(f"{n:8s} step {row.get('step', 0):7d}  samples {row.get('samples', 0):9d}  loss {row['loss_last_500']:.4f}  "
              + "  ".join(f"{c} {s[c]['score']:.3f} [{s[c]['ci95'][0]:.3f}, {s[c]['ci95'][1]:.3f}]" for c in s), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
