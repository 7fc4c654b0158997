"""T2I-CompBench's 2D spatial metric (the spatial category, and the spatial part of complex).

Per image, as the official ``UniDet_eval/2D_spatial_eval.py`` (rules in ``spatial_rules``):

1. the two objects: first and last NOUN of the prompt (``complex=True``: the complex parser, which
   gives none unless it finds exactly two), girl / boy / man / woman → person;
2. the detections above the confidence threshold (0.5), in the detector's order; an object is found
   when a detection's label *equals* its name, and the first such detection is used;
3. the relation: the first official relation word the prompt contains;
4. 0.25·conf1 + 0.25·conf2 + 0.5·position_2d (both found), 0.25·conf (one), 0 (none);
5. a score below 0.5 becomes 0. The category score is the mean over images.

With UniDet's detections (``--detections``) exact matching only finds objects named like one of
UniDet's 722 classes (wallet, mouse, cow, sofa never match); an open-vocabulary detector is asked
for the prompt's own names, so it can find them: that metric is labelled with the detector's name.
"""

from __future__ import annotations

from bench.compbench import spatial_rules as rules
from bench.compbench.detectors import CONFIDENCE, Detection, Detector, keep_confident, metric_name
from bench.compbench.parse import Parser
from bench.compbench.samples import ImageScore, SampleImage
from bench.errors import check_range


def first_with_label(detections: list[Detection], name: str | None) -> Detection | None:
    """The first detection whose label is exactly ``name`` (the official ``labels.index(name)``)."""
    return next((d for d in detections if d.label == name), None)


def queries_for(*names: str | None) -> list[str]:
    """The distinct object names to ask an open-vocabulary detector for, in order."""
    return list(dict.fromkeys(n for n in names if n is not None))


def score_2d(prompt: str, objects: tuple[str | None, str | None], detections: list[Detection]) -> ImageScore:
    """One image's official 2D score from its objects (aliases applied) and its confident detections."""
    word = rules.relation(prompt, rules.RELATIONS_2D)
    first, second = (first_with_label(detections, name) for name in objects)
    position = rules.position_2d(word, first.box, second.box) if first and second else None
    raw = rules.combine(first and first.score, second and second.score, position)
    details = {"objects": list(objects), "relation": word,
               "boxes": [d and list(d.box) for d in (first, second)],
               "confidences": [d and d.score for d in (first, second)],
               "position": position, "before_cut_off": raw, "detections": len(detections)}
    return ImageScore(rules.cut_off(raw), details)


class Spatial2DScorer:
    """The official 2D spatial rules on any detector's boxes (a ``bench.compbench.samples.Scorer``)."""

    def __init__(self, detector: Detector, *, complex: bool = False, parser: Parser | None = None,
                 threshold: float = CONFIDENCE):
        check_range("the detector confidence threshold", threshold, 0, 1)
        self.detector = detector
        self.complex = complex
        self.parser = parser or Parser()
        self.threshold = threshold
        self.metric = metric_name("2D spatial", detector, ", complex parser" if complex else "")

    def objects(self, prompt: str) -> tuple[str | None, str | None]:
        tokens = self.parser(prompt).tokens
        pair = rules.complex_objects(tokens) if self.complex else rules.simple_objects(tokens)
        return rules.as_person(pair[0]), rules.as_person(pair[1])

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        from tqdm import tqdm

        self.detector.check(images)
        scores = []
        for image in tqdm(images, desc=self.metric, disable=not progress):
            objects = self.objects(image.prompt)
            found = self.detector.detect(image, queries_for(*objects), self.threshold)
            scores.append(score_2d(image.prompt, objects, keep_confident(found, self.threshold)))
        return scores

    def provenance(self) -> dict:
        return {"metric": self.metric, "rules": "T2I-CompBench UniDet_eval/2D_spatial_eval.py",
                "objects": "complex parser" if self.complex else "first and last NOUN",
                "confidence_threshold": self.threshold, "iou_threshold": rules.IOU_THRESHOLD,
                "distance_threshold": rules.DISTANCE_THRESHOLD, "cut_off": rules.CUT_OFF_2D,
                "detector": self.detector.provenance(), "parser": self.parser.provenance()}
