"""Numeracy: one golden test per official rule and quirk (the number-word parse, plural = singular
nouns after the 2025-01-04 fix, de-duplication with the +1 pixel convention, aliases, the substring
fallback that renames labels, the per-object weights), and the scorer end to end on a detections file."""

import pytest
from test_compbench_spatial import SPACY, det, detections_file, make_samples

from bench.compbench.detectors import DetectionsFile
from bench.compbench.numeracy import (NumeracyScorer, Targets, deduplicate, near_duplicate, object_lists,
                                      parse_targets, score_numeracy)
from bench.compbench.parse import Parser
from bench.compbench.prompts import load_prompts

SINGULARS, PLURALS = object_lists()


def parse(text):
    return parse_targets(text.split(), SINGULARS, PLURALS)


@pytest.mark.parametrize("prompt, objects, counts", [
    ("two boys", ["boy"], [2]),
    ("one pear and three knives", ["pear", "knife"], [1, 3]),
    ("a cat and an apple", ["cat", "apple"], [1, 1]),
    ("eight cats lounged in the sun", ["cat"], [8]),
    ("six people gathered for a picnic", ["person"], [6]),  # "a picnic": not an object
    ("three mice", ["mouse"], [3]),
    ("five sheep", ["sheep"], [5]), ("a sheep", ["sheep"], [1]),  # plural = singular (the 2025 fix)
    ("two fish and one goldfish", ["fish", "goldfish"], [2, 1]), ("four shrimp", ["shrimp"], [4]),
    ("nine cats", [], []), ("Two boys", [], []),  # only a ... eight, in lower case
    ("two big dogs", [], []),  # the object must follow the number word
])
def test_number_word_parse(prompt, objects, counts):
    t = parse(prompt)
    assert (t.objects, t.counts, t.notes) == (objects, counts, [])


def test_two_token_objects_are_tried_first():
    singulars, plurals = [*SINGULARS, "teddy bear"], [*PLURALS, "teddy bears"]
    t = parse_targets("two teddy bears and a teddy bear".split(), singulars, plurals)
    assert (t.objects, t.counts) == (["teddy bear", "teddy bear"], [2, 1])
    # after a / an / one a two-token plural is kept as written, counted 1
    t = parse_targets("one teddy bears".split(), singulars, plurals)
    assert (t.objects, t.counts) == (["teddy bears"], [1])


def test_a_before_a_plural_shifts_the_counts():
    t = parse("a cats and two dogs")
    assert t.objects == ["cat", "dog"] and t.counts == [2] and "no count" in t.notes[0]
    # cat is compared with dog's count (2); dog has none (the official script raises there)
    s = score_numeracy(t, [det("cat", box=(0, 0, 10, 10)), det("cat", box=(50, 50, 60, 60)), det("dog")])
    assert s.score == pytest.approx(0.5 * 0.5 + 0.5 * 0.5 + 0.5 * 0.5)
    assert s.details["per_object"][1]["count"] is None


def test_where_the_official_script_raises():
    t = parse("two cat")  # a singular that is not also a plural, after a number > 1
    assert (t.objects, t.counts) == (["cat"], [2]) and "raises" in t.notes[0]
    t = parse("the number one")
    assert (t.objects, t.counts) == ([], []) and "ends the prompt" in t.notes[0]
    s = score_numeracy(parse("a tree"), [det("tree")])
    assert s.score == 0.0 and "divides by zero" in s.details["notes"][-1]


def test_the_shipped_prompts_parse_cleanly():
    parser = Parser(SPACY)
    for prompt in load_prompts("numeracy"):
        t = parse_targets(parser(prompt).words, SINGULARS, PLURALS)
        assert t.objects and len(t.objects) == len(t.counts) and not t.notes, prompt


def test_near_duplicate_uses_the_plus_one_convention():
    a, b = (0, 0, 10, 10), (1, 0, 11, 10)
    # without +1: overlap 90 of 100 → exactly 0.9, not above; with +1: 110 of 121 = 0.909 → a duplicate
    assert near_duplicate(b, a)
    assert not near_duplicate((0, 0, 10, 10), (2, 0, 12, 10))  # 99 of 121 = 0.82
    assert near_duplicate((2, 2, 5, 5), (0, 0, 100, 100))  # inside the other box
    assert near_duplicate((0, 0, 100, 100), (2, 2, 5, 5))  # or containing it


def test_deduplicate_same_label_only_in_order():
    dets = [det("dog", 0.9, (0, 0, 10, 10)), det("dog", 0.8, (1, 0, 11, 10)), det("cat", 0.7, (0, 0, 10, 10)),
            det("dog", 0.6, (40, 40, 60, 60))]
    assert deduplicate(dets) == [dets[0], dets[2], dets[3]]


@pytest.mark.parametrize("n_detected, expected", [(3, 1.0), (2, 0.5), (4, 0.5), (0, 0.0)])
def test_counting(n_detected, expected):
    dets = [det("dog", box=(30 * i, 0, 30 * i + 20, 20)) for i in range(n_detected)]
    assert score_numeracy(parse("three dogs"), dets).score == expected


def test_duplicates_do_not_count():
    dets = [det("dog", box=(0, 0, 20, 20)), det("dog", box=(1, 1, 20, 20)), det("dog", box=(40, 0, 60, 20)),
            det("dog", box=(80, 0, 100, 20))]
    assert score_numeracy(parse("three dogs"), dets).score == 1.0


def test_weights_per_object():
    dets = [det("cat", box=(0, 0, 20, 20)), det("dog", box=(40, 0, 60, 20))]
    s = score_numeracy(parse("one cat and two dogs"), dets)
    assert s.score == pytest.approx(0.5 + 0.25)  # cat: present and 1 (½); dogs: present, 1 of 2 (¼)
    assert [o["score"] for o in s.details["per_object"]] == [0.5, 0.25]


@pytest.mark.parametrize("prompt, label, expected", [
    ("two boys", "person", 0.5), ("a woman", "person", 1.0), ("a ship", "boat", 1.0),
    ("a goldfish", "fish", 1.0), ("a painting", "picture", 1.0),
    ("a television", "tv", 0.0),  # the official alias is spelled "telivision": television keeps its name
])
def test_aliases(prompt, label, expected):
    assert score_numeracy(parse(prompt), [det(label)]).score == expected


def test_substring_fallback_renames_labels_for_later_objects():
    dets = [det("cattle, cow", box=(0, 0, 20, 20)), det("cattle, cow", box=(40, 0, 60, 20))]
    s = score_numeracy(parse("two cats"), dets)
    assert s.score == 1.0 and s.details["labels"] == ["cat", "cat"]  # "cat" is in "cattle, cow"
    # the renamed labels stay renamed: a later "cow" finds nothing
    both = score_numeracy(Targets(["cat", "cow"], [2, 2], []), dets)
    assert both.score == 0.5 and both.details["per_object"][1]["detected"] == 0
    # an exact label is used as it is, without renaming the others
    exact = score_numeracy(parse("a cat"), [det("cat"), det("cattle, cow", box=(40, 0, 60, 20))])
    assert exact.score == 1.0 and exact.details["labels"] == ["cat", "cattle, cow"]
    # a picture label holding "painting"'s alias
    assert score_numeracy(parse("two paintings"), [det("picture, frame"), det("picture, frame", box=(40, 0, 60, 20))]
                          ).score == 1.0


def test_scorer_end_to_end(tmp_path):
    images = make_samples(tmp_path, ["three dogs", "one cat and two dogs"])
    table = {images[0].file: [det("dog", 0.9, (30 * i, 0, 30 * i + 20, 20)) for i in range(3)],
             images[1].file: [det("cat", 0.9), det("dog", 0.5, (40, 0, 60, 20)), det("dog", 0.9, (80, 0, 99, 20))]}
    unidet_r50 = {"name": "UniDet", "checkpoint": "Unified_learned_OCIM_R50_6x+2x.pth"}
    scorer = NumeracyScorer(DetectionsFile(detections_file(tmp_path / "d.json", table, detector=unidet_r50)),
                            parser=Parser(SPACY))
    assert scorer.metric == "numeracy (UniDet R50)"
    scores = scorer.score(images, progress=False)
    assert scores[0].score == 1.0
    assert scores[1].score == pytest.approx(0.75)  # the dog at exactly 0.5 is below the confidence threshold
    assert scorer.provenance()["duplicate_iou"] == 0.9
