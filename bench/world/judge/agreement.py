"""How well a judge agrees with people on model images: per-image precision / recall, per-facet agreement.

The labels (a ``labels.json``; the project's are in the repository's ``tests/data/world_judge/``) say, for each image, whether a person accepts
it under its category's rule (``human_accept``) and, per prompt object, which facets they saw
(present, colour, shape, texture, size) and whether the relation holds. A judge's verdict on an
image is "accept" when its score is 1 (every facet of the rule holds; a spatial pair that
overlaps scores below 1, as T2I-CompBench's 0.1 / IoU rule says).

- per category (and over all images): precision and recall of the judge's "accept" against the
  person's, with 95% percentile-bootstrap CIs over images (``n_boot`` resamples, seeded;
  a resample where the ratio is undefined is left out) and exact Clopper–Pearson intervals
  beside them (the bootstrap says [1, 1] for 13 of 13; the exact interval says 0.75–1), and
  the counts behind them;
- per facet (colour, shape, texture, size, present, relation) over prompt objects: how often the
  judge's reading agrees with the person's ("is this object's colour the prompt's?"). The judge's
  object for a prompt object is, as in the labelling rule, the detection (any blob) agreeing with most
  of its named attributes (one detection per prompt object); the relation is read between those two, as a person reads
  it whether or not their shapes are right.

``judge_agreement`` runs a judge over the labelled items; ``summarise`` turns verdicts into the
figures; ``AGREEMENT`` (``agreement.json`` beside the judge's weights) holds the held-out figures
the product cites.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image

from bench.errors import BenchError
from bench.world.oracle.scoring import position_score

AGREEMENT = Path(__file__).resolve().parents[1] / "reference" / "judge_agreement.json"
FACETS = ("present", "color", "shape", "texture", "size", "relation")


def load_labels(path: str | Path) -> tuple[Path, list[dict]]:
    """(the folder the image paths are relative to, the labelled items) of a labels.json."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such labels file")
    return path.parent, json.loads(path.read_text())["items"]


def _judge_facets(spec: dict, dets) -> dict:
    """The judge's facets in the labels' format: per prompt object, its best-agreeing detection (any
    blob: a person also names the colour of a blob that is no shape)."""
    cands = list(dets)
    wants = spec["objects"]

    def agree(o, d):
        return sum(o.get(k) is not None and getattr(d, k) == o[k] for k in ("color", "shape", "texture", "size"))

    best, best_key = [None] * len(wants), (-1, -1)
    for choice in itertools.product(*[list(range(len(cands))) + [None] for _ in wants]):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)):
            continue
        key = (len(used), sum(agree(o, cands[j]) for o, j in zip(wants, choice) if j is not None))
        if key > best_key:
            best, best_key = list(choice), key
    out = {"objects": []}
    for o, j in zip(wants, best):
        f = {"present": j is not None}
        for k in ("color", "shape", "texture", "size"):
            if o.get(k) is not None:
                f[k] = j is not None and getattr(cands[j], k) == o[k]
        out["objects"].append(f)
    if spec.get("relation"):
        ok = len(best) >= 2 and best[0] is not None and best[1] is not None
        out["relation"] = bool(ok and position_score(cands[best[0]], cands[best[1]], spec["relation"]) >= 1.0)
    return out


def judge_agreement(items: list[dict], root: Path, detect, specs: dict[tuple[str, int], dict]) -> list[dict]:
    """Per item: {"category", "split", "human", "judge", "human_facets", "judge_facets"}; ``detect``
    is a judge's detect function, ``specs`` maps (category, suite index) to the suite's spec."""
    from bench.world.oracle.scoring import score

    out = []
    for it in items:
        spec = specs[(it["category"], it["suite_index"])]
        image = Image.open(root / it["file"]).convert("RGB")
        dets = detect(image)
        verdict = score(image, spec, detections=dets)
        out.append({"id": it["id"], "category": it["category"], "split": it["split"], "model": it["model"],
                    "human": bool(it["human_accept"]), "judge": verdict["score"] >= 1.0 - 1e-9,
                    "human_facets": it["facets"], "judge_facets": _judge_facets(spec, dets)})
    return out


def _ratio_ci(hits: np.ndarray, base: np.ndarray, n_boot: int, seed: int) -> tuple[float | None, list | None]:
    """hits.sum() / base.sum() with a percentile-bootstrap 95% CI over units."""
    if base.sum() == 0:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), (n_boot, len(base)))
    b, h = base[idx].sum(1), hits[idx].sum(1)
    ok = b > 0
    r = h[ok] / b[ok]
    return float(hits.sum() / base.sum()), [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))]


def exact_ci(hits: int, n: int) -> list[float] | None:
    """Clopper–Pearson 95% interval of a proportion (scipy): unlike the bootstrap, it does not
    collapse to [1, 1] when every unit agrees."""
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(hits, n).proportion_ci(0.95, method="exact")
    return [float(ci.low), float(ci.high)]


def image_stats(rows: list[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """Precision / recall / accuracy of the judge's accept against the person's, with percentile-bootstrap
    and exact (Clopper–Pearson) 95% CIs, and the counts."""
    h = np.array([r["human"] for r in rows], bool)
    j = np.array([r["judge"] for r in rows], bool)
    tp = h & j
    p, p_ci = _ratio_ci(tp, j, n_boot, seed)
    rc, r_ci = _ratio_ci(tp, h, n_boot, seed + 1)
    acc, a_ci = _ratio_ci(h == j, np.ones_like(h), n_boot, seed + 2)
    return {"images": len(rows), "human_accepts": int(h.sum()), "judge_accepts": int(j.sum()), "both": int(tp.sum()),
            "precision": p, "precision_ci95": p_ci, "recall": rc, "recall_ci95": r_ci,
            "accuracy": acc, "accuracy_ci95": a_ci,
            "precision_exact95": exact_ci(int(tp.sum()), int(j.sum())),
            "recall_exact95": exact_ci(int(tp.sum()), int(h.sum())),
            "accuracy_exact95": exact_ci(int((h == j).sum()), len(rows))}


def facet_stats(rows: list[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """Per facet: agreement of judge and person over prompt objects (relation: over images), with CIs."""
    pairs: dict[str, list[tuple[bool, bool]]] = {f: [] for f in FACETS}
    for r in rows:
        for ho, jo in zip(r["human_facets"]["objects"], r["judge_facets"]["objects"]):
            for k in FACETS[:-1]:
                if k in ho:
                    pairs[k].append((ho[k], jo[k]))
        if "relation" in r["human_facets"]:
            pairs["relation"].append((r["human_facets"]["relation"], r["judge_facets"]["relation"]))
    out = {}
    for k, v in pairs.items():
        if not v:
            continue
        a = np.array(v, bool)
        agree, ci = _ratio_ci(a[:, 0] == a[:, 1], np.ones(len(a), bool), n_boot, seed)
        out[k] = {"units": len(a), "human_yes": int(a[:, 0].sum()), "judge_yes": int(a[:, 1].sum()),
                  "agreement": agree, "agreement_ci95": ci}
    return out


def summarise(rows: list[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """{"all": image_stats, "categories": {category: image_stats}, "facets": facet_stats}."""
    cats = sorted({r["category"] for r in rows}, key=lambda c: ("single", "color", "shape", "texture", "spatial",
                                                                  "complex").index(c))
    return {"all": image_stats(rows, n_boot, seed),
            "categories": {c: image_stats([r for r in rows if r["category"] == c], n_boot, seed) for c in cats},
            "facets": facet_stats(rows, n_boot, seed)}


def cited_agreement(path: str | Path = AGREEMENT) -> dict | None:
    """The judge's held-out agreement as recorded beside its weights, or None when not recorded."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
