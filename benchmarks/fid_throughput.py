"""FID feature extraction throughput, and what a second model costs against cached reference statistics.

Synthetic sets stand in for the COCO protocol's two sides: a reference of COCO-like 640×480 JPEGs and
generated 512×512 PNGs (seeded smooth noise; speed does not depend on the content). Timed:

- ``read + center-crop-256``: decoding and the resize policy alone (``bench.fid.images``), one process;
- ``extract``: the whole feature pass of ``bench.fid.Extractor`` (read, resize, the extractor's own
  resize to 299, Inception pool3), after loading the network once;
- ``cold run``: ``compute_fid(gen, ref, cache_dir=EMPTY)``: both sides extracted, weights hashed and
  loaded, statistics cached;
- ``second model, cached reference``: ``compute_fid(gen2, ref, cache_dir=SAME)``: the reference's files
  are hashed to find its entry, only the new model's images go through the network;
- ``second model, REF .npz``: ``compute_fid(gen2, ref.npz)``: no reference file is read at all.

``--random`` uses a random-weight Inception of torch-fidelity's architecture (tests/fid_weights.py;
speed does not depend on the weights' values); otherwise ``--weights`` or torch-fidelity's cache.

    .venv/bin/python benchmarks/fid_throughput.py --random --images 32
    .venv/bin/python benchmarks/fid_throughput.py --weights weights-inception-2015-12-05-6726825d.pth \\
        --images 2000 --device cuda --json fid_throughput.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fid import Extractor, compute_fid, image_set  # noqa: E402


def synthetic_set(folder: Path, n: int, size: tuple[int, int], suffix: str, seed: int) -> Path:
    """``n`` seeded smooth-noise images of ``size`` (w, h) saved as ``suffix`` (.jpg at quality 90, or .png)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        small = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
        image = small.resize(size, Image.Resampling.BICUBIC)
        image.save(folder / f"{k:06d}{suffix}", **({"quality": 90} if suffix == ".jpg" else {}))
    return folder


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure(n: int, weights: Path | None, device: str, batch_size: int, work: Path) -> list[dict]:
    ref = synthetic_set(work / "ref", n, (640, 480), ".jpg", seed=0)
    gen = synthetic_set(work / "gen", n, (512, 512), ".png", seed=1)
    gen2 = synthetic_set(work / "gen2", n, (512, 512), ".png", seed=2)
    rows = []

    def row(what: str, images: int, seconds: float, note: str = ""):
        rows.append({"what": what, "images": images, "seconds": round(seconds, 3),
                     "images_per_s": round(images / seconds, 2) if images else None, "note": note})

    ref_set = image_set(ref, "reference")
    dataset = ref_set.dataset()
    _, seconds = timed(lambda: [dataset[i] for i in range(len(dataset))])
    row("read + center-crop-256 (640x480 JPEG)", n, seconds, "one process")
    fe = Extractor("inception-v3-compat", weights, device, batch_size)
    _, seconds = timed(fe.module)
    row("load the extractor", 0, seconds, "torch.load + build, once per run")
    fe.features(image_set(ref_set.files[:2], "reference").dataset())  # warm-up: first-call costs out of the timing
    _, seconds = timed(lambda: fe.features(ref_set.dataset()))
    row("extract (read, crop, Inception at 299)", n, seconds, f"batch {batch_size}")

    kw = {"weights": weights, "device": device, "batch_size": batch_size}
    cold, seconds = timed(lambda: compute_fid(gen, ref, cache_dir=work / "cache", save_stats=work / "ref.npz", **kw))
    row("cold run: both sides", 2 * n, seconds, f"FID {cold['fid']:.4g}")
    again, seconds = timed(lambda: compute_fid(gen2, ref, cache_dir=work / "cache", **kw))
    assert again["reference"]["cached"], "the reference should have been read from the cache"
    row("second model, cached reference", n, seconds, "reference files hashed, not extracted")
    npz, seconds = timed(lambda: compute_fid(gen2, work / "ref.npz", **kw))
    assert npz["fid"] == again["fid"]
    row("second model, REF .npz", n, seconds, "no reference file read")
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images per set (default 32)")
    parser.add_argument("--random", action="store_true", help="a random-weight Inception of the real architecture")
    parser.add_argument("--weights", type=Path, help="torch-fidelity's Inception weights (default: its cache)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if args.random:
            sys.path.insert(0, str(ROOT / "tests"))
            from fid_weights import random_inception

            weights = random_inception(Path(tmp) / "weights-inception-random.pth")
        rows = measure(args.images, weights, args.device, args.batch_size, Path(tmp))
    device = (torch.cuda.get_device_name() if args.device.startswith("cuda")
              else f"CPU, {torch.get_num_threads()} threads")
    report = {"date": datetime.date.today().isoformat(), "device": device, "torch": torch.__version__,
              "random_weights": args.random, "rows": rows}
    print(f"{device}, torch {torch.__version__}, {args.images} images per set")
    print("| step | images | seconds | images/s | note |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['images']} | {r['seconds']:.2f} | {r['images_per_s'] or '—'} | {r['note']} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
