"""T2I-CompBench++'s 3D spatial metric ("in front of", "behind", "hidden").

Per image, as the official ``UniDet_eval/3D_spatial_eval.py`` (rules in ``spatial_rules``):

1. the two objects: first and last NOUN (no complex parser), girl / boy / man / woman → person;
2. the detections above the confidence threshold (0.5); an object is found when its name is a
   *substring* of the detected labels joined with spaces ("cat" is found in "cattle, cow");
3. which detections: walking the detections in order, each object takes the latest detection whose
   label contains it, until both have one (so with labels [cat, cat, dog] the second cat is used);
   an object found alone takes its first detection;
4. the relation: the first of "in front of", "behind", "hidden" in the prompt;
5. 0.25·conf1 + 0.25·conf2 + 0.5·position_3d (both found; the depth map's mean inside each box,
   indexed ``depth[x_min:x_max, y_min:y_max]``), 0.25·conf (one), 0 (none); no cut-off at 0.5.

Depth maps come from a DPT model (``depth.DptDepth``, official: DPT-Hybrid MiDaS) or from files
(``depth.DepthFiles``), for every image, as the official script makes them before detecting.
"""

from __future__ import annotations

import math
import os

from bench.compbench import spatial_rules as rules
from bench.compbench.depth import DepthFiles, DptDepth, frame_depth
from bench.compbench.detectors import CONFIDENCE, Detection, Detector, keep_confident, metric_name
from bench.compbench.parse import Parser
from bench.compbench.samples import ImageScore, SampleImage
from bench.compbench.spatial import queries_for
from bench.errors import BenchError, check_range


def pick_3d(labels: list[str], first: str | None, second: str | None) -> tuple[int | None, int | None]:
    """The indices of the detections used for the two objects (the official loop: substring matching,
    the latest match of each until both are matched; one object alone takes its first match)."""
    joined = " ".join(labels)
    in_1, in_2 = first is not None and first in joined, second is not None and second in joined
    i1 = i2 = None
    if in_1 and in_2:
        for i, label in enumerate(labels):
            if first in label:
                i1 = i
            if second in label:
                i2 = i
            if i1 is not None and i2 is not None:
                break
    elif in_1:
        i1 = next(i for i, label in enumerate(labels) if first in label)
    elif in_2:
        i2 = next(i for i, label in enumerate(labels) if second in label)
    return i1, i2


def score_3d(prompt: str, objects: tuple[str | None, str | None], detections: list[Detection],
             depth_map) -> ImageScore:
    """One image's official 3D score; ``depth_map`` is the 8-bit map (PIL "L", the image's size)."""
    word = rules.relation(prompt, rules.RELATIONS_3D)
    i1, i2 = pick_3d([d.label for d in detections], *objects)
    first, second = (detections[i] if i is not None else None for i in (i1, i2))
    position = means = None
    if first and second:
        depth = frame_depth(depth_map)
        position = rules.position_3d(word, first.box, second.box, depth)
        # an empty slice's NaN mean is written as null (strict JSON)
        means = [None if math.isnan(m) else m for m in (rules.depth_mean(depth, d.box) for d in (first, second))]
    details = {"objects": list(objects), "relation": word,
               "boxes": [d and list(d.box) for d in (first, second)],
               "confidences": [d and d.score for d in (first, second)],
               "position": position, "depth_means": means, "detections": len(detections)}
    return ImageScore(rules.combine(first and first.score, second and second.score, position), details)


class Spatial3DScorer:
    """The official 3D spatial rules on any detector's boxes and a depth model's (or files') maps."""

    def __init__(self, detector: Detector, depth_model: str | os.PathLike | None = None, *,
                 depth_dir: str | os.PathLike | None = None, save_depth: str | os.PathLike | None = None,
                 device: str = "cpu", parser: Parser | None = None, threshold: float = CONFIDENCE):
        check_range("the detector confidence threshold", threshold, 0, 1)
        if (depth_model is None) == (depth_dir is None):
            raise BenchError("3D spatial needs depth: give a depth model (--depth PATH, official: "
                             "Intel/dpt-hybrid-midas) or a folder of depth maps, not both and not neither")
        self.detector = detector
        self.depth = DptDepth(depth_model, device, save_depth) if depth_model is not None else DepthFiles(depth_dir)
        self.parser = parser or Parser()
        self.threshold = threshold
        self.metric = metric_name("3D spatial", detector)

    def objects(self, prompt: str) -> tuple[str | None, str | None]:
        first, last = rules.simple_objects(self.parser(prompt).tokens)
        return rules.as_person(first), rules.as_person(last)

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        from tqdm import tqdm

        self.detector.check(images)
        self.depth.check(images)
        scores = []
        for image in tqdm(images, desc=self.metric, disable=not progress):
            depth_map = self.depth.depth_map(image)
            objects = self.objects(image.prompt)
            found = self.detector.detect(image, queries_for(*objects), self.threshold)
            scores.append(score_3d(image.prompt, objects, keep_confident(found, self.threshold), depth_map))
        return scores

    def provenance(self) -> dict:
        return {"metric": self.metric, "rules": "T2I-CompBench UniDet_eval/3D_spatial_eval.py",
                "objects": "first and last NOUN, substring label matching", "confidence_threshold": self.threshold,
                "iou_threshold_3d": rules.IOU_THRESHOLD_3D, "cut_off": None,
                "detector": self.detector.provenance(), "depth": self.depth.provenance(),
                "parser": self.parser.provenance()}
