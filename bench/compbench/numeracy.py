"""T2I-CompBench++'s numeracy metric: are the right objects there, and as many as the prompt says?

Per image, as the official ``UniDet_eval/numeracy_eval.py`` after its 2025-01-04 fix for nouns whose
plural is the singular (deer, sheep, fish, goldfish, shrimp):

1. targets from the prompt's tokens: a number word (``a an one two ... eight``, exact lower case)
   followed by an object of ``new_objects.txt`` (two tokens tried before one):
   - a plural (not after a / an / one) → its singular, counted by the number word;
   - a singular after a / an / one → counted 1; a two-token object otherwise → counted 1, as written;
   - a one-token plural after a / an → its singular with no count: the official script skips the
     count but keeps the object, so later objects read the counts shifted by one (kept as official);
2. detections above the confidence threshold (0.5), de-duplicated: a detection is dropped when an
   earlier kept one has the same label and IoU > 0.9, or covers > 90 % of either box (the +1 pixel
   convention of the official ``calculate_iou``);
3. each target, in order, after the aliases boy / girl / man / woman → person, ship → boat,
   "telivision" → tv (the official spelling, so "television" keeps its name), goldfish → fish,
   painting → picture: when no label equals it, every label that contains it is renamed to it (for
   this image's later targets too); then 0.5/n when some label equals it, and 0.5/n more when as
   many labels equal it as its count (n = the number of targets).

The official script raises on a prompt with no target, on a number word at the end of the prompt,
and on "two <singular>" with a singular that is not also a plural; this module scores the first 0,
skips the second, and counts the singular of the third with the number word (each noted in the
image's details). No shipped numeracy prompt reaches any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.compbench.detectors import CONFIDENCE, Detection, Detector, keep_confident, metric_name
from bench.compbench.parse import Parser
from bench.compbench.prompts import new_objects
from bench.compbench.samples import ImageScore, SampleImage
from bench.compbench.spatial import queries_for
from bench.errors import check_range

ONE_WORDS = ("a", "an", "one")
NUMBER_VALUES = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
NUMBER_WORDS = ("a", "an", *NUMBER_VALUES)
ALIASES = {"boy": "person", "girl": "person", "man": "person", "woman": "person", "ship": "boat",
           "telivision": "tv", "goldfish": "fish", "painting": "picture"}
DUPLICATE = 0.9


@dataclass
class Targets:
    """The parsed prompt: object names and counts as the official script builds its two lists (they
    fall out of step after "a / an + plural", which adds an object and no count)."""

    objects: list[str]
    counts: list[int]
    notes: list[str]


def object_lists() -> tuple[list[str], list[str]]:
    """(singulars, plurals) of ``new_objects.txt``, lower case, in file order (duplicates kept)."""
    pairs = new_objects()
    return [s.lower() for s, _ in pairs], [p.lower() for _, p in pairs]


def parse_targets(words: list[str], singulars: list[str], plurals: list[str]) -> Targets:
    """The official number-word parse of the prompt's tokens."""
    out = Targets([], [], [])
    n = len(words)
    for i, word in enumerate(words):
        if word not in NUMBER_WORDS:
            continue
        pair = f"{words[i + 1]} {words[i + 2]}" if i < n - 2 else None
        if pair is not None and (pair in singulars or pair in plurals):
            if pair in plurals and word not in ONE_WORDS:
                out.objects.append(singulars[plurals.index(pair)])
                out.counts.append(NUMBER_VALUES[word])  # "a" / "an" never get this far
            else:
                out.objects.append(pair)
                out.counts.append(1)
        elif i == n - 1:
            out.notes.append(f"number word {word!r} ends the prompt (the official script raises at this point); "
                             "skipped")
        elif words[i + 1] in singulars or words[i + 1] in plurals:
            name = words[i + 1]
            if name in singulars and word in ONE_WORDS:
                out.objects.append(name)
                out.counts.append(1)
            elif name in plurals:
                out.objects.append(singulars[plurals.index(name)])
                if word in NUMBER_VALUES:
                    out.counts.append(NUMBER_VALUES[word])
                else:  # "a" / "an" have no number value: the official script keeps the object, not a count
                    out.notes.append(f"{word!r} before the plural {name!r}: the object has no count of its own")
            else:  # a singular that is not a plural, after a number > 1 (the official script raises at this point)
                out.objects.append(name)
                out.counts.append(NUMBER_VALUES[word])
                out.notes.append(f"{word!r} before the singular {name!r} (the official script raises at this point); "
                                 "counted as written")
    return out


def near_duplicate(box: tuple, kept: tuple) -> bool:
    """The official ``calculate_iou`` test (+1 pixel convention): IoU > 0.9, or the overlap covers more
    than 90 % of either box."""
    w = max(0.0, min(box[2], kept[2]) - max(box[0], kept[0]) + 1)
    h = max(0.0, min(box[3], kept[3]) - max(box[1], kept[1]) + 1)
    inter = w * h
    area, area_kept = ((b[2] - b[0] + 1) * (b[3] - b[1] + 1) for b in (box, kept))
    return inter / (area + area_kept - inter) > DUPLICATE or inter / area > DUPLICATE or inter / area_kept > DUPLICATE


def deduplicate(detections: list[Detection]) -> list[Detection]:
    """The detections without near duplicates of an earlier kept one of the same label, in order."""
    kept: list[Detection] = []
    for d in detections:
        if not any(k.label == d.label and near_duplicate(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


def score_numeracy(targets: Targets, detections: list[Detection]) -> ImageScore:
    """One image's official numeracy score from its parsed targets and confident detections."""
    labels = [d.label for d in deduplicate(detections)]
    per_object = []
    if not targets.objects:
        return ImageScore(0.0, {"objects": [], "counts": [], "labels": labels, "per_object": [],
                                "notes": [*targets.notes, "no object with a number word (the official script "
                                                          "divides by zero at this point); scored 0"]})
    weight = 1.0 / len(targets.objects)
    total = 0.0
    for i, name in enumerate(targets.objects):
        name = ALIASES.get(name, name)
        if name not in labels:  # substring fallback: every label containing the name takes the name
            labels = [name if name in label else label for label in labels]
        present = name in labels
        count = labels.count(name)
        wanted = targets.counts[i] if i < len(targets.counts) else None  # None: the official script fails at this point
        gained = (0.5 * weight if present else 0.0) + (0.5 * weight if present and count == wanted else 0.0)
        total += gained
        per_object.append({"object": name, "count": wanted, "detected": count, "score": gained})
    return ImageScore(total, {"objects": targets.objects, "counts": targets.counts, "labels": labels,
                              "per_object": per_object, "notes": targets.notes})


class NumeracyScorer:
    """The official numeracy rules on any detector's boxes (a ``bench.compbench.samples.Scorer``)."""

    def __init__(self, detector: Detector, *, parser: Parser | None = None, threshold: float = CONFIDENCE):
        check_range("the detector confidence threshold", threshold, 0, 1)
        self.detector = detector
        self.parser = parser or Parser()
        self.threshold = threshold
        self.singulars, self.plurals = object_lists()
        self.metric = metric_name("numeracy", detector)

    def targets(self, prompt: str) -> Targets:
        return parse_targets(self.parser(prompt).words, self.singulars, self.plurals)

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        from tqdm import tqdm

        self.detector.check(images)
        scores = []
        for image in tqdm(images, desc=self.metric, disable=not progress):
            targets = self.targets(image.prompt)
            queries = queries_for(*(ALIASES.get(name, name) for name in targets.objects))
            found = self.detector.detect(image, queries, self.threshold)
            scores.append(score_numeracy(targets, keep_confident(found, self.threshold)))
        return scores

    def provenance(self) -> dict:
        return {"metric": self.metric, "rules": "T2I-CompBench UniDet_eval/numeracy_eval.py (after the 2025-01-04 fix)",
                "confidence_threshold": self.threshold, "duplicate_iou": DUPLICATE,
                "detector": self.detector.provenance(), "parser": self.parser.provenance()}
