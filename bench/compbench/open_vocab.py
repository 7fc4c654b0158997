"""Open-vocabulary detectors from transformers for the spatial and numeracy metrics, and
``load_detector``, which turns ``--detector KIND:PATH`` or a detections file (``--detections-2d`` /
``--detections-3d``) into a ``Detector``.

UniDet, the official detector, has no transformers port; these give detections of another kind,
and the metric they make is labelled with their name (``detectors.metric_name``). Each is asked
for the prompt's own object names (after the official aliases, e.g. girl → person) and labels
every box with the name it matched, so the rules' exact and substring label matching see the
prompt's words. Both run on the image the official detector sees (``detectors.frame_image``: resized
to short side 479, long side at most 480; RGB, where UniDet was fed BGR), so boxes come out in the
official frame; boxes are clipped to the frame, suppressed per label at IoU 0.5 and sorted by
decreasing score, as detectron2 does for UniDet.

- ``Owlv2Detector`` (``--detector owlv2:PATH``, e.g. ``google/owlv2-base-patch16-ensemble``):
  ``Owlv2ForObjectDetection`` + ``Owlv2Processor``; each box's label and score are those of its
  best query (sigmoid of the class logit), through the processor's own post-processing.
- ``GroundingDinoDetector`` (``--detector grounding-dino:PATH``, e.g.
  ``IDEA-Research/grounding-dino-base``): ``GroundingDinoForObjectDetection`` + its processor, the
  names joined as "cat. dog."; a box's score for a name is the mean sigmoid over that name's
  tokens (Grounding DINO's own evaluation rule), and its label is the best name.

The default confidence threshold (0.5) is UniDet's; these detectors' scores are calibrated
differently (OWLv2's true positives often score 0.2-0.5), which is part of why they make another
metric.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

from bench.compbench.detectors import KINDS, NMS_IOU, Detection, DetectionsFile, Detector, frame_image, nms_per_label
from bench.compbench.evaluators import how_to_get, load_pretrained, weights_sha256
from bench.compbench.samples import SampleImage
from bench.errors import BenchError
from pixart.files import package_versions

OWLV2_HUB = "google/owlv2-base-patch16-ensemble"
GROUNDING_DINO_HUB = "IDEA-Research/grounding-dino-base"


def clipped(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` clipped to the frame [0, width] × [0, height], as detectron2 clips UniDet's boxes."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width), min(max(y1, 0.0), height))


class _OpenVocabulary:
    """What both adapters share: loading the model and its processor (transformers classes named by
    the subclass), the device, finishing the boxes, the provenance."""

    name = model_type = hub_id = model_class = processor_class = ""

    def __init__(self, model_path, device: str = "cpu", nms_iou: float = NMS_IOU):
        import transformers

        self.model, self.processor, self.folder = load_pretrained(
            model_path, getattr(transformers, self.model_class), getattr(transformers, self.processor_class),
            self.model_type, self.name, how_to_get(self.hub_id), device)
        self.model_path = str(model_path)
        self.checkpoint = self.model_path
        self.device = device
        self.nms_iou = nms_iou

    def check(self, images: list[SampleImage]) -> None:
        """Nothing to check up front: every image is detected when it is scored."""

    def finish(self, boxes, scores, labels, queries: Sequence[str], width: int, height: int) -> list[Detection]:
        """Detections from the kept boxes (frame pixels), scores and query indices: clipped, NMS, sorted."""
        found = [Detection(queries[int(q)], float(s), clipped(b, width, height))
                 for b, s, q in zip(boxes.tolist(), scores.tolist(), labels.tolist())]
        return nms_per_label(found, self.nms_iou)

    def provenance(self) -> dict:
        return {"detector": self.name, "model": self.model_path, "folder": str(self.folder),
                "weights_sha256": weights_sha256(self.folder), "queries": "the prompt's object names",
                "input": "the official frame (RGB)", "nms_iou": self.nms_iou,
                "versions": package_versions(("transformers", "torch"))}


class Owlv2Detector(_OpenVocabulary):
    name, model_type, hub_id = "OWLv2", "owlv2", OWLV2_HUB
    model_class, processor_class = "Owlv2ForObjectDetection", "Owlv2Processor"

    @torch.inference_mode()
    def detect(self, image: SampleImage, queries: Sequence[str], threshold: float) -> list[Detection]:
        if not queries:
            return []
        frame = frame_image(image.path)
        width, height = frame.size
        inputs = self.processor(text=[list(queries)], images=frame, return_tensors="pt").to(self.model.device)
        outputs = self.model(**inputs)
        # the processor scales boxes by the padded square's side (OWLv2 pads to a square), i.e. by max(w, h)
        found = self.processor.post_process_grounded_object_detection(
            outputs, threshold=threshold, target_sizes=[(height, width)])[0]
        return self.finish(found["boxes"], found["scores"], found["labels"], queries, width, height)


class GroundingDinoDetector(_OpenVocabulary):
    name, model_type, hub_id = "Grounding DINO", "grounding-dino", GROUNDING_DINO_HUB
    model_class, processor_class = "GroundingDinoForObjectDetection", "GroundingDinoProcessor"

    def token_spans(self, text: str, queries: Sequence[str], input_ids) -> list[list[int]]:
        """The token positions of each query in the processor's ``text`` ("cat. dog."), from the
        tokenizer's character offsets."""
        encoded = self.processor.tokenizer(text, return_offsets_mapping=True)
        if encoded["input_ids"] != input_ids:
            raise RuntimeError("the Grounding DINO tokenizer gave other ids than its processor")
        spans, start = [], 0
        for q in queries:
            begin = text.index(q, start)
            end = start = begin + len(q)
            spans.append([i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > a and a >= begin and b <= end])
        return spans

    @torch.inference_mode()
    def detect(self, image: SampleImage, queries: Sequence[str], threshold: float) -> list[Detection]:
        if not queries:
            return []
        names = [q.strip().lower() for q in queries]
        text = ". ".join(names) + "."  # the processor's own way of joining candidate labels
        frame = frame_image(image.path)
        width, height = frame.size
        inputs = self.processor(images=frame, text=text, return_tensors="pt").to(self.model.device)
        outputs = self.model(**inputs)
        spans = self.token_spans(text, names, inputs["input_ids"][0].tolist())
        probs = outputs.logits[0].sigmoid().float()  # (boxes, text positions)
        per_name = torch.stack([probs[:, s].mean(-1) if s else torch.zeros_like(probs[:, 0]) for s in spans], -1)
        scores, labels = per_name.max(-1)
        cx, cy, w, h = outputs.pred_boxes[0].float().unbind(-1)  # relative centre and size
        boxes = torch.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                             (cy + h / 2) * height], -1)
        keep = scores > threshold
        return self.finish(boxes[keep].cpu(), scores[keep].cpu(), labels[keep].cpu(), queries, width, height)


def load_detector(spec: str | None, *, detections: str | os.PathLike | None = None, device: str = "cpu",
                  rule: str = "2d") -> Detector:
    """The detector of ``--detector KIND:PATH`` (owlv2, grounding-dino) or of a detections file
    (``--detections-2d FILE`` for ``rule`` "2d", ``--detections-3d FILE`` for "3d")."""
    option = f"--detections-{rule}"
    if spec and detections:
        raise BenchError(f"give one of --detector and {option}, not both")
    if detections:
        return DetectionsFile(detections)
    if not spec:
        official = "UniDet RS200" if rule == "2d" else "UniDet R50"
        raise BenchError(f"no detector: pass {option} FILE (the official rule uses {official}'s detections) or "
                         "--detector owlv2:PATH | grounding-dino:PATH")
    kind, sep, path = spec.partition(":")
    if kind.lower() == "unidet":
        raise BenchError("UniDet runs only in the official detectron2 code: run it there and pass its detections "
                         "with --detections-2d FILE (RS200) and --detections-3d FILE (R50) (format: docs/compbench.md)")
    if not sep or kind not in KINDS or not path:
        raise BenchError(f"--detector {spec!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)} "
                         "(e.g. owlv2:google/owlv2-base-patch16-ensemble or grounding-dino:./grounding-dino-base)")
    return (Owlv2Detector if kind == "owlv2" else GroundingDinoDetector)(path, device=device)
