"""The world judge (bench/world/judge/): blobs, the network, its reading of renders and model images,
the agreement statistics, the human labels it is measured on, and training."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.world.dataset import load_suite, scene_from_spec
from bench.world.demo import SUITES
from bench.world.judge import ACCEPT, JUDGE_NAME, judge_agreement_record, judge_detect, judge_score, read_blobs
from bench.world.judge.agreement import AGREEMENT, image_stats, load_labels
from bench.world.judge.blobs import INPUT, find_blobs
from bench.world.judge.network import DEFAULT_WEIGHTS, load_blobnet
from bench.world.render import render
from bench.world.scene import COLORS, SHAPES, Obj, Scene

LABELS = Path(__file__).parent / "data" / "world_judge" / "labels.json"
CATEGORIES = ("single", "color", "shape", "texture", "spatial", "complex")


def test_blobs_of_a_render():
    scene = Scene((Obj("circle", "red", "dotted", "large", 0.3, 0.5), Obj("square", "cyan", "solid", "small", 0.75, 0.5)),
                  relation="left of")
    img, blobs = find_blobs(render(scene, 128))
    assert img.shape == (128, 128, 3) and len(blobs) == 2
    assert [list(COLORS)[b.color] for b in blobs] == ["red", "cyan"]  # largest first
    for b in blobs:
        assert b.inputs.shape == (2, INPUT, INPUT) and b.inputs.dtype == np.float32
        assert b.inputs[0].max() > 0.95 and b.inputs[0][0].max() < 0.05  # the mask, with a margin around it
    inside = [b.inputs[1][b.inputs[0] > 0.9].mean() for b in blobs]
    assert inside[0] > 0.1 and inside[1] < 0.05  # dots are dark; a solid object is not


def test_judge_reads_renders_exactly():
    """Renders are read by the exact oracle inside the judge: every suite's spec scores 1."""
    for category in CATEGORIES:
        for i, spec in enumerate(load_suite(SUITES, category)[:3]):
            image = render(scene_from_spec(spec, random.Random(i)), 128, seed=i)
            assert judge_score(image, spec)["score"] == 1.0, (category, spec["prompt"])
            assert {d.fit["reader"] for d in judge_detect(image)} == {"exact oracle"}


def test_the_network_reads_clean_objects():
    """The learned reading (no oracle) names the shape and colour of clean rendered objects."""
    rng = random.Random(0)
    hits, total = 0, 0
    for k in range(24):
        shape, color = SHAPES[k % 6], rng.choice(list(COLORS))
        scene = Scene((Obj(shape, color, rng.choice(("solid", "striped")), "large", rng.uniform(0.35, 0.65),
                           rng.uniform(0.35, 0.65)),))
        dets = read_blobs(render(scene, 128))
        total += 1
        hits += len(dets) == 1 and dets[0].shape == shape and dets[0].color == color and dets[0].fit["reader"] == "judge"
    assert hits >= 22, f"{hits} of {total}"


def test_an_oval_is_not_a_circle_and_a_rectangle_not_a_square():
    for shape, (w, h) in (("circle", (60, 40)), ("square", (64, 36))):
        canvas = Image.new("RGB", (128, 128), (110, 110, 110))
        from PIL import ImageDraw

        draw = ImageDraw.Draw(canvas)
        box = [64 - w // 2, 64 - h // 2, 64 + w // 2, 64 + h // 2]
        (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=COLORS["red"])
        det = judge_detect(canvas)[0]
        assert not det.known and det.shape is None and det.color == "red"
        assert det.fit["aspect"] > ACCEPT[shape][0]


def test_weights_load_and_the_record_names_them():
    net, record = load_blobnet(DEFAULT_WEIGHTS)
    assert record["arch"] == "blobnet-v1" and record["examples"] >= 1000
    import torch

    ls, lt = net(torch.zeros(1, 2, INPUT, INPUT))
    assert ls.shape == (1, 7) and lt.shape == (1, 4)


def test_recorded_agreement_is_for_the_bundled_weights():
    """judge_agreement.json cites the held-out split and the SHA-256 of the weights that ship."""
    rec = judge_agreement_record()
    assert rec is not None, f"{AGREEMENT} is missing or measured for other weights"
    assert rec["name"] == JUDGE_NAME and rec["split"] == "heldout"
    _, items = load_labels(LABELS)
    assert rec["images"] == sum(it["split"] == "heldout" for it in items)
    assert set(rec["categories"]) == set(CATEGORIES)


# ---------------------------------------------------------------- the human labels


def _rule(spec: dict, label: dict) -> bool:
    """The labelling rule's category verdict, transcribed here from its text: every named attribute
    of every prompt object as seen, and the relation where the prompt has one."""
    for want, seen in zip(spec["objects"], label["objects"], strict=True):
        if not seen.get("present"):
            return False
        for key, value in want.items():
            if value is not None and seen.get(key) != value:
                return False
    return not spec.get("relation") or bool(label.get("relation"))


def test_labels_are_complete_blind_and_split_by_prompt():
    root, items = load_labels(LABELS)
    doc = json.loads(LABELS.read_text())
    assert "blind" in doc["about"] and "no judge or oracle had been run" in doc["about"]
    assert "Category rule" in doc["rule"]
    assert len(items) >= 300 and {it["category"] for it in items} == set(CATEGORIES)
    assert len({it["model"] for it in items}) >= 2 and len(doc["models"]) >= 2
    halves: dict[tuple, set] = {}
    for it in items:
        path = root / it["file"]
        with Image.open(path) as im:
            assert im.size == (128, 128) and im.format == "PNG"
        assert it["file"].startswith(it["split"] + "/")
        halves.setdefault((it["category"], it["suite_index"]), set()).add(it["split"])
        spec = load_suite(SUITES, it["category"])[it["suite_index"]]
        assert spec["prompt"] == it["prompt"]
        assert _rule(spec, it["seen"]) == it["human_accept"], it["id"]
    assert all(len(s) == 1 for s in halves.values())  # no prompt in both halves
    n = {s: sum(it["split"] == s for it in items) for s in ("dev", "heldout")}
    assert min(n.values()) >= 150


# ---------------------------------------------------------------- statistics


def test_image_stats_counts_and_bootstrap_against_scipy():
    from scipy import stats

    rng = np.random.default_rng(1)
    human = rng.random(80) < 0.4
    judge = np.where(rng.random(80) < 0.8, human, ~human)
    rows = [{"human": bool(h), "judge": bool(j)} for h, j in zip(human, judge)]
    s = image_stats(rows, n_boot=4000, seed=0)
    tp = int((human & judge).sum())
    assert s["precision"] == pytest.approx(tp / judge.sum()) and s["recall"] == pytest.approx(tp / human.sum())
    assert s["accuracy"] == pytest.approx((human == judge).mean())
    # scipy's percentile bootstrap of the same ratio (paired resampling of the images)
    ref = stats.bootstrap((human.astype(float), judge.astype(float)),
                          lambda h, j: (h * j).sum() / j.sum(), paired=True, vectorized=False,
                          n_resamples=4000, method="percentile", random_state=3)
    lo, hi = s["precision_ci95"]
    assert abs(lo - ref.confidence_interval.low) < 0.04 and abs(hi - ref.confidence_interval.high) < 0.04
    assert image_stats([{"human": False, "judge": False}] * 5)["precision"] is None  # undefined, not 0


# ---------------------------------------------------------------- training


def test_training_writes_loadable_weights(tmp_path):
    from bench.world.judge.train import train

    out = tmp_path / "judge.safetensors"
    record = train(out, n=96, steps=3, batch=16, workers=1, log=lambda *_: None)
    net, rec = load_blobnet(out)
    assert rec == record and rec["steps"] == 3 and set(rec["synthetic_accuracy"]) == {"shape", "texture"}
