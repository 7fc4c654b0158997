"""Noun statistics with a tiny spaCy pipeline trained by the test on hand-annotated sentences (no model download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

spacy = pytest.importorskip("spacy")

from pixart.data import DataError  # noqa: E402
from pixart.vocab import load_spacy, noun_counts, read_captions, vocab_stats  # noqa: E402

# (text, coarse POS per token, lemma per token), tokenised by spaCy's English tokenizer on spaces
DATA = [
    ("a red cat sits on a blue sofa", "DET ADJ NOUN VERB ADP DET ADJ NOUN", "a red cat sit on a blue sofa"),
    ("two cats sleep on the sofa near a window", "NUM NOUN VERB ADP DET NOUN ADP DET NOUN",
     "two cat sleep on the sofa near a window"),
    ("a dog runs in the park with a cat", "DET NOUN VERB ADP DET NOUN ADP DET NOUN", "a dog run in the park with a cat"),
    ("Paris at night with a dog", "PROPN ADP NOUN ADP DET NOUN", "Paris at night with a dog"),
    ("a painting of a dog and two cats", "DET NOUN ADP DET NOUN CCONJ NUM NOUN", "a painting of a dog and two cat"),
]
CAPTIONS = [text for text, _, _ in DATA]
# Hand counts of NOUN lemmas (Paris is PROPN → not counted):
# cat 4 (cat, cats, cat, cats), dog 3, sofa 2, window 1, park 1, night 1, painting 1
EXPECTED_LEMMAS = {"cat": 4, "dog": 3, "sofa": 2, "window": 1, "park": 1, "night": 1, "painting": 1}


def train_tiny_pipeline(folder: Path) -> Path:
    from spacy.training import Example
    from spacy.util import fix_random_seed

    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("morphologizer")  # predicts Token.pos_ directly
    nlp.add_pipe("trainable_lemmatizer", config={"backoff": "orth", "min_tree_freq": 1})
    examples = [
        Example.from_dict(nlp.make_doc(text), {"pos": pos.split(), "lemmas": lemmas.split()})
        for text, pos, lemmas in DATA
    ]
    optimizer = nlp.initialize(lambda: examples)

    def fits() -> bool:
        return all(
            [t.pos_ for t in doc] == pos.split() and [t.lemma_ for t in doc] == lemmas.split()
            for doc, (_, pos, lemmas) in zip(nlp.pipe(CAPTIONS), DATA)
        )

    for _ in range(100):
        nlp.update(examples, sgd=optimizer)
        if fits():
            break
    else:
        raise AssertionError("the tiny spaCy pipeline did not fit its training sentences")
    nlp.to_disk(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_nlp_dir(tmp_path_factory) -> Path:
    return train_tiny_pipeline(tmp_path_factory.mktemp("spacy") / "tiny-en")


@pytest.fixture(scope="module")
def tiny_nlp(tiny_nlp_dir):
    return load_spacy(tiny_nlp_dir)


def test_loaded_pipeline_reproduces_annotations(tiny_nlp):
    for doc, (_, pos, lemmas) in zip(tiny_nlp.pipe(CAPTIONS), DATA):
        assert [t.pos_ for t in doc] == pos.split()
        assert [t.lemma_ for t in doc] == lemmas.split()


def test_noun_counts_by_lemma_without_propn(tiny_nlp):
    counts, n = noun_counts(CAPTIONS, tiny_nlp)
    assert n == 5
    assert dict(counts) == EXPECTED_LEMMAS


def test_vocab_stats_matches_hand_counts(tiny_nlp):
    stats = vocab_stats(CAPTIONS, tiny_nlp, min_count=2, batch_size=2)
    assert stats == {
        "images": 5,
        "valid_distinct_nouns": 3,  # cat, dog, sofa
        "total_distinct_nouns": 7,
        "total_noun_occurrences": 13,
        "avg_nouns_per_image": pytest.approx(13 / 5),
        "vn_ratio": pytest.approx(3 / 7),
    }
    s10 = vocab_stats(iter(CAPTIONS), tiny_nlp, progress=True)  # default min_count=10, a generator input
    assert s10["valid_distinct_nouns"] == 0 and s10["vn_ratio"] == 0.0 and s10["total_distinct_nouns"] == 7
    assert vocab_stats([], tiny_nlp) == {
        "images": 0, "valid_distinct_nouns": 0, "total_distinct_nouns": 0,
        "total_noun_occurrences": 0, "avg_nouns_per_image": 0.0, "vn_ratio": 0.0,
    }


def test_lemma_falls_back_to_lowercased_text(tiny_nlp):
    with tiny_nlp.select_pipes(disable=["trainable_lemmatizer"]):  # no lemmas set any more
        counts, _ = noun_counts(["two cats sleep on the sofa near a window", "a painting of a dog and two cats"],
                                tiny_nlp)
    assert dict(counts) == {"cats": 2, "sofa": 1, "window": 1, "painting": 1, "dog": 1}


def test_missing_model_is_a_clear_error():
    with pytest.raises(DataError, match=r"en_core_web_sm_definitely_missing.*missing.*python -m spacy download"):
        load_spacy("en_core_web_sm_definitely_missing")


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="--spacy-model"):
        load_spacy(tmp_path / "no-pipeline-here")


def test_pipeline_without_pos_tagger_is_rejected(tmp_path):
    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)
    with pytest.raises(DataError, match="no part-of-speech tagger"):
        load_spacy(blank)
    # a fine-grained tagger alone sets tag_, not pos_
    nlp = spacy.blank("en")
    nlp.add_pipe("tagger").add_label("NN")
    nlp.initialize()
    with pytest.raises(DataError, match="no part-of-speech tagger"):
        vocab_stats(CAPTIONS, nlp)


def test_read_captions_jsonl_txt_folder(tmp_path):
    jl = tmp_path / "caps.jsonl"
    jl.write_text(
        json.dumps({"path": "a.png", "caption": "a cat"}) + "\n\n"
        + json.dumps({"prompt": "a dog"}) + "\n"
        + json.dumps({"text": "a sofa", "id": 3}) + "\n"
    )
    assert read_captions(jl) == ["a cat", "a dog", "a sofa"]

    txt = tmp_path / "caps.txt"
    txt.write_text("a cat\n\n  a dog  \na sofa")
    assert read_captions(txt) == ["a cat", "a dog", "a sofa"]

    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("a dog\nin a park\n")
    (folder / "a.txt").write_text("a cat")
    (folder / "sub" / "c.txt").write_text("a sofa")
    (folder / "ignored.json").write_text("{}")
    assert read_captions(folder) == ["a cat", "a dog in a park", "a sofa"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"path": "x.png"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1.*caption"):
        read_captions(bad)
    with pytest.raises(DataError, match=r"caption file .*nope\.txt does not exist"):
        read_captions(tmp_path / "nope.txt")
