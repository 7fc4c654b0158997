"""Noun-vocabulary statistics of a caption set (PixArt-α, Table 1: LAION vs SAM-LLaVA captions).

The paper compares caption sets by their nouns: the number of distinct nouns, the "valid"
distinct nouns (those frequent enough to be learnable), their ratio, the total number of nouns
and the average number of nouns per image. ``vocab_stats`` computes these with spaCy:

- a *noun* is a token whose coarse part of speech ``Token.pos_`` is ``"NOUN"``. Proper nouns
  (``PROPN``) are **not** counted: the paper speaks of nouns, and names/brands would otherwise
  dominate alt-text counts;
- nouns are identified by their lower-cased lemma (``cats`` and ``Cat`` → ``cat``), falling back
  to the lower-cased token text when the pipeline sets no lemma;
- ``valid_distinct_nouns`` counts lemmas with at least ``min_count`` occurrences over the whole
  set (default 10, the paper's threshold; occurrences, not captions);
- ``avg_nouns_per_image`` is noun occurrences / number of captions (one caption per image).

The spaCy pipeline must assign ``Token.pos_`` (e.g. ``en_core_web_sm``: tagger + attribute_ruler,
or any pipeline with a morphologizer); ``load_spacy`` and ``vocab_stats`` refuse one that does not.
A caption file that cannot be read, and a spaCy pipeline that is missing, damaged or has no tagger,
are ``pixart.data.DataError``s naming it.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from pixart.data import DataError, jsonl_lines
from pixart.errors import read_text, reading

NOUN_POS = frozenset({"NOUN"})
CAPTION_FIELDS = ("caption", "prompt", "text")
UNNEEDED_PIPES = ("parser", "ner", "senter", "textcat", "textcat_multilabel", "entity_linker", "entity_ruler", "spancat")
_PROBE = "A small brown dog sleeps on the green grass near two old houses."


# --------------------------------------------------------------------------- spaCy


def _has_pos_component(nlp) -> bool:
    """Statically: a component that assigns ``token.pos`` (morphologizer), or tagger + attribute_ruler."""
    names = []
    for name in nlp.pipe_names:
        meta = nlp.get_pipe_meta(name)
        if "token.pos" in (meta.assigns or []):
            return True
        names.append(meta.factory)
    return any("tagger" in f for f in names) and "attribute_ruler" in names


def check_pos_pipeline(nlp, name: str | None = None) -> None:
    """Raise ``DataError`` unless ``nlp`` sets ``Token.pos_`` (checked statically, then on a probe sentence)."""
    if _has_pos_component(nlp):
        return
    if any(t.pos_ for t in nlp(_PROBE)):  # a custom component may still set POS
        return
    label = name or nlp.meta.get("name", "?")
    raise DataError(
        f"spaCy pipeline {label!r} has no part-of-speech tagger (components: {nlp.pipe_names or 'none'}); "
        "noun counting needs Token.pos_: use a pipeline with a tagger + attribute_ruler (e.g. en_core_web_sm) "
        "or a morphologizer"
    )


def load_spacy(model: str | os.PathLike = "en_core_web_sm"):
    """``spacy.load(model)`` (a package name or a saved pipeline folder) with clear errors.

    Raises ``DataError`` if the model is missing or damaged, or if the pipeline sets no POS tags.
    """
    try:
        import spacy
    except ImportError as e:  # pragma: no cover - spacy is a dependency
        raise RuntimeError("spaCy is not installed: pip install 'spacy>=3.7'") from e
    if Path(model).exists():  # a saved pipeline folder
        with reading(model, DataError, "spaCy pipeline folder"):
            nlp = spacy.load(model)
    else:
        try:
            nlp = spacy.load(model)
        except OSError:
            raise DataError(
                f"spaCy model {str(model)!r} is missing (not an installed package nor a pipeline folder): install it "
                f"with `python -m spacy download en_core_web_sm` (or the model you want), or pass the path of a saved "
                f"spaCy pipeline with --spacy-model"
            ) from None
    check_pos_pipeline(nlp, str(model))
    return nlp


# --------------------------------------------------------------------------- counting


def noun_key(token) -> str:
    """The counting key of a noun token: lower-cased lemma, else lower-cased text."""
    return (token.lemma_ or token.text).strip().lower() or token.text.lower()


def noun_counts(captions: Iterable[str], nlp=None, *, batch_size: int = 256, progress: bool = False) -> tuple[Counter, int]:
    """(Counter of noun lemma → occurrences, number of captions)."""
    if nlp is None:
        nlp = load_spacy()
    check_pos_pipeline(nlp)
    if not isinstance(captions, (list, tuple)):
        captions = list(captions)
    counts: Counter = Counter()
    disable = [n for n in nlp.pipe_names if n in UNNEEDED_PIPES]
    texts = (c if isinstance(c, str) else str(c) for c in captions)
    with nlp.select_pipes(disable=disable):
        docs = nlp.pipe(texts, batch_size=batch_size)
        if progress:
            from tqdm.auto import tqdm

            docs = tqdm(docs, total=len(captions), desc="nouns", unit="caption")
        for doc in docs:
            counts.update(noun_key(t) for t in doc if t.pos_ in NOUN_POS)
    return counts, len(captions)


def vocab_stats(captions: Iterable[str], nlp=None, *, min_count: int = 10, batch_size: int = 256,
                progress: bool = False) -> dict:
    """The paper's vocabulary row for a caption set (one caption per image). ``nlp`` defaults to en_core_web_sm.

    Returns ``{"images", "valid_distinct_nouns", "total_distinct_nouns", "total_noun_occurrences",
    "avg_nouns_per_image", "vn_ratio"}``.
    """
    counts, n = noun_counts(captions, nlp, batch_size=batch_size, progress=progress)
    valid = sum(1 for c in counts.values() if c >= min_count)
    distinct = len(counts)
    total = sum(counts.values())
    return {
        "images": n,
        "valid_distinct_nouns": valid,
        "total_distinct_nouns": distinct,
        "total_noun_occurrences": total,
        "avg_nouns_per_image": total / n if n else 0.0,
        "vn_ratio": valid / distinct if distinct else 0.0,
    }


# --------------------------------------------------------------------------- inputs


def _caption_from_record(rec, where: str) -> str:
    if isinstance(rec, str):
        return rec
    if isinstance(rec, dict):
        for key in CAPTION_FIELDS:
            if isinstance(rec.get(key), str):
                return rec[key]
    raise DataError(f"{where}: no caption field (expected one of {', '.join(CAPTION_FIELDS)})")


def read_captions(path: str | os.PathLike) -> list[str]:
    """Captions from a ``.jsonl`` (field ``caption``, else ``prompt``, else ``text``; blank lines skipped),
    a ``.txt`` (one caption per non-blank line), or a folder of ``.txt`` files (recursive, sorted; one
    caption per file, its whitespace collapsed). ``DataError`` naming the file (and line) when one cannot
    be read or holds no caption at all."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DataError(f"no .txt caption files in {path}")
        captions = [" ".join(read_text(p, DataError, "caption file").split()) for p in files]
    elif not path.exists():
        raise DataError(f"caption file {path} does not exist")
    elif path.suffix.lower() == ".jsonl":
        captions = [_caption_from_record(rec, f"{path}:{n}") for n, rec in jsonl_lines(path, "caption file")]
    elif path.suffix.lower() == ".txt":
        captions = [line.strip() for line in read_text(path, DataError, "caption file").splitlines() if line.strip()]
    else:
        raise DataError(f"unsupported caption file {path}: expected .jsonl, .txt or a folder of .txt files")
    if not any(c.strip() for c in captions):
        raise DataError(f"no captions in {path} (empty or blank)")
    return captions
