"""The oracle measured on rendered scenes under noise, JPEG, blur and rescaling.

``validation_case`` draws scene ``index`` of a deterministic stream and corrupts it
(``corrupt``); ``validate`` runs ``detect`` and ``score`` on the pixels and tallies
per-attribute, relation, count and self-score accuracy (``VALIDATION_KEYS``), overall and per
image size. ``benchmarks/oracle_validation.py`` prints the figures.
"""

from __future__ import annotations

import io
import math
import random
import time
from dataclasses import replace

from PIL import Image, ImageFilter

from bench.world.oracle.detection import Detection, detect
from bench.world.oracle.scoring import position_score, score, spec_from_scene
from bench.world.render import render
from bench.world.scene import SIZES, Scene, region_of, sample_scene

VALIDATION_SIZES = (64, 128, (64, 96), (128, 96), 96)


def corrupt(image: Image.Image, rng: random.Random, jpeg: int | None = None, blur: float | None = None,
            scale: float | None = None) -> Image.Image:
    """Rescale (any PIL filter), blur (Gaussian radius), JPEG round trip — in that order; None = skip."""
    im = image
    if scale is not None and scale != 1.0:
        w, h = im.size
        resample = rng.choice((Image.BILINEAR, Image.BICUBIC, Image.LANCZOS))
        im = im.resize((max(8, round(w * scale)), max(8, round(h * scale))), resample)
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    if jpeg is not None:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(jpeg))
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return im


def validation_case(index: int, seed: int = 0, hard: bool = False) -> tuple[Scene, Image.Image, dict]:
    """Scene ``index`` of the validation stream with its size / noise / corruption (deterministic)."""
    rng = random.Random(f"oracle-validation-{seed}-{index}")
    scene = sample_scene(rng)
    size = VALIDATION_SIZES[index % len(VALIDATION_SIZES)]
    if hard:
        meta = {"size": size, "noise": 8.0, "jpeg": 75, "blur": 0.7, "scale": rng.choice((0.9, 1.1))}
    else:
        meta = {"size": size, "noise": rng.choice((scene.noise, 0.0, round(rng.uniform(0.0, 8.0), 2), 8.0)),
                "jpeg": rng.choice((None, rng.randint(75, 95))),
                "blur": rng.choice((None, rng.uniform(0.2, 0.7))),
                "scale": rng.choice((None, rng.uniform(0.9, 1.1)))}
    scene = replace(scene, noise=meta["noise"])
    image = render(scene, size, seed=index)
    image = corrupt(image, rng, meta["jpeg"], meta["blur"], meta["scale"])
    return scene, image, meta


def match_scene(scene: Scene, dets: list[Detection]) -> list[Detection | None]:
    """Assign each scene object the detection whose centre is nearest (within half its side)."""
    out = []
    used = set()
    for o in scene.objects:
        best, bd = None, None
        for j, d in enumerate(dets):
            if j in used:
                continue
            dd = math.hypot(d.x - o.x, d.y - o.y)
            if bd is None or dd < bd:
                best, bd = j, dd
        if best is not None and bd < SIZES[o.size] / 2:
            used.add(best)
            out.append(dets[best])
        else:
            out.append(None)
    return out


VALIDATION_KEYS = ("shape", "color", "texture", "size", "region", "relation", "count", "self_score")


def validate(n_scenes: int = 2000, seed: int = 0, hard: bool = False, start: int = 0, detector=None) -> dict:
    """Accuracy of ``detect`` / ``score`` on scenes ``start`` … ``start + n_scenes − 1`` of the validation stream;
    ``detector``: another detect function to measure the same way (the world judge's ``judge_detect``).

    Per object (matched to the detection with the nearest centre): shape, color, texture, size,
    region (``scene.region_of`` of the detected centre). Per 2-object scene: relation
    (``position_score`` of the two detections is 1). Per scene: count (as many known
    detections as objects) and self_score (``score`` of the scene's full spec is 1).
    Returns {"accuracy": {key: fraction}, "hits", "totals", "by_size": {size: {key: fraction}},
    "by_size_counts": {size: (hits, totals)},
    "n_scenes", "wall_s", "conditions": [meta per scene], "failures": [{index, meta, scene, errors, score}]}.
    """
    hits = {k: 0 for k in VALIDATION_KEYS}
    totals = {k: 0 for k in VALIDATION_KEYS}
    by_size: dict = {}
    failures, conditions = [], []
    t0 = time.perf_counter()
    for i in range(start, start + n_scenes):
        scene, image, meta = validation_case(i, seed, hard)
        conditions.append(meta)
        dets = (detector or detect)(image)
        got = match_scene(scene, dets)
        size_hits, size_totals = by_size.setdefault(
            str(meta["size"]), ({k: 0 for k in VALIDATION_KEYS}, {k: 0 for k in VALIDATION_KEYS}))

        def tally(key, ok, size_hits=size_hits, size_totals=size_totals):
            hits[key] += ok
            totals[key] += 1
            size_hits[key] += ok
            size_totals[key] += 1

        bad = []
        for o, d in zip(scene.objects, got):
            for k in ("shape", "color", "texture", "size"):
                ok = d is not None and getattr(d, k) == getattr(o, k)
                tally(k, ok)
                if not ok:
                    bad.append((k, getattr(o, k), getattr(d, k) if d else None))
            ok = d is not None and d.region == region_of(o)
            tally("region", ok)
            if not ok:
                bad.append(("region", (round(o.x, 3), round(o.y, 3)), (round(d.x, 3), round(d.y, 3)) if d else None))
        if scene.relation:
            a, b = got
            ok = a is not None and b is not None and position_score(a, b, scene.relation) == 1.0
            tally("relation", ok)
            if not ok:
                bad.append(("relation", scene.relation, None))
        n_known = sum(d.known for d in dets)
        tally("count", n_known == len(scene.objects))
        if n_known != len(scene.objects):
            bad.append(("count", len(scene.objects), n_known))
        s = score(image, spec_from_scene(scene), detections=dets)["score"]
        tally("self_score", s == 1.0)
        if bad or s != 1.0:
            failures.append({"index": i, "meta": meta, "scene": scene.to_dict(), "errors": bad, "score": s})
    wall = time.perf_counter() - t0
    acc = {k: hits[k] / totals[k] for k in VALIDATION_KEYS if totals[k]}
    sizes = {k: {key: h[key] / t[key] for key in VALIDATION_KEYS if t[key]} for k, (h, t) in by_size.items()}
    return {"accuracy": acc, "hits": hits, "totals": totals, "by_size": sizes, "by_size_counts": by_size,
            "n_scenes": n_scenes,
            "wall_s": wall, "conditions": conditions, "failures": failures}
