"""Why a model's single-object images fail the oracle, and how strict the oracle is at 128 px.

    .venv/bin/python benchmarks/oracle_failures.py DEMO_OUT [DEMO_OUT ...]
    .venv/bin/python benchmarks/oracle_failures.py --upscale DEMO_OUT_64
    .venv/bin/python benchmarks/oracle_failures.py --scaled-limits

DEMO_OUT is a `pixart-bench demo --out` folder that holds `images/single/` (e.g. from `--prompts 48
--seeds 4 --categories single`). For each image, the largest blob's verdict: accepted, or rejected
with the oracle's best-fitting shape and colour (the fit it refuses to report) right or wrong
(docs/experiments/reference-model.md, "Stage 3 (128 px) loses what stage 2 learned"). Extra blobs do not change the row.

``--upscale``: the folder's 64 px images scored as they are and upscaled to 128 px (bicubic,
Lanczos, nearest): the same content at twice the pixels. ``--scaled-limits``: the oracle against
the person's labels (tests/data/oracle_human/) with its pixel limits as they are, and scaled with
the image's shorter side / 64 (the outline limit and misfit window linearly, the misfit area
quadratically): precision and recall of the person's "yes".
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from PIL import Image

from bench.world import oracle
from bench.world.dataset import load_suite
from bench.world.demo import SUITES
from bench.world.oracle import fit

ROOT = Path(__file__).resolve().parents[1]


def _images(folder: Path):
    """(image, the prompt's spec) for every image of a demo folder's single-object suite."""
    manifest = json.loads((folder / "images" / "single" / "manifest.json").read_text())
    specs = load_suite(SUITES, "single")
    for e in manifest["images"]:
        yield (Image.open(folder / "images" / "single" / e["file"]).convert("RGB"),
               specs[e["index"] // manifest["images_per_prompt"]])


def failures(folder: Path) -> Counter:
    rows = Counter()
    for image, spec in _images(folder):
        want = spec["objects"][0]
        dets = oracle.detect(image)
        if not dets:
            rows["nothing found"] += 1
            continue
        if any(d.matches(want) for d in dets):
            rows["accepted"] += 1
            continue
        big = max(dets, key=lambda d: (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]))
        if big.known:
            rows["another object reported"] += 1
            continue
        shape = "right" if big.fit.get("shape_guess") == want["shape"] else "wrong"
        colour = "right" if big.fit.get("color_guess") == want["color"] else "wrong"
        rows[f"rejected ({big.fit.get('unknown')}): best shape {shape}, colour {colour}"] += 1
    return rows


def upscaled(folder: Path) -> dict:
    modes = {"64 as is": None, "128 bicubic": Image.BICUBIC, "128 lanczos": Image.LANCZOS, "128 nearest": Image.NEAREST}
    sums, n = dict.fromkeys(modes, 0.0), 0
    for image, spec in _images(folder):
        for name, resample in modes.items():
            im = image if resample is None else image.resize((2 * image.width, 2 * image.height), resample)
            sums[name] += oracle.score(im, spec)["score"]
        n += 1
    return {k: round(v / max(n, 1), 3) for k, v in sums.items()}


def scaled_limits() -> dict:
    data = ROOT / "tests" / "data" / "oracle_human"
    sets = json.loads((data / "labels.json").read_text())["sets"]
    specs = load_suite(SUITES, "single")
    base = (fit.SHAPE_MAX_OUTLINE_ERROR, fit.SHAPE_MAX_MISFIT, fit.MISFIT_WINDOW)
    out = {}
    try:
        for name, s in sets.items():
            for mode in ("as is", "scaled"):
                tp = fp = yes = 0
                for item in s["items"]:
                    image = Image.open(data / item["file"]).convert("RGB")
                    f = min(image.size) / 64 if mode == "scaled" else 1.0
                    # fit's module constants, read there at call time; restored below
                    fit.SHAPE_MAX_OUTLINE_ERROR = base[0] * f
                    fit.SHAPE_MAX_MISFIT = base[1] * f * f
                    fit.MISFIT_WINDOW = int(round(base[2] * f)) | 1
                    ok = oracle.score(image, specs[item["suite_index"]])["score"] == 1.0
                    tp += ok and item["human_yes"]
                    fp += ok and not item["human_yes"]
                    yes += item["human_yes"]
                out[f"{name}, limits {mode}"] = {"accepted": tp + fp, "precision": round(tp / max(tp + fp, 1), 2),
                                                 "recall": f"{tp}/{yes}"}
    finally:
        fit.SHAPE_MAX_OUTLINE_ERROR, fit.SHAPE_MAX_MISFIT, fit.MISFIT_WINDOW = base
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--upscale", action="store_true")
    ap.add_argument("--scaled-limits", action="store_true")
    a = ap.parse_args(argv)
    if a.scaled_limits:
        for k, v in scaled_limits().items():
            print(f"{k:28s} {v}")
    for folder in a.folders:
        if a.upscale:
            print(folder, upscaled(folder))
        else:
            rows = failures(folder)
            print(f"{folder} ({sum(rows.values())} images)")
            for k, v in rows.most_common():
                print(f"  {v:4d}  {k}")


if __name__ == "__main__":
    main()
