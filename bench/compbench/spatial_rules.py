"""T2I-CompBench's spatial rules as pure functions: which objects a prompt names, which relation it
asks for, and how well two boxes (and a depth map) satisfy it.

The rules are those of the official ``UniDet_eval/2D_spatial_eval.py`` and ``3D_spatial_eval.py``
(T2I-CompBench, functionally unchanged since 2023-07), rewritten from their documented behaviour:

- objects, simple prompts: the first and the last token whose part of speech is NOUN (the same token
  when there is one); complex prompts: around each official preposition, the nearest NOUN or PROPN
  before it and the nearest NOUN after it (a PROPN followed by a non-PROPN when no NOUN follows),
  and no objects unless exactly two were found in the whole prompt;
- ``girl``, ``boy``, ``man``, ``woman`` are looked for as ``person``;
- the relation is the first word of the official list that the prompt contains as a substring;
- 2D: ``position_2d`` with IoU threshold 0.1 and distance threshold 150 (pixels of the detector's
  frame); any relation outside the list, ``on top of`` included, scores 0;
- 3D: ``position_3d`` compares the mean depth inside the two boxes, indexing the depth map as
  ``depth[x_min:x_max, y_min:y_max]`` (rows by x: the official transposition), MiDaS inverse depth
  (larger is nearer), and scales by the boxes' IoU against 0.5;
- image score: 0.25·conf1 + 0.25·conf2 + 0.5·position when both objects are detected, 0.25·conf of
  the one that is, else 0; the 2D metric then sets scores below 0.5 to 0, the 3D metric does not.

Where the official scripts crash (a simple prompt with no noun, two boxes of zero area) these
functions return a defined value instead; docs/compbench.md lists each such difference.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

PERSON_WORDS = ("girl", "boy", "man", "woman")
# the official relation lists, in the order they are tried
RELATIONS_2D = ("on side of", "next to", "near", "on the left of", "on the right of", "on the bottom of",
                "on the top of", "on top of")
RELATIONS_3D = ("in front of", "behind", "hidden")
# the complex parser's anchors ("on bottom of" is official even though the prompts say "on the bottom of")
COMPLEX_PREPOSITIONS = ("on top of", "on bottom of", "on the left", "on the right", "next to", "on side of", "near")
NEAR_WORDS = ("next to", "on side of", "near")
IOU_THRESHOLD = 0.1
DISTANCE_THRESHOLD = 150.0
IOU_THRESHOLD_3D = 0.5
CUT_OFF_2D = 0.5

Box = Sequence[float]  # (x_min, y_min, x_max, y_max) in the detector's frame
Tokens = Sequence[tuple[str, str, str]]  # (text, part of speech, trailing whitespace), as parse.Analysis


def as_person(name: str | None) -> str | None:
    """The official alias: girl / boy / man / woman are detected as ``person`` (exact words only)."""
    return "person" if name in PERSON_WORDS else name


def relation(prompt: str, vocabulary: Sequence[str] = RELATIONS_2D) -> str | None:
    """The first relation of ``vocabulary`` that ``prompt`` contains (a substring test, as official)."""
    return next((word for word in vocabulary if word in prompt), None)


def simple_objects(tokens: Tokens) -> tuple[str | None, str | None]:
    """The first and last NOUN token (None, None when the prompt has no NOUN; the official script fails)."""
    nouns = [text for text, pos, _ in tokens if pos == "NOUN"]
    return (nouns[0], nouns[-1]) if nouns else (None, None)


def _span(tokens: Tokens, start: int, length: int) -> str:
    """spaCy's ``doc[start:start + length].text``: the tokens with their spaces, none after the last;
    a span running past the end is cut there."""
    part = tokens[start:start + length]
    return "".join(text + space for text, _, space in part[:-1]) + (part[-1][0] if part else "")


def complex_objects(tokens: Tokens) -> tuple[str | None, str | None]:
    """The complex-prompt parser: objects around each official preposition; (None, None) unless
    exactly two objects were found."""
    found: list[str] = []
    n = len(tokens)
    for i in range(n):
        # the longest of the 3-, 2- and 1-token spans at i that is a preposition; spans are cut at the
        # end of the prompt, so a 1-token tail "near" matches as the 3-token span and is skipped over
        width = next((k for k in (3, 2, 1) if _span(tokens, i, k) in COMPLEX_PREPOSITIONS), None)
        if width is None:
            continue
        before = next((tokens[j][0] for j in range(i - 1, -1, -1) if tokens[j][1] in ("NOUN", "PROPN")), None)
        if before is not None:
            found.append(before)
        after = next((tokens[j][0] for j in range(i + width, n) if tokens[j][1] == "NOUN"), None)
        if after is not None:
            found.append(after)
        elif i + width < n:
            # no NOUN after the preposition: the first PROPN that the next token does not continue
            # (a PROPN in the last position is never taken)
            after = next((tokens[j][0] for j in range(i + width, n - 1)
                          if tokens[j][1] == "PROPN" and tokens[j + 1][1] != "PROPN"), None)
            if after is not None:
                found.append(after)
    return (found[0], found[1]) if len(found) == 2 else (None, None)


def box_iou(box1: Box, box2: Box) -> float:
    """Intersection over union of two boxes, without the +1 pixel convention (0 when both are empty;
    the official script divides by zero there)."""
    w = max(0.0, min(box1[2], box2[2]) - max(box1[0], box2[0]))
    h = max(0.0, min(box1[3], box2[3]) - max(box1[1], box2[1]))
    inter = w * h
    union = (box1[2] - box1[0]) * (box1[3] - box1[1]) + (box2[2] - box2[0]) * (box2[3] - box2[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre_offsets(box1: Box, box2: Box) -> tuple[float, float]:
    """(dx, dy) from box1's centre to box2's (y grows downward)."""
    return ((box2[0] + box2[2]) / 2 - (box1[0] + box1[2]) / 2, (box2[1] + box2[3]) / 2 - (box1[1] + box1[3]) / 2)


def position_2d(word: str | None, box1: Box, box2: Box, iou_threshold: float = IOU_THRESHOLD,
                distance_threshold: float = DISTANCE_THRESHOLD) -> float:
    """How well box1 (the first object) stands ``word`` of box2, in [0, 1]:

    - next to / on side of / near: 1 when the centres are closer than ``distance_threshold`` along x
      *or* along y, else distance_threshold / the larger distance;
    - on the left / right / top / bottom of: 0 unless box2's centre lies on the named side and that
      axis dominates (|dx| > |dy| or |dy| > |dx|); then 1 while IoU < ``iou_threshold``, else
      iou_threshold / IoU;
    - anything else (no relation, ``on top of``): 0."""
    dx, dy = _centre_offsets(box1, box2)
    if word in NEAR_WORDS:
        if abs(dx) < distance_threshold or abs(dy) < distance_threshold:
            return 1.0
        return distance_threshold / max(abs(dx), abs(dy))
    sides = {"on the right of": dx < 0 and abs(dx) > abs(dy), "on the left of": dx > 0 and abs(dx) > abs(dy),
             "on the bottom of": dy < 0 and abs(dy) > abs(dx), "on the top of": dy > 0 and abs(dy) > abs(dx)}
    if not sides.get(word, False):
        return 0.0
    iou = box_iou(box1, box2)
    return 1.0 if iou < iou_threshold else iou_threshold / iou


def depth_mean(depth: np.ndarray, box: Box) -> float:
    """The mean of ``depth[int(x_min):int(x_max), int(y_min):int(y_max)]``: rows indexed by x, as the
    official script does (NaN for an empty slice, which then satisfies no comparison)."""
    part = depth[int(box[0]):int(box[2]), int(box[1]):int(box[3])]
    return float(part.mean(dtype=np.float64)) if part.size else math.nan


def position_3d(word: str | None, box1: Box, box2: Box, depth: np.ndarray | None,
                iou_threshold: float = IOU_THRESHOLD_3D) -> float:
    """How well box1 stands ``word`` of box2 in depth, in [0, 1]. ``depth`` is MiDaS inverse depth in
    the detector's frame (larger = nearer). in front of: box1's mean depth must exceed box2's;
    behind / hidden: the reverse; then 1 when IoU > 0.5, IoU / 0.5 when 0 < IoU < 0.5, and 0 when
    the boxes do not overlap or IoU is exactly 0.5. 2D relations score as ``position_2d``."""
    if word not in RELATIONS_3D:
        return position_2d(word, box1, box2)
    nearer = depth_mean(depth, box1) - depth_mean(depth, box2)
    right_order = nearer > 0 if word == "in front of" else nearer < 0
    if not right_order:
        return 0.0
    iou = box_iou(box1, box2)
    if iou > iou_threshold:
        return 1.0
    return iou / iou_threshold if 0 < iou < iou_threshold else 0.0


def combine(conf1: float | None, conf2: float | None, position: float | None) -> float:
    """0.25·conf1 + 0.25·conf2 + 0.5·position when both objects were found (``position`` given),
    0.25·conf of the one found, else 0."""
    if conf1 is not None and conf2 is not None:
        return 0.25 * conf1 + 0.25 * conf2 + position / 2
    found = conf1 if conf1 is not None else conf2
    return 0.25 * found if found is not None else 0.0


def cut_off(score: float, threshold: float = CUT_OFF_2D) -> float:
    """The 2D metric's last step: a score below 0.5 counts as 0."""
    return 0.0 if score < threshold else score
