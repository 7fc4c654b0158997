"""Per-image scores of a prompt spec, T2I-CompBench's definitions with exact 0/1 facts.

``score`` grades one image against a spec from ``detect``'s detections: BLIP-VQA's attribute
score becomes "every spec object matched by a distinct detection", UniDet's spatial score
keeps its formula with confidences 0 or 1 (``position_score`` is ``determine_position``).
``spec_from_scene`` gives the spec a rendered scene satisfies in full.
"""

from __future__ import annotations

import itertools

from bench.errors import BenchError
from bench.world.oracle.detection import Detection, detect
from bench.world.scene import COLORS, REGIONS, RELATIONS, SHAPES, SIZES, TEXTURES, Scene

CATEGORIES = ("single", "color", "shape", "texture", "spatial", "complex")
# what a spec object may constrain, and the values each attribute takes
ATTRIBUTE_VALUES = {"shape": SHAPES, "color": tuple(COLORS), "texture": TEXTURES, "size": tuple(SIZES),
                    "region": REGIONS}


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def position_score(a: Detection, b: Detection, relation: str, iou_threshold: float = 0.1) -> float:
    """T2I-CompBench's ``determine_position`` for "a <relation> b", on box centres (y downwards):
    the displacement from a to b must point the named way and dominate the other axis; then 1 if
    the boxes' IoU < 0.1, else 0.1 / IoU.

    Displacements are measured in fractions of the image width / height — the frame of
    ``scene.relation_holds`` — which is T2I-CompBench's pixel frame for square images (its
    generated images are square); the IoU test is the same in either frame.
    """
    dx, dy = b.x - a.x, b.y - a.y
    ok = {"left of": dx > 0 and abs(dx) > abs(dy), "right of": dx < 0 and abs(dx) > abs(dy),
          "above": dy > 0 and abs(dy) > abs(dx), "below": dy < 0 and abs(dy) > abs(dx)}
    if relation not in ok:
        raise BenchError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")
    if not ok[relation]:
        return 0.0
    iou = _iou(a.bbox, b.bbox)
    return 1.0 if iou < iou_threshold else iou_threshold / iou


def _phrase(o: dict) -> str:
    words = [o.get("size"), o.get("color"), o.get("texture"), o.get("shape") or "object", o.get("region")]
    return "a " + " ".join(w for w in words if w)


def _max_matching(wants: list[dict], dets: list[Detection]) -> list[int | None]:
    """One-to-one assignment of spec objects to matching detections with the most objects found."""
    cand = [[j for j, d in enumerate(dets) if d.matches(o)] for o in wants]
    best: list[int | None] = [None] * len(wants)
    best_n = -1
    for choice in itertools.product(*[c + [None] for c in cand]):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)):
            continue
        if len(used) > best_n:
            best, best_n = list(choice), len(used)
            if best_n == len(wants):
                break
    return best


def _spatial(wants: list[dict], dets: list[Detection], relation: str) -> tuple[float, dict]:
    """UniDet-style spatial score of "wants[0] <relation> wants[1]" over the best pair of distinct detections.

    raw = 0.25·c1 + 0.25·c2 + 0.5·pos with c1, c2 ∈ {0, 1} (object found) and pos from
    ``position_score``. T2I-CompBench zeroes raw < 0.5; its c1, c2 are detector confidences
    below 1, so "both found, relation wrong" (0.25·(c1 + c2)) always lands below the cut-off.
    With exact facts that case is exactly 0.5, so the cut-off is applied as raw ≤ 0.5 → 0.
    """
    first = [j for j, d in enumerate(dets) if d.matches(wants[0])] + [None]
    second = [j for j, d in enumerate(dets) if d.matches(wants[1])] + [None]
    best = None
    for i in first:
        for j in second:
            if i is not None and i == j:
                continue
            pos = position_score(dets[i], dets[j], relation) if i is not None and j is not None else 0.0
            c1, c2 = int(i is not None), int(j is not None)
            raw = 0.25 * c1 + 0.25 * c2 + 0.5 * pos
            key = (raw, c1 + c2)
            if best is None or key > best[0]:
                best = (key, {"c1": c1, "c2": c2, "pos": pos, "raw": raw, "pair": [i, j]})
    info = best[1]
    return (info["raw"] if info["raw"] > 0.5 else 0.0), info


def check_spec(spec: dict) -> None:
    """BenchError, naming the spec's prompt, when ``score`` cannot grade ``spec``: an unknown category,
    no objects, an attribute or value the world does not have, a relation that is not one, or a
    spatial spec without two objects and a relation."""
    if not isinstance(spec, dict):
        raise BenchError(f"a prompt spec is a dict (prompt, category, objects, relation), got {type(spec).__name__}")
    where = f"prompt spec {spec.get('prompt')!r}"
    category, objects, relation = spec.get("category", "single"), spec.get("objects"), spec.get("relation")
    if category not in CATEGORIES:
        raise BenchError(f"{where}: unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    if not isinstance(objects, list) or not objects or not all(isinstance(o, dict) for o in objects):
        raise BenchError(f"{where}: \"objects\" must be a non-empty list of objects ({{\"shape\", \"color\", ...}}), "
                         f"got {objects!r}")
    for o in objects:
        for key, value in o.items():
            if key not in ATTRIBUTE_VALUES:
                raise BenchError(f"{where}: unknown object attribute {key!r}; known: {', '.join(ATTRIBUTE_VALUES)}")
            if value is not None and value not in ATTRIBUTE_VALUES[key]:
                raise BenchError(f"{where}: unknown {key} {value!r}; choose one of {', '.join(ATTRIBUTE_VALUES[key])}")
    if relation is not None and relation not in RELATIONS:
        raise BenchError(f"{where}: unknown relation {relation!r}; choose one of {', '.join(RELATIONS)}")
    if category == "spatial" and (len(objects) < 2 or relation is None):
        raise BenchError(f"{where}: a spatial spec needs two objects and a relation, got {len(objects)} "
                         f"object(s) and relation {relation!r}")
    if category == "complex" and relation is not None and len(objects) < 2:
        raise BenchError(f"{where}: a relation needs two objects, got {len(objects)}")


def score(image, spec: dict, detections: list[Detection] | None = None) -> dict:
    """Score one image against a prompt spec; ``detections`` (from ``detect``) skips detection.

    spec = {"prompt": str, "category": "single" | "color" | "shape" | "texture" | "spatial" | "complex",
            "objects": [{"shape", "color", "texture", "size"}, ...], "relation": str | None};
    an attribute that is None (or absent) is not constrained (an object may also constrain
    "region", one of ``scene.REGIONS``); for spatial the relation reads objects[0] <relation>
    objects[1]. Only known detections (confidence ≥ ``FOUND_CONFIDENCE``) can match. Per-image
    scores, T2I-CompBench's with 0/1 facts:

    - single / color / shape / texture (BLIP-VQA's product over noun phrases): 1 if every spec
      object is matched by a distinct detection (one-to-one assignment), else 0;
    - spatial (UniDet): 0.25·c1 + 0.25·c2 + 0.5·pos, zeroed at ≤ 0.5 (see ``_spatial``);
    - complex (3-in-1 without the CLIP action part): mean of the attribute score and, when a
      relation is given, the spatial score.

    A spec it cannot grade is a ``BenchError`` naming its prompt (``check_spec``).

    Returns {"score": float in [0, 1], "found": [the matched detection as a dict, or None, per
    spec object (spatial: the pair scored)], "details": {"missing": [noun phrases not found],
    "attribute_score", ("spatial_score", "c1", "c2", "pos", "raw", "pair", "relation_failed"),
    "detections": [every detection as a dict]}}.
    """
    check_spec(spec)
    dets = detect(image) if detections is None else detections
    wants = list(spec["objects"])
    category = spec.get("category", "single")
    relation = spec.get("relation")
    details: dict = {"detections": [d.as_dict() for d in dets]}
    assign = _max_matching(wants, dets)
    attr = float(all(a is not None for a in assign))
    details["attribute_score"] = attr
    found = [dets[j].as_dict() if j is not None else None for j in assign]
    missing = [_phrase(o) for o, j in zip(wants, assign) if j is None]
    if category == "spatial" or (category == "complex" and relation):
        sp, info = _spatial(wants[:2], dets, relation)
        details.update(spatial_score=sp, **info)
        if info["c1"] and info["c2"] and info["pos"] < 1.0:
            details["relation_failed"] = relation
        if category == "spatial":
            s = sp
            found = [dets[k].as_dict() if k is not None else None for k in info["pair"]]
            missing = [_phrase(o) for o, k in zip(wants[:2], info["pair"]) if k is None]
        else:
            s = (attr + sp) / 2
    else:
        s = attr
    details["missing"] = missing
    return {"score": float(s), "found": found, "details": details}


def spec_from_scene(scene: Scene, category: str | None = None) -> dict:
    """The spec a scene satisfies in full (every attribute constrained); handy for tests."""
    objs = [{"shape": o.shape, "color": o.color, "texture": o.texture, "size": o.size} for o in scene.objects]
    if category is None:
        category = "spatial" if scene.relation else ("single" if len(objs) == 1 else "complex")
    return {"prompt": "", "category": category, "objects": objs, "relation": scene.relation}
