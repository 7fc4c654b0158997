"""Detections for the spatial and numeracy metrics: the official frame (against torchvision's own
Resize), the detections-file reader, and the transformers adapters (tiny random OWLv2 and Grounding
DINO saved with save_pretrained) end to end, their boxes compared with a direct computation."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_compbench_spatial import SPACY, det, detections_file, make_samples

from bench.compbench.detectors import (Detection, DetectionsFile, frame_image, frame_size, is_official,
                                       metric_name, nms_per_label)
from bench.compbench.open_vocab import GroundingDinoDetector, Owlv2Detector, clipped, load_detector
from bench.compbench.parse import Parser
from bench.compbench.spatial import Spatial2DScorer
from bench.errors import BenchError


@pytest.mark.parametrize("size", [(512, 512), (1024, 1024), (479, 479), (512, 768), (768, 512), (640, 480),
                                  (1000, 999), (300, 200), (2048, 512), (481, 480)])
def test_frame_size_is_torchvisions_resize(size):
    from torchvision import transforms

    resized = transforms.Resize(479, max_size=480)(Image.new("RGB", size))
    assert frame_size(*size) == resized.size
    assert max(resized.size) <= 480


def test_frame_image_of_a_square_image_is_479():
    assert frame_size(512, 512) == (479, 479) and frame_size(512, 768) == (320, 480)


def test_nms_per_label_keeps_the_best_and_sorts():
    dets = [det("cat", 0.6, (0, 0, 10, 10)), det("cat", 0.9, (1, 0, 11, 10)), det("dog", 0.7, (0, 0, 10, 10)),
            det("cat", 0.8, (50, 50, 60, 60))]
    kept = nms_per_label(dets)
    assert [(d.label, d.score) for d in kept] == [("cat", 0.9), ("cat", 0.8), ("dog", 0.7)]
    assert nms_per_label([]) == []


def test_clipped_to_the_frame():
    assert clipped((-5, 3, 500, 490), 479, 479) == (0.0, 3.0, 479.0, 479.0)


# --------------------------------------------------------------------------- the detections file


def test_detections_file_reads_the_official_format(tmp_path):
    images = make_samples(tmp_path, ["a cat next to a dog", "a dog near a cat"])
    table = {images[0].file: [det("cat", 0.9, (0, 0, 479, 479)), det("dog", 0.3, (5, 5, 20, 20))],
             images[1].file: [], "other image_000099.png": [det("cow", 0.7)]}
    source = DetectionsFile(detections_file(tmp_path / "d.json", table))
    source.check(images)
    # a file that does not say what made its boxes is not taken as UniDet's
    assert source.name == "detector unknown" and source.checkpoint is None and source.declared is None
    assert metric_name("2D spatial", source) == "2D spatial (detector unknown)"
    assert source.detect(images[0], [], 0.5) == [Detection("cat", 0.9, (0.0, 0.0, 479.0, 479.0))]
    assert source.detect(images[1], ["cat"], 0.5) == []
    prov = source.provenance()
    assert prov["images"] == 3 and len(prov["sha256"]) == 64 and prov["checkpoint"] is None
    named = DetectionsFile(detections_file(tmp_path / "e.json", table, detector="DETR R50"))
    assert named.name == "DETR R50"
    assert metric_name("numeracy", named) == "numeracy (DETR R50, not the official metric)"


RS200_FILE = {"name": "UniDet", "checkpoint": "experts/Unified_learned_OCIM_RS200_6x+2x.pth"}
R50_FILE = {"name": "UniDet", "checkpoint": "Unified_learned_OCIM_R50_6x+2x.pth", "sha256": "ab" * 32}


@pytest.mark.parametrize("detector, kind, metric, official", [
    (RS200_FILE, "2D spatial", "2D spatial (UniDet RS200)", True),
    ({"name": "UniDet", "checkpoint": "https://host/Unified_learned_OCIM_RS200_6x%2B2x.pth"}, "2D spatial",
     "2D spatial (UniDet RS200)", True),
    (R50_FILE, "3D spatial", "3D spatial (UniDet R50)", True),
    (R50_FILE, "numeracy", "numeracy (UniDet R50)", True),
    # the other rule's checkpoint: named, and not the official metric
    (R50_FILE, "2D spatial", "2D spatial (UniDet R50; the official rule uses RS200)", False),
    (RS200_FILE, "numeracy", "numeracy (UniDet RS200; the official rule uses R50)", False),
    ("UniDet", "2D spatial", "2D spatial (UniDet, checkpoint unknown; the official rule uses RS200)", False),
    ({"name": "UniDet"}, "3D spatial", "3D spatial (UniDet, checkpoint unknown; the official rule uses R50)", False),
    ({"name": "UniDet", "checkpoint": "my_finetune.pth"}, "2D spatial",
     "2D spatial (UniDet my_finetune; the official rule uses RS200)", False),
    (None, "numeracy", "numeracy (detector unknown)", False),
    ({"name": "OWLv2", "checkpoint": "google/owlv2-base-patch16-ensemble"}, "2D spatial",
     "2D spatial (OWLv2, not the official metric)", False),
])
def test_each_rule_names_its_detector_and_checkpoint(tmp_path, detector, kind, metric, official):
    images = make_samples(tmp_path, ["a cat next to a dog"])
    source = DetectionsFile(detections_file(tmp_path / "d.json", {images[0].file: []}, detector=detector))
    assert metric_name(kind, source) == metric
    assert is_official(kind, source) is official
    prov = source.provenance()
    assert prov["detector"] == (detector["name"] if isinstance(detector, dict) else detector or "detector unknown")
    if isinstance(detector, dict) and detector.get("sha256"):
        assert prov["checkpoint_sha256"] == detector["sha256"]


@pytest.mark.parametrize("detector", [
    "", 3, [], {"checkpoint": "x.pth"}, {"name": "UniDet", "checkpoint": 5}, {"name": "UniDet", "weights": "x"},
])
def test_a_bad_detector_entry_is_refused(tmp_path, detector):
    images = make_samples(tmp_path, ["a cat next to a dog"])
    with pytest.raises(BenchError, match=r"d\.json: 'detector' must say what made the detections"):
        DetectionsFile(detections_file(tmp_path / "d.json", {images[0].file: []}, detector=detector))


def bad_file(tmp_path, entries, name="a cat next to a dog_000000.png"):
    make_samples(tmp_path, ["a cat next to a dog"])
    path = tmp_path / "d.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps({name: entries}))
    return path


@pytest.mark.parametrize("entries, message", [
    ("{", r"cannot read detections file .*d\.json: invalid JSON at line 1"),
    ("[1, 2]", r"detections file .*d\.json holds a JSON list, not an object"),
    ({"label": "cat"}, r"image 'a cat next to a dog_000000\.png' maps to a JSON dict, not a list"),
    ([["cat", 0.9, [0, 0, 1, 1]]], r"detection 0 is a JSON list, not an object"),
    ([{"label": "cat", "score": 0.9}], r"detection 0 has no 'box'"),
    ([{"label": "", "score": 0.9, "box": [0, 0, 1, 1]}], r"'label' must be a non-empty string"),
    ([{"label": "cat", "score": 1.5, "box": [0, 0, 1, 1]}], r"'score' must be a number from 0 to 1, got 1\.5"),
    ([{"label": "cat", "score": True, "box": [0, 0, 1, 1]}], r"'score' must be a number from 0 to 1, got True"),
    ('{"a cat next to a dog_000000.png": [{"label": "cat", "score": NaN, "box": [0, 0, 1, 1]}]}',
     r"'score' must be a number from 0 to 1, got nan"),
    ([{"label": "cat", "score": 0.9, "box": [0, 0, 1]}], r"'box' must be 4 numbers \[x0, y0, x1, y1\]"),
    ([{"label": "cat", "score": 0.9, "box": [0, 0, "1", 1]}], r"'box' must be 4 numbers"),
    ([{"label": "cat", "score": 0.9, "box": [5, 0, 1, 1]}], r"has x0 > x1 or y0 > y1"),
    ('{"detector": 3}', r"'detector' must say what made the detections"),
])
def test_detections_file_bad_entries(tmp_path, entries, message):
    with pytest.raises(BenchError, match=message):
        DetectionsFile(bad_file(tmp_path, entries))


def test_detections_file_missing_images_and_boxes_outside_the_frame(tmp_path):
    images = make_samples(tmp_path, ["a cat next to a dog", "a dog near a cat"])
    half = DetectionsFile(detections_file(tmp_path / "d.json", {images[0].file: []}))
    with pytest.raises(BenchError, match=r"d\.json has no entry for 1 of the 2 images .*'a dog near a cat_000001"):
        half.check(images)
    # a 512×512 image's frame is 479×479: a box to x = 480 lies outside it
    outside = {images[0].file: [det("cat", 0.9, (0, 0, 480, 100))], images[1].file: []}
    with pytest.raises(BenchError, match=r"image 'a cat next to a dog_000000\.png', detection 0: box .* outside the "
                                         r"official frame of this image, 479×479"):
        DetectionsFile(detections_file(tmp_path / "e.json", outside)).check(images)
    negative = {images[0].file: [], images[1].file: [det("cat", 0.9, (-1, 0, 10, 10))]}
    with pytest.raises(BenchError, match=r"'a dog near a cat_000001\.png', detection 0"):
        DetectionsFile(detections_file(tmp_path / "f.json", negative)).check(images)


def test_detections_file_names_an_unreadable_image(tmp_path):
    images = make_samples(tmp_path, ["a cat next to a dog"])
    images[0].path.write_bytes(b"\x89PNG broken")
    source = DetectionsFile(detections_file(tmp_path / "d.json", {images[0].file: []}))
    with pytest.raises(BenchError, match=r"cannot read image .*a cat next to a dog_000000\.png"):
        source.check(images)


@pytest.mark.parametrize("spec, detections, message", [
    (None, None, r"no detector: pass --detections-2d FILE \(the official rule uses UniDet RS200's detections\)"),
    ("owlv2:x", "d.json", r"give one of --detector and --detections-2d, not both"),
    ("unidet:weights.pth", None, r"UniDet runs only in the official detectron2 code"),
    ("detr:facebook/detr-resnet-50", None, r"expected KIND:PATH with KIND one of owlv2, grounding-dino"),
    ("owlv2", None, r"expected KIND:PATH"),
    ("owlv2:", None, r"expected KIND:PATH"),
])
def test_load_detector_spec_errors(spec, detections, message):
    with pytest.raises(BenchError, match=message):
        load_detector(spec, detections=detections)


# --------------------------------------------------------------------------- OWLv2


@pytest.fixture(scope="module")
def owlv2(tmp_path_factory):
    from tiny_detectors import build_tiny_owlv2

    return build_tiny_owlv2(tmp_path_factory.mktemp("owlv2") / "owlv2")


@pytest.fixture(scope="module")
def grounding_dino(tmp_path_factory):
    from tiny_detectors import build_tiny_grounding_dino

    return build_tiny_grounding_dino(tmp_path_factory.mktemp("gdino") / "grounding-dino")


def noisy_samples(root, prompts, size):
    images = make_samples(root, prompts, size=size)
    rng = np.random.default_rng(0)
    for im in images:
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(im.path)
    return images


def test_owlv2_boxes_land_in_the_official_frame(owlv2, tmp_path):
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    images = noisy_samples(tmp_path, ["a cat next to a dog"], size=(512, 768))  # frame 320×480
    detector = load_detector(f"owlv2:{owlv2}")
    assert isinstance(detector, Owlv2Detector) and detector.name == "OWLv2"
    found = detector.detect(images[0], ["cat", "dog"], threshold=0.0)
    assert found and all(d.label in ("cat", "dog") for d in found)
    assert all(0 <= d.box[0] <= d.box[2] <= 320 and 0 <= d.box[1] <= d.box[3] <= 480 for d in found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    # a direct computation: best query per box, sigmoid, centre boxes × the padded square's side (480), clipped
    model, processor = Owlv2ForObjectDetection.from_pretrained(owlv2).eval(), Owlv2Processor.from_pretrained(owlv2)
    with torch.no_grad():
        out = model(**processor(text=[["cat", "dog"]], images=frame_image(images[0].path), return_tensors="pt"))
    best = out.logits[0].max(-1)
    cx, cy, w, h = out.pred_boxes[0].unbind(-1)
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * 480
    direct = [Detection(["cat", "dog"][int(q)], float(torch.sigmoid(v)), clipped(b.tolist(), 320, 480))
              for v, q, b in zip(best.values, best.indices, boxes)]
    expected = nms_per_label(direct)
    assert [d.label for d in found] == [d.label for d in expected]
    np.testing.assert_allclose([d.score for d in found], [d.score for d in expected], rtol=1e-6)
    np.testing.assert_allclose([d.box for d in found], [d.box for d in expected], atol=1e-3)
    assert detector.detect(images[0], [], 0.0) == []


def test_owlv2_threshold_and_the_scorer_end_to_end(owlv2, tmp_path):
    images = noisy_samples(tmp_path, ["a girl next to a dog", "a cat on the left of a lamp"], size=(512, 512))
    detector = Owlv2Detector(owlv2)
    everything = detector.detect(images[0], ["person", "dog"], 0.0)
    cut = sorted(d.score for d in everything)[len(everything) // 2]
    assert [d for d in everything if d.score > cut] == detector.detect(images[0], ["person", "dog"], cut)
    scorer = Spatial2DScorer(detector, parser=Parser(SPACY), threshold=0.0)
    assert scorer.metric == "2D spatial (OWLv2, not the official metric)"
    scores = scorer.score(images, progress=False)
    assert scores[0].details["objects"] == ["person", "dog"]
    # each object takes the first (most confident) box labelled with its name
    firsts = {d.label: d.score for d in reversed(detector.detect(images[0], ["person", "dog"], 0.0))}
    assert scores[0].details["confidences"] == [firsts.get("person"), firsts.get("dog")] and firsts
    prov = scorer.provenance()["detector"]
    assert prov["detector"] == "OWLv2" and len(prov["weights_sha256"]) == 64
    json.dumps(scorer.provenance())


def test_owlv2_folder_errors(owlv2, grounding_dino, tmp_path):
    with pytest.raises(BenchError, match=r"OWLv2 .*nowhere is neither a folder nor a model in the Hugging Face cache;"
                                         r" on a machine with internet access run `hf download google/owlv2"):
        Owlv2Detector(tmp_path / "nowhere")
    with pytest.raises(BenchError, match=r"holds a 'grounding-dino' model, not OWLv2"):
        Owlv2Detector(grounding_dino)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match=r"no OWLv2 in .*empty: .*config\.json does not exist"):
        Owlv2Detector(tmp_path / "empty")
    with pytest.raises(BenchError, match=r"device 'gpu0' is not a device name"):
        Owlv2Detector(owlv2, device="gpu0")


# --------------------------------------------------------------------------- Grounding DINO


def test_grounding_dino_labels_by_token_spans_and_boxes_in_the_frame(grounding_dino, tmp_path):
    from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

    images = noisy_samples(tmp_path, ["a cat next to a traffic light"], size=(768, 512))  # frame 480×320
    detector = load_detector(f"grounding-dino:{grounding_dino}")
    assert isinstance(detector, GroundingDinoDetector) and detector.name == "Grounding DINO"
    queries = ["cat", "traffic light"]
    text = "cat. traffic light."
    ids = detector.processor.tokenizer(text)["input_ids"]
    assert detector.token_spans(text, queries, ids) == [[1], [3, 4]]  # [CLS] cat . traffic light . [SEP]
    found = detector.detect(images[0], queries, threshold=0.0)
    assert found and {d.label for d in found} <= set(queries)
    assert all(0 <= d.box[0] <= d.box[2] <= 480 and 0 <= d.box[1] <= d.box[3] <= 320 for d in found)
    # a direct computation: mean sigmoid over each name's tokens, the best name, relative boxes × (480, 320)
    model = GroundingDinoForObjectDetection.from_pretrained(grounding_dino).eval()
    processor = GroundingDinoProcessor.from_pretrained(grounding_dino)
    with torch.no_grad():
        out = model(**processor(images=frame_image(images[0].path), text=text, return_tensors="pt"))
    probs = out.logits[0].sigmoid()
    per_name = torch.stack([probs[:, 1], probs[:, 3:5].mean(-1)], -1)
    cx, cy, w, h = out.pred_boxes[0].unbind(-1)
    boxes = torch.stack([(cx - w / 2) * 480, (cy - h / 2) * 320, (cx + w / 2) * 480, (cy + h / 2) * 320], -1)
    direct = [Detection(queries[int(q)], float(s), clipped(b.tolist(), 480, 320))
              for s, q, b in zip(*per_name.max(-1), boxes)]
    expected = nms_per_label(direct)
    assert [d.label for d in found] == [d.label for d in expected]
    np.testing.assert_allclose([d.score for d in found], [d.score for d in expected], rtol=1e-6)
    np.testing.assert_allclose([d.box for d in found], [d.box for d in expected], atol=1e-3)
    assert GroundingDinoDetector(grounding_dino).provenance()["detector"] == "Grounding DINO"
    square = noisy_samples(tmp_path / "square", ["a dog near a cat"], size=(512, 512))
    assert all(max(d.box) <= 479 for d in detector.detect(square[0], ["dog", "cat"], threshold=0.0))
