"""The 3-in-1 score of T2I-CompBench's complex category: three metrics combined per image.

Each complex prompt belongs to one of the official subset files (``complex_val_spatial.txt``,
``complex_val_action.txt``, ``complex_val_spatialaction.txt``), compared as the official script
compares them (``normalise_complex``: the text before the first "." in lower case). Per image:

- spatial subset: (spatial + attribute) / 2
- action subset: (action + attribute) / 2
- otherwise (the spatialaction subset): (attribute + spatial + action) / 3

with attribute = BLIP-VQA, spatial = UniDet 2D with the complex object rule, action = CLIPScore
without adjectives. The category score is the mean over images. A prompt in none of the files (a
user's own complex prompt) takes the official script's ``else`` branch, the mean of the three, and
its details say ``"subset": "unlisted"``.

The official script merges the three components' ``vqa_result.json`` lists by position and gives
image block [10·i, 10·i + 10) the route of line i of ``complex_val.txt``. Here each image is routed
by its own prompt (its file name). On an official folder (300 prompts × 10 images in file order)
both give every image the same route, so the numbers are the same; on any other folder (another
number of images per prompt, a subset of the prompts, other prompts) the official block rule would
route images by their neighbours' prompts, and this one stays right.

Every component scores every image (the official run does too), and each image's details keep the
three component scores and details, so ``components(scores)`` gives each component's per-image
scores for its own official ``vqa_result.json``. The components' scores are used as each scorer
returns them; the official script reads them back from those files, so the two agree where each
scorer's score is the value its official file holds (BLIP-VQA's product rounded to 4 decimals,
UniDet's and CLIP's unrounded floats).
"""

from __future__ import annotations

from bench.compbench.prompts import complex_subsets, normalise_complex
from bench.compbench.samples import ImageScore, SampleImage, Scorer

COMPONENTS = ("attribute", "spatial", "action")
FORMULAS = {
    "spatial": "(spatial + attribute) / 2",
    "action": "(action + attribute) / 2",
    "spatialaction": "(attribute + spatial + action) / 3",
    "unlisted": "(attribute + spatial + action) / 3 (the official rule for a prompt in no subset file)",
}


def subset_of(prompt: str, subsets: dict[str, frozenset[str]] | None = None) -> str:
    """"spatial", "action", "spatialaction" or "unlisted": the official subset file holding ``prompt``,
    checked in the official order (spatial first, then action)."""
    subsets = complex_subsets() if subsets is None else subsets
    key = normalise_complex(prompt)
    for name in ("spatial", "action", "spatialaction"):
        if key in subsets[name]:
            return name
    return "unlisted"


def combine(subset: str, attribute: float, spatial: float, action: float) -> float:
    """One image's 3-in-1 score, with the official script's arithmetic (same order of operations)."""
    if subset == "spatial":
        return (spatial + attribute) * 0.5
    if subset == "action":
        return (action + attribute) * 0.5
    return (attribute + spatial + action) / 3


class ThreeInOne:
    """``metric = "3-in-1"``: BLIP-VQA (attribute), UniDet 2D complex (spatial) and CLIPScore without
    adjectives (action), combined per image by the prompt's subset."""

    metric = "3-in-1"

    def __init__(self, attribute: Scorer, spatial: Scorer, action: Scorer):
        self.parts = {"attribute": attribute, "spatial": spatial, "action": action}
        self.subsets = complex_subsets()

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        results = {}
        for name, scorer in self.parts.items():
            results[name] = scorer.score(images, progress)
            if len(results[name]) != len(images):  # a scorer bug, not bad input
                raise RuntimeError(f"the {name} scorer ({scorer.metric}) returned {len(results[name])} scores "
                                   f"for {len(images)} images")
        out = []
        for i, im in enumerate(images):
            parts = {name: results[name][i] for name in COMPONENTS}
            subset = subset_of(im.prompt, self.subsets)
            value = combine(subset, *(parts[name].score for name in COMPONENTS))
            details = {"subset": subset, "formula": FORMULAS[subset],
                       **{name: {"metric": self.parts[name].metric, "score": p.score, "details": p.details}
                          for name, p in parts.items()}}
            out.append(ImageScore(value, details))
        return out

    def provenance(self) -> dict:
        return {"metric": self.metric, "routing": "each image by its own prompt's official complex subset file",
                "formulas": FORMULAS, **{name: scorer.provenance() for name, scorer in self.parts.items()}}


def components(scores: list[ImageScore]) -> dict[str, list[ImageScore]]:
    """Each component's per-image scores (attribute, spatial, action) kept in 3-in-1 scores' details,
    in image order, e.g. to write that component's official ``vqa_result.json``."""
    return {name: [ImageScore(s.details[name]["score"], s.details[name]["details"]) for s in scores]
            for name in COMPONENTS}
