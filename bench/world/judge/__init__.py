"""The world's judge for model images: ``judge_detect(image)`` lists objects, ``judge_score(image, spec)`` grades a prompt.

The exact oracle (``bench.world.oracle``) reads renders perfectly but rejects most objects a
generative model draws (ragged outlines, soft edges, textures out of phase). The judge reads the
same pixels more as a person does:

- ``blobs``: blobs by distance from the border's background (holes filled, specks dropped), the
  nearest palette colour of each, and the network's input (the blob's mask and darkness in a
  square window);
- ``network``: ``BlobNet``, a small CNN giving each blob's shape (6 shapes or "none": no shape a
  person would name) and texture; weights ship as ``bench/world/reference/judge.safetensors``;
- ``train``: how those weights are made, from rendered objects distorted like model images;
- this module: ``read_blobs`` → the oracle's ``Detection`` objects; ``judge_detect`` takes the exact
  oracle's reading when the oracle reads every blob of the image (renders: the judge stays exact
  there) and ``read_blobs``'s otherwise; ``judge_score`` is the oracle's ``score``
  (T2I-CompBench's per-image rules on 0/1 facts) on the judge's detections.

A blob is an object of shape s when s is the network's most likely shape of the six, the blob's
box is no more elongated than ``ACCEPT[s]``'s aspect limit (every world shape has a square box)
and its mask fits s's template (``oracle.fit.fit_shape``'s soft IoU) at least as well as
``ACCEPT[s]``'s floor, and its colour lies within ``COLOR_MAX_DIST`` of a palette colour;
otherwise it is unknown and matches nothing. The limits were fitted on the development half of
the human labels (people accept a ragged cross or star, but not an oval for a circle, nor a
rectangle for a square). How well this agrees with people is measured on held-out human labels
(``tests/data/world_judge/``, ``benchmarks/world_judge.py agreement``) and recorded in
``AGREEMENT`` (``agreement.json`` beside the weights), which every score made by it cites.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch

from bench.world.judge.blobs import find_blobs
from bench.world.judge.network import DEFAULT_WEIGHTS, TEXTURE_CLASSES, load_blobnet
from bench.world.oracle.detection import Detection
from bench.world.oracle.fit import COLOR_MAX_DIST, COLOR_MIN_T, PALETTE_NAMES, SIZE_THRESHOLD, fit_shape
from bench.world.oracle.scoring import score
from bench.world.scene import SHAPES

JUDGE_NAME = "world judge v1 (BlobNet shape and texture, template limits per shape, nearest palette colour)"
# per shape: (largest box aspect, smallest soft IoU with the template), fitted on the dev labels
ACCEPT = {"circle": (1.05, 0.93), "square": (1.25, 0.93), "triangle": (1.4, 0.0), "star": (1.25, 0.6),
          "cross": (1.3, 0.7), "hexagon": (1.2, 0.9)}
TEXTURE_MIN_P = 0.5  # below this the texture is unknown (None)
# a palette colour within the oracle's limits (COLOR_MAX_DIST, COLOR_MIN_T): the judge reads colours as the oracle does


@cache
def _network(weights: str):
    return load_blobnet(weights)


def judge_detect(image, weights=DEFAULT_WEIGHTS, exact: list[Detection] | None = None) -> list[Detection]:
    """The exact oracle's detections when it reads every blob of the image (renders, and the rare model
    image it accepts in full: there it does not guess), else ``read_blobs``'s; ``fit["reader"]`` says which.
    ``exact``: the oracle's ``detect(image)`` when the caller has it already (it is not run again)."""
    if exact is None:
        from bench.world.oracle import detect

        exact = detect(image)
    if exact and all(d.known for d in exact):
        for d in exact:
            d.fit["reader"] = "exact oracle"
        return exact
    return read_blobs(image, weights)


def read_blobs(image, weights=DEFAULT_WEIGHTS) -> list[Detection]:
    """Objects in ``image`` (PIL image or uint8 array, any size), largest first, as ``Detection``s;
    ``fit`` holds the class probabilities. A blob that is no shape of the world, or shows no palette
    colour, is unknown (shape and size None, confidence ≤ 0.25: it matches nothing) but keeps the
    colour and texture it shows, for reading it against a person's labels. Boxes are in the pixels
    of the image as judged (shorter side at most 128; centres are fractions of width and height)."""
    net, _ = _network(str(weights))
    img, blobs = find_blobs(image)
    H, W = img.shape[:2]
    if not blobs:
        return []
    with torch.no_grad():
        ls, lt = net(torch.from_numpy(np.stack([b.inputs for b in blobs])))
    ps, pt = ls.softmax(1).numpy(), lt.softmax(1).numpy()
    dets = []
    for b, p_shape, p_tex in zip(blobs, ps, pt):
        real = p_shape[:len(SHAPES)] / p_shape[:len(SHAPES)].sum()  # the six shapes; "none" is not used
        j = int(real.argmax())
        shape = SHAPES[j]
        x0, y0, x1, y1 = b.bbox
        aspect = max((x1 - x0) / (y1 - y0), (y1 - y0) / (x1 - x0))
        crop = b.mask[max(0, y0 - 2):min(H, y1 + 2), max(0, x0 - 2):min(W, x1 + 2)].astype(np.float64)
        iou = fit_shape(crop, shape)[0]
        color_ok = b.color_dist <= COLOR_MAX_DIST and b.color_t >= COLOR_MIN_T
        max_aspect, min_iou = ACCEPT[shape]
        known = aspect <= max_aspect and iou >= min_iou and color_ok
        fit = {"shape_p": {c: round(float(p), 4) for c, p in zip(SHAPES, real)},
               "texture_p": {c: round(float(p), 4) for c, p in zip(TEXTURE_CLASSES, p_tex)},
               "shape_guess": shape, "aspect": round(aspect, 3), "shape_iou": round(iou, 4),
               "color_guess": PALETTE_NAMES[b.color], "color_dist": round(b.color_dist, 2),
               "color_t": round(b.color_t, 3), "area": b.area}
        k = int(p_tex.argmax())
        texture = TEXTURE_CLASSES[k] if p_tex[k] >= TEXTURE_MIN_P else None
        color = PALETTE_NAMES[b.color] if color_ok else None
        box, centre = (x0, y0, x1, y1), ((x0 + x1) / 2 / W, (y0 + y1) / 2 / H)
        if not known:  # not an object of the world: matches nothing, but says what colour and texture it shows
            fit["unknown"] = "no palette colour" if not color_ok else (
                f"not a {shape}: " + ("box too elongated" if aspect > max_aspect else "outline too far from it"))
            dets.append(Detection(None, color, texture, None, box, *centre, min(0.25, float(real[j])), fit))
            continue
        side = (max(x1 - x0, y1 - y0) - 1) / min(H, W)  # world boxes are square; less the anti-aliased rim
        fit["side"] = round(side, 4)
        dets.append(Detection(shape, color, texture, "small" if side < SIZE_THRESHOLD else "large", box, *centre,
                              max(0.5, float(real[j])), fit))
    for d in dets:
        d.fit["reader"] = "judge"
    return dets


def judge_agreement_record(weights=DEFAULT_WEIGHTS) -> dict | None:
    """{"name", "weights_sha256", "split", "images", "categories", "all", "facets"}: the judge's measured
    agreement with people on the held-out labels (``judge_agreement.json`` beside the bundled
    weights), None when it was not measured for these weights."""
    from bench.world.judge.agreement import cited_agreement
    from pixart.files import sha256_files

    record = cited_agreement()
    if record is None or record.get("weights_sha256") != sha256_files([weights]):
        return None
    return {"name": record["judge"], **{k: v for k, v in record.items() if k != "judge"}}


def judge_score(image, spec: dict, weights=DEFAULT_WEIGHTS, exact: list[Detection] | None = None) -> dict:
    """``oracle.score`` of ``spec`` on the judge's detections (same return value); ``exact`` as in ``judge_detect``."""
    return score(image, spec, detections=judge_detect(image, weights, exact))
