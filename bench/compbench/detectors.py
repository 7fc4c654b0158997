"""Object detections for the spatial, 3D spatial and numeracy metrics, from any detector.

The official metrics run UniDet (detectron2) on each image resized with
``torchvision.transforms.Resize(479, max_size=480)``: short side 479, long side at most 480 (479×479
for a square image). Boxes live in that *official frame*, and the distance threshold of the 2D rule
(150 px) is measured there. A ``Detector`` gives, per image, ``Detection(label, score, box)`` in that
frame and in the detector's order (UniDet's: by decreasing score, after per-class NMS and the 0.5
confidence cut, ``score > 0.5``).

**One detector per rule.** The official scripts use two UniDet checkpoints: **RS200**
(``Unified_learned_OCIM_RS200_6x+2x``) for 2D spatial and the spatial part of complex
(``UniDet_eval/2D_spatial_eval.py``), **R50** (``Unified_learned_OCIM_R50_6x+2x``) for 3D spatial and
numeracy (``3D_spatial_eval.py``, ``numeracy_eval.py``). A run takes one detections file per rule
(``--detections-2d``, ``--detections-3d``), and every metric name says which detector and checkpoint
made its boxes (``metric_name``): "2D spatial (UniDet RS200)" only when the file says UniDet RS200;
"2D spatial (UniDet R50; the official rule uses RS200)", "2D spatial (UniDet, checkpoint unknown;
the official rule uses RS200)", "2D spatial (detector unknown)" or "2D spatial (OWLv2, not the
official metric)" otherwise.

Detectors (``bench.compbench.open_vocab.load_detector``):

- ``DetectionsFile`` (``--detections-2d FILE``, ``--detections-3d FILE``): detections made elsewhere,
  e.g. by the official UniDet: a JSON object mapping each image's file name in ``samples/`` to a list
  of ``{"label": str, "score": float, "box": [x0, y0, x1, y1]}`` in the official frame and the
  detector's order. The top-level ``"detector"`` says what made them: ``{"name": "UniDet",
  "checkpoint": "Unified_learned_OCIM_RS200_6x+2x.pth"}`` (optionally ``"sha256"`` of the checkpoint;
  a plain string is the name alone, the checkpoint unknown); without it the detector is unknown, and
  so labelled. Detections at or below the confidence threshold are ignored. A missing image, a bad
  entry or a box outside its image's frame is a ``BenchError`` naming the file and the image.
- ``owlv2:PATH`` and ``grounding-dino:PATH`` (``bench.compbench.open_vocab``): open-vocabulary
  detectors from transformers, asked for the prompt's own object names.

UniDet's labels are its 722 class names ("person", "cattle, cow", ...), and the official rules match
them exactly (2D) or as substrings (3D, numeracy); an open-vocabulary detector labels each box with
the object name it was asked for, so it "finds" names UniDet has no class for (wallet, mouse, sofa,
...). Scores made with another detector are a different metric and are labelled with its name.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from bench.compbench.samples import SampleImage, open_image
from bench.errors import BenchError
from pixart.errors import read_json
from pixart.files import sha256_files

FRAME_SHORT = 479  # the official detector transform: Resize(479, max_size=480)
FRAME_MAX = 480
CONFIDENCE = 0.5  # UniDet's ROI_HEADS.SCORE_THRESH_TEST; detectron2 keeps score > threshold
NMS_IOU = 0.5  # detectron2's ROI_HEADS.NMS_THRESH_TEST default, which UniDet's configs keep
OFFICIAL_DETECTOR = "UniDet"
UNKNOWN_DETECTOR = "detector unknown"
# the official checkpoint of each rule (the metric's name → checkpoint), and their short names
RS200 = "Unified_learned_OCIM_RS200_6x+2x"
R50 = "Unified_learned_OCIM_R50_6x+2x"
CHECKPOINT_SHORT = {RS200: "RS200", R50: "R50"}
OFFICIAL_CHECKPOINT = {"2D spatial": RS200, "3D spatial": R50, "numeracy": R50}
BOX_TOLERANCE = 0.01  # px: boxes may pass the frame's edge by rounding only
KINDS = ("owlv2", "grounding-dino")


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the official frame

    def to_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "box": list(self.box)}


class Detector(Protocol):
    name: str  # "UniDet", "OWLv2", "Grounding DINO", or "detector unknown": the metric names it
    checkpoint: str | None  # its weights (e.g. "Unified_learned_OCIM_RS200_6x+2x"); None when unknown

    def check(self, images: list[SampleImage]) -> None:
        """BenchError, before any work, when ``images`` cannot be detected (e.g. missing from a file)."""

    def detect(self, image: SampleImage, queries: Sequence[str], threshold: float) -> list[Detection]:
        """The detections of ``image`` with score > ``threshold``, in the detector's order. ``queries``
        are the object names the prompt asks about (open-vocabulary detectors look for those)."""

    def provenance(self) -> dict: ...


def checkpoint_name(value: str | None) -> str | None:
    """A checkpoint as the metric names it: the file name without folders and ``.pth`` (a URL's ``%2B``
    read as ``+``)."""
    if not value:
        return None
    name = str(value).replace("%2B", "+").replace("%2b", "+").rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".pth")


def metric_name(kind: str, detector: Detector, extra: str = "") -> str:
    """``"<kind> (UniDet RS200)"`` when the detections are the official checkpoint's for this rule (``kind``:
    "2D spatial", "3D spatial" or "numeracy"), else a name that says what made them and that it is not
    the official metric (see the module docstring)."""
    name, checkpoint = detector.name, checkpoint_name(getattr(detector, "checkpoint", None))
    official = CHECKPOINT_SHORT[OFFICIAL_CHECKPOINT[kind]]
    if name == OFFICIAL_DETECTOR:
        if checkpoint == OFFICIAL_CHECKPOINT[kind]:
            what = f"UniDet {official}"
        elif checkpoint is None:
            what = f"UniDet, checkpoint unknown; the official rule uses {official}"
        else:
            what = f"UniDet {CHECKPOINT_SHORT.get(checkpoint, checkpoint)}; the official rule uses {official}"
    elif name == UNKNOWN_DETECTOR:
        what = UNKNOWN_DETECTOR
    else:
        what = f"{name}, not the official metric"
    return f"{kind} ({what}{extra})"


def is_official(kind: str, detector: Detector) -> bool:
    """Whether ``detector``'s boxes are what the official ``kind`` rule uses (UniDet, that checkpoint)."""
    return (detector.name == OFFICIAL_DETECTOR
            and checkpoint_name(getattr(detector, "checkpoint", None)) == OFFICIAL_CHECKPOINT[kind])


def frame_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of an image of ``width``×``height`` after ``Resize(479, max_size=480)``
    (torchvision's arithmetic: the long side is scaled with the short one and truncated, then, when
    over 480, set to 480 with the short side scaled down and truncated)."""
    short, long = sorted((width, height))
    new_short, new_long = FRAME_SHORT, int(FRAME_SHORT * long / short)
    if new_long > FRAME_MAX:
        new_short, new_long = int(FRAME_MAX * new_short / new_long), FRAME_MAX
    return (new_short, new_long) if width <= height else (new_long, new_short)


def frame_transform():
    """The official detector transform (torchvision, bilinear on the PIL image)."""
    from torchvision import transforms

    return transforms.Resize(FRAME_SHORT, max_size=FRAME_MAX)


def frame_image(path: Path):
    """The RGB image the official detector sees (before its BGR flip): resized into the official frame."""
    return frame_transform()(open_image(path))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image's header; BenchError names an unreadable file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise BenchError(f"cannot read image {path}: {e}") from None


def keep_confident(detections: Sequence[Detection], threshold: float) -> list[Detection]:
    """The detections scoring above ``threshold`` (detectron2's rule: score > threshold), in order."""
    return [d for d in detections if d.score > threshold]


def nms_per_label(detections: list[Detection], iou: float = NMS_IOU) -> list[Detection]:
    """Per-label non-maximum suppression at ``iou``, the result in decreasing score (detectron2's order)."""
    import torch
    from torchvision.ops import batched_nms

    if not detections:
        return []
    labels = sorted({d.label for d in detections})
    keep = batched_nms(torch.tensor([d.box for d in detections], dtype=torch.float64),
                       torch.tensor([d.score for d in detections], dtype=torch.float64),
                       torch.tensor([labels.index(d.label) for d in detections]), iou)
    return [detections[i] for i in keep.tolist()]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_detection(raw, where: str) -> Detection:
    """One ``{"label", "score", "box"}`` entry; BenchError says what is wrong with it."""
    if not isinstance(raw, dict):
        raise BenchError(f"{where} is a JSON {type(raw).__name__}, not an object "
                         '{"label": str, "score": float, "box": [x0, y0, x1, y1]}')
    missing = [k for k in ("label", "score", "box") if k not in raw]
    if missing:
        raise BenchError(f"{where} has no {', '.join(repr(k) for k in missing)}")
    label, score, box = raw["label"], raw["score"], raw["box"]
    if not isinstance(label, str) or not label.strip():
        raise BenchError(f"{where}: 'label' must be a non-empty string, got {label!r}")
    if not _number(score) or not 0 <= score <= 1:
        raise BenchError(f"{where}: 'score' must be a number from 0 to 1, got {score!r}")
    if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
        raise BenchError(f"{where}: 'box' must be 4 numbers [x0, y0, x1, y1], got {box!r}")
    if box[0] > box[2] or box[1] > box[3]:
        raise BenchError(f"{where}: 'box' {box} has x0 > x1 or y0 > y1; boxes are [x0, y0, x1, y1]")
    return Detection(label, float(score), tuple(float(v) for v in box))


def _declared_detector(declared, path: Path) -> tuple[str | None, str | None, str | None]:
    """(name, checkpoint, checkpoint SHA-256) of a detections file's ``"detector"`` entry."""
    if declared is None:
        return None, None, None
    if isinstance(declared, str) and declared.strip():
        return declared.strip(), None, None
    if isinstance(declared, dict) and isinstance(declared.get("name"), str) and declared["name"].strip():
        extra = sorted(set(declared) - {"name", "checkpoint", "sha256"})
        checkpoint, digest = declared.get("checkpoint"), declared.get("sha256")
        if not extra and all(v is None or (isinstance(v, str) and v.strip()) for v in (checkpoint, digest)):
            return declared["name"].strip(), checkpoint, digest
    raise BenchError(f"detections file {path}: 'detector' must say what made the detections, as "
                     '{"name": "UniDet", "checkpoint": "Unified_learned_OCIM_RS200_6x+2x.pth"} (optionally with '
                     f'"sha256", the checkpoint\'s) or a name alone, got {declared!r}')


class DetectionsFile:
    """Detections read from a JSON file (``--detections-2d`` / ``--detections-3d``; format in the module
    docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        raw = read_json(self.path, BenchError, "detections file")
        declared = raw.pop("detector", None)
        name, self.checkpoint, self.checkpoint_sha256 = _declared_detector(declared, self.path)
        self.name = name or UNKNOWN_DETECTOR
        self.declared = declared
        self.table: dict[str, list[Detection]] = {}
        for image, entries in raw.items():
            where = f"detections file {self.path}: image {image!r}"
            if not isinstance(entries, list):
                raise BenchError(f"{where} maps to a JSON {type(entries).__name__}, not a list of detections")
            self.table[image] = [_parse_detection(d, f"{where}, detection {i}") for i, d in enumerate(entries)]

    def check(self, images: list[SampleImage]) -> None:
        """BenchError naming the file and the images it lacks, or the first box outside its image's frame."""
        missing = [im.file for im in images if im.file not in self.table]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise BenchError(f"detections file {self.path} has no entry for {len(missing)} of the {len(images)} images "
                             f"in {images[0].path.parent}: {', '.join(repr(m) for m in missing[:3])}{more}; give "
                             "every image a list (empty when nothing was detected)")
        for im in images:
            width, height = frame_size(*image_size(im.path))
            for i, d in enumerate(self.table[im.file]):
                x0, y0, x1, y1 = d.box
                if min(x0, y0) < -BOX_TOLERANCE or x1 > width + BOX_TOLERANCE or y1 > height + BOX_TOLERANCE:
                    raise BenchError(f"detections file {self.path}: image {im.file!r}, detection {i}: box "
                                     f"{list(d.box)} lies outside the official frame of this image, {width}×{height} "
                                     f"(the image resized to short side {FRAME_SHORT}, long side at most {FRAME_MAX}, "
                                     "as the official UniDet scripts resize it)")

    def detect(self, image: SampleImage, queries: Sequence[str], threshold: float) -> list[Detection]:
        return keep_confident(self.table[image.file], threshold)

    def provenance(self) -> dict:
        return {"detector": self.name, "checkpoint": checkpoint_name(self.checkpoint),
                "checkpoint_sha256": self.checkpoint_sha256, "declared_in_file": self.declared,
                "source": "detections file", "file": str(self.path), "sha256": sha256_files([self.path]),
                "images": len(self.table)}
