"""Prompt analysis for the metrics: spaCy's tokens (text, part of speech) and noun chunks.

Every T2I-CompBench rule that reads a prompt reads spaCy's output: BLIP-VQA asks about its noun
chunks, the 2D / 3D spatial rules take nouns by part of speech, the complex CLIPScore drops the
adjectives, numeracy reads the tokens. ``Parser(prompt)`` returns that output as an ``Analysis``.
For the shipped prompt lists it comes from ``data/parsed.json`` (made once with
``build_shipped``; the spaCy and model versions are recorded there), so scoring them needs no
spaCy; any other prompt is parsed with the spaCy pipeline named by ``spacy_model`` (default
``en_core_web_sm``: ``python -m spacy download en_core_web_sm``), and a missing pipeline is a clear
error. The official scripts used spaCy 3.5.3 with en_core_web_sm 3.5.0; parses can differ
between versions (docs/compbench.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from bench.errors import BenchError

DEFAULT_SPACY_MODEL = "en_core_web_sm"
SHIPPED = "parsed.json"


@dataclass(frozen=True)
class Analysis:
    tokens: tuple[tuple[str, str, str], ...]  # (text, coarse part of speech as spaCy's pos_, trailing whitespace)
    noun_chunks: tuple[str, ...]  # spaCy's noun chunks, in order, unfiltered

    @property
    def words(self) -> list[str]:
        return [t[0] for t in self.tokens]

    def to_dict(self) -> dict:
        return {"tokens": [list(t) for t in self.tokens], "noun_chunks": list(self.noun_chunks)}

    @classmethod
    def from_dict(cls, d: dict) -> "Analysis":
        return cls(tuple(tuple(t) for t in d["tokens"]), tuple(d["noun_chunks"]))


def analyse(doc) -> Analysis:
    """The ``Analysis`` of a spaCy ``Doc``."""
    return Analysis(tuple((t.text, t.pos_, t.whitespace_) for t in doc), tuple(c.text for c in doc.noun_chunks))


@cache
def shipped() -> dict:
    """The shipped analyses: {"spacy", "model", "prompts": {prompt: analysis dict}} (empty when absent)."""
    path = files("bench.compbench") / "data" / SHIPPED
    if not path.is_file():
        return {"spacy": None, "model": None, "prompts": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def load_spacy(model: str = DEFAULT_SPACY_MODEL):
    """A spaCy pipeline by package name or folder; BenchError says how to install a missing one."""
    try:
        import spacy
    except ImportError:  # spacy is a dependency; a broken install is worth a clear word
        raise BenchError("spaCy is not installed: pip install spacy") from None
    try:
        return spacy.load(model)
    except OSError:
        raise BenchError(f"spaCy pipeline {model!r} not found: install it with `python -m spacy download {model}` "
                         "(or pass --spacy-model with an installed pipeline or a folder); it is needed for prompts "
                         "outside the shipped T2I-CompBench lists") from None


class Parser:
    """``parser(prompt)`` → ``Analysis``: the shipped analysis when there is one, else spaCy's."""

    def __init__(self, spacy_model: str = DEFAULT_SPACY_MODEL, use_shipped: bool = True):
        self.spacy_model = spacy_model
        self.use_shipped = use_shipped
        self._nlp = None
        self.computed = 0  # prompts parsed with spaCy (not found in the shipped file)

    def __call__(self, prompt: str) -> Analysis:
        table = shipped()["prompts"] if self.use_shipped else {}
        if prompt in table:
            return Analysis.from_dict(table[prompt])
        if self._nlp is None:
            self._nlp = load_spacy(self.spacy_model)
        self.computed += 1
        return analyse(self._nlp(prompt))

    def provenance(self) -> dict:
        s = shipped()
        out = {"shipped_analyses": {"spacy": s["spacy"], "model": s["model"], "prompts": len(s["prompts"])},
               "spacy_model": self.spacy_model, "prompts_parsed_with_spacy": self.computed}
        if self._nlp is not None:
            import spacy

            out["spacy"] = {"version": spacy.__version__, "model": f"{self._nlp.meta.get('name')} "
                                                                  f"{self._nlp.meta.get('version')}"}
        return out


def build_shipped(prompts: list[str], nlp, out: str | Path) -> Path:
    """Write the shipped analyses of ``prompts`` (e.g. every shipped list) made with ``nlp``."""
    import spacy

    table = {p: analyse(nlp(p)).to_dict() for p in dict.fromkeys(prompts)}
    record = {"spacy": spacy.__version__, "model": f"{nlp.meta.get('lang')}_{nlp.meta.get('name')} "
                                                   f"{nlp.meta.get('version')}", "prompts": table}
    out = Path(out)
    out.write_text(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return out
