"""Read result files of any pixart-bench command for a report, and tell their kinds apart by content.

``collect(paths)`` takes result files or folders holding them and returns ``Results``: one ``Entry``
per file, with its kind, parsed JSON, model name, SHA-256 and (compbench) the per-image scores.

| kind | file | written by | how it is recognised |
|---|---|---|---|
| ``compbench`` | ``results.json`` (+ ``per_image.csv``) | ``compbench`` | ``"format": "pixart-bench compbench"`` |
| ``compbench_world`` | ``results.json`` | ``compbench --suite world`` | ``"format": "pixart-bench compbench (shapes world)"`` |
| ``audit`` | ``audit.json`` | ``compbench audit`` | ``"format": "pixart-bench compbench audit"`` |
| ``fid`` | ``fid.json`` | ``fid folder / coco / world``, ``ablate fid`` (per model) | ``fid``, ``n_gen``, ``reference``, ``extractor`` |
| ``ablate_cost`` | ``cost.json`` | ``ablate cost`` | ``"format": "pixart-bench ablate cost"`` |
| ``ablate_fid`` | ``ablate_fid.json`` | ``ablate fid`` | ``"format": "pixart-bench ablate fid"`` |
| ``ablate_train`` | ``ablate_train.json`` | ``ablate train`` | ``arms``, ``runs``, ``curves``, ``claims`` |
| ``study`` | ``results.json`` | ``study results`` | ``models`` and ``criteria`` |
| ``demo`` | ``results.json`` | ``demo`` | ``scores``, ``world_fid``, ``reference_parameters`` |

A path may be written ``NAME=PATH`` to name the model of a single-model result (compbench, compbench
world, audit, fid, demo); otherwise the name is the one the file records (a compbench run's ``--ckpt``,
an ablate-fid model's name), else the name of the folder holding the file (for an audit, the audited
run's folder). A missing, unreadable or unknown file is a ``BenchError`` naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from pixart.errors import read_json
from pixart.files import sha256_files

KINDS = ("compbench", "compbench_world", "audit", "fid", "ablate_cost", "ablate_fid", "ablate_train", "study", "demo")
# the file names a folder is searched for, in this order
RESULT_FILES = ("results.json", "fid.json", "cost.json", "ablate_fid.json", "ablate_train.json", "audit.json")
PER_IMAGE = "per_image.csv"
PER_IMAGE_COLUMNS = ("category", "file", "prompt", "score", "metric")
SINGLE_MODEL = ("compbench", "compbench_world", "audit", "fid", "demo")

# the keys each kind must have for the tables to read it, as (key, type) paths
REQUIRED = {
    "compbench": [("categories", dict), ("protocol", dict), ("model", dict)],
    "compbench_world": [("suites", dict), ("protocol", dict), ("model", dict)],
    "audit": [("categories", dict), ("run", dict), ("official", dict)],
    "fid": [("fid", (int, float)), ("n_gen", int), ("reference", dict), ("settings", dict), ("extractor", dict)],
    "ablate_cost": [("settings", dict), ("rows", list)],
    "ablate_fid": [("n", int), ("reference", dict), ("fid_settings", dict), ("models", list)],
    "ablate_train": [("arms", dict), ("runs", list), ("curves", dict), ("claims", dict)],
    "study": [("models", list), ("criteria", dict)],
    "demo": [("scores", dict), ("world_fid", (int, float))],
}
CATEGORY_KEYS = [("score", (int, float)), ("ci95", list), ("metric", str)]
WORLD_KEYS = [("score", (int, float)), ("ci95", list), ("images", int)]
AUDIT_KEYS = [("images", int), ("ours", (int, float)), ("theirs", (int, float)), ("max_abs_diff", (int, float)),
              ("mean_abs_diff", (int, float)), ("over_tolerance", int)]


@dataclass
class Entry:
    kind: str
    path: Path  # the result file; images and manifests are found next to it
    data: dict
    model: str | None  # single-model kinds; None for files of several models or variants
    sha256: str
    per_image: pd.DataFrame | None = None  # compbench: per_image.csv (category, file, prompt, score, metric)


@dataclass
class Results:
    entries: list[Entry]
    models: list[str] | None = None  # the --models selection, in its order (None: every model, as read)

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]


def detect_kind(data: dict) -> str | None:
    """The kind of a parsed result file, from its content; None when it is none of ``KINDS``."""
    fmt = data.get("format")
    if fmt == "pixart-bench compbench":
        return "compbench"
    if fmt == "pixart-bench compbench (shapes world)":
        return "compbench_world"
    if fmt == "pixart-bench compbench audit":
        return "audit"
    if fmt == "pixart-bench ablate cost":
        return "ablate_cost"
    if fmt == "pixart-bench ablate fid":
        return "ablate_fid"
    if {"models", "criteria"} <= data.keys():
        return "study"
    if {"fid", "n_gen", "reference", "extractor"} <= data.keys():
        return "fid"
    if {"arms", "runs", "curves", "claims"} <= data.keys():
        return "ablate_train"
    if {"scores", "world_fid", "reference_parameters"} <= data.keys():
        return "demo"
    return None


def _check(kind: str, data: dict, path: Path) -> None:
    """BenchError naming the file and the first missing or mistyped key."""
    def need(obj: dict, key: str, typ, where: str):
        if key not in obj:
            raise BenchError(f"{path}: a {kind} result without {where}{key!r}; the file is damaged or from "
                             "another version (write it again with the command that made it)")
        if not isinstance(obj[key], typ) or isinstance(obj[key], bool):
            raise BenchError(f"{path}: {where}{key!r} must be a {_names(typ)}, got {type(obj[key]).__name__}")

    for key, typ in REQUIRED[kind]:
        need(data, key, typ, "")
    if kind == "compbench":
        if not data["categories"]:
            raise BenchError(f"{path}: a compbench result with no categories")
        for category, summary in data["categories"].items():
            if not isinstance(summary, dict):
                raise BenchError(f"{path}: categories[{category!r}] must be an object")
            for key, typ in CATEGORY_KEYS:
                need(summary, key, typ, f"categories[{category!r}] ")
    if kind == "compbench_world":
        _check_world(data, path, need)
    if kind == "audit":
        _check_audit(data, path, need)
    rows = {"ablate_cost": ("rows", ("config", "implementation", "status")),
            "ablate_fid": ("models", ("model", "fid", "n", "reference_id"))}.get(kind)
    if rows:
        for i, row in enumerate(data[rows[0]]):
            missing = [k for k in rows[1] if not isinstance(row, dict) or k not in row]
            if missing:
                raise BenchError(f"{path}: {rows[0]}[{i}] lacks {', '.join(missing)}")
    if kind == "study":
        for criterion, result in data["criteria"].items():
            for key in ("first_place_share", "mean_rank"):
                if not isinstance(result, dict) or not isinstance(result.get(key), dict):
                    raise BenchError(f"{path}: criteria[{criterion!r}] lacks {key!r}")


def _check_world(data: dict, path: Path, need) -> None:
    """The reader (version 2: "reader" with key "judge" or "oracle"; version 1: the exact oracle, key
    "oracle"); each suite: the reader's score, CI and image count; the learned metric's, where run."""
    version = data.get("version", 1)
    if version not in (1, 2):
        raise BenchError(f"{path}: a compbench world result of version {version!r}; this pixart-bench reads "
                         "versions 1 and 2 (write it again with compbench --suite world)")
    if version == 2:
        need(data, "reader", dict, "")
        if data["reader"].get("key") not in ("judge", "oracle"):
            raise BenchError(f"{path}: reader['key'] must be 'judge' or 'oracle', got {data['reader'].get('key')!r}")
        need(data["reader"], "name", str, "reader ")
    reader = data["reader"]["key"] if version == 2 else "oracle"
    if not data["suites"]:
        raise BenchError(f"{path}: a compbench world result with no suites")
    for suite, result in data["suites"].items():
        if not isinstance(result, dict) or not isinstance(result.get(reader), dict):
            raise BenchError(f"{path}: suites[{suite!r}] lacks {reader!r} (the scores of its reader)")
        for key, typ in WORLD_KEYS:
            need(result[reader], key, typ, f"suites[{suite!r}][{reader!r}] ")
        if "learned" in result:
            learned = result["learned"]
            if not isinstance(learned, dict):
                raise BenchError(f"{path}: suites[{suite!r}]['learned'] must be an object")
            for key, typ in (*CATEGORY_KEYS, ("agreement_with_oracle", dict)):
                need(learned, key, typ, f"suites[{suite!r}]['learned'] ")


def _check_audit(data: dict, path: Path, need) -> None:
    """Each category: its status and metric, and the statistics of a compared one."""
    if not data["categories"]:
        raise BenchError(f"{path}: an audit with no categories")
    for category, result in data["categories"].items():
        if not isinstance(result, dict):
            raise BenchError(f"{path}: categories[{category!r}] must be an object")
        need(result, "status", str, f"categories[{category!r}] ")
        need(result, "metric", str, f"categories[{category!r}] ")
        if result["status"] == "compared":
            for key, typ in AUDIT_KEYS:
                need(result, key, typ, f"categories[{category!r}] ")


def _names(typ) -> str:
    typs = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join({"dict": "JSON object", "list": "JSON list", "int": "number", "float": "number",
                        "str": "string"}[t.__name__] for t in typs)


def read_per_image(path: Path) -> pd.DataFrame:
    """A compbench ``per_image.csv``; BenchError naming it when it cannot be read or lacks a column."""
    try:
        frame = pd.read_csv(path, dtype={"category": str, "file": str, "prompt": str, "metric": str},
                            keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise BenchError(f"cannot read per-image scores {path}: {e}") from None
    missing = [c for c in PER_IMAGE_COLUMNS if c not in frame.columns]
    if missing:
        raise BenchError(f"per-image scores {path} lack the column(s) {', '.join(missing)} "
                         f"(expected {', '.join(PER_IMAGE_COLUMNS)})")
    scores = pd.to_numeric(frame["score"], errors="coerce")
    if scores.isna().any():
        row = int(scores.isna().to_numpy().argmax())
        raise BenchError(f"per-image scores {path}, row {row + 2}: score {frame['score'].iloc[row]!r} is not a number")
    return frame.assign(score=scores.astype(float))


def split_name(value: str | os.PathLike) -> tuple[str | None, Path]:
    """(NAME, PATH) of ``NAME=PATH``; (None, path) of a plain path (an existing path is never split)."""
    text = str(value)
    if Path(text).exists() or "=" not in text:
        return None, Path(text)
    name, _, rest = text.partition("=")
    if not name or "/" in name or os.sep in name:
        return None, Path(text)
    return name, Path(rest)


def result_files(path: Path) -> list[Path]:
    """The result files of ``path``: itself (a file), or the known result files in it (a folder)."""
    if not path.exists():
        raise BenchError(f"result file or folder not found: {path}")
    if path.is_file():
        return [path]
    found = [path / name for name in RESULT_FILES if (path / name).is_file()]
    if not found:
        raise BenchError(f"{path} holds no result file ({', '.join(RESULT_FILES)}); give the --out folder of "
                         "compbench, compbench audit, fid, ablate, study results or demo, or the file itself")
    return found


def _default_model(kind: str, data: dict, path: Path) -> str | None:
    if kind not in SINGLE_MODEL:
        return None
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    recorded = model.get("name") or (Path(str(model["ckpt"]).rstrip("/")).name if model.get("ckpt") else None)
    if kind == "audit" and not recorded and data["run"].get("path"):
        recorded = Path(str(data["run"]["path"]).rstrip("/")).name  # the audited run's folder, not audit/
    return recorded or path.resolve().parent.name


def read_entry(path: Path, name: str | None = None) -> Entry:
    """One result file as an ``Entry`` (kind from its content); BenchError naming a file that is not one."""
    data = read_json(path, BenchError, "result file")
    kind = detect_kind(data)
    if kind is None:
        raise BenchError(f"{path} is not a result file pixart-bench report reads: its keys "
                         f"({', '.join(sorted(data)[:8])}) are none of compbench's, compbench world's, compbench "
                         "audit's, fid's, ablate cost's, ablate fid's, ablate train's, study results' or demo's")
    _check(kind, data, path)
    if name is not None and kind not in SINGLE_MODEL:
        raise BenchError(f"{name}={path}: a {kind} result holds several models or variants; give it without NAME=")
    per_image = None
    if kind == "compbench" and (path.parent / PER_IMAGE).is_file():
        per_image = read_per_image(path.parent / PER_IMAGE)
    return Entry(kind, path, data, name or _default_model(kind, data, path), sha256_files([path]), per_image)


def models_of(entry: Entry) -> list[str]:
    """The models an entry reports: its own, or those of a study or an ablate-fid run."""
    if entry.model is not None:
        return [entry.model]
    if entry.kind == "study":
        return [str(m) for m in entry.data["models"]]
    return []


def collect(paths: list[str | os.PathLike], models: list[str] | None = None) -> Results:
    """Read every result file of ``paths`` (files, folders, or ``NAME=PATH``); ``models`` keeps only
    those models, in that order (variants of ablations are kept whatever it says). The same file given
    twice is read once; one model in two files of the same kind is an error naming both."""
    if not paths:
        raise BenchError("give at least one result file or folder")
    entries: list[Entry] = []
    seen: dict[str, Path] = {}
    for value in paths:
        name, path = split_name(value)
        files = result_files(path)
        if name is not None and len(files) > 1:
            raise BenchError(f"{value}: {path} holds several result files ({', '.join(f.name for f in files)}); "
                             "name one file")
        for file in files:
            entry = read_entry(file, name)
            if entry.sha256 in seen:
                continue
            seen[entry.sha256] = file
            twin = next((e for e in entries if e.kind == entry.kind and e.model and e.model == entry.model), None)
            if twin is not None:
                raise BenchError(f"model {entry.model!r} has two {entry.kind} results, {twin.path} and {file}; "
                                 f"name them apart with NAME=PATH (e.g. {entry.model}-b={file})")
            entries.append(entry)
    return Results(select(entries, models), list(models) if models else None)


def select(entries: list[Entry], models: list[str] | None) -> list[Entry]:
    """Entries of the ``models`` (in that order, then the multi-model ones); BenchError naming a model
    no entry has."""
    if not models:
        return entries
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise BenchError(f"--models lists {', '.join(twice)} more than once")
    known = [m for e in entries for m in models_of(e)]
    unknown = [m for m in models if m not in known]
    if unknown:
        raise BenchError(f"--models: no result file has model(s) {', '.join(unknown)}; the files have "
                         f"{', '.join(dict.fromkeys(known)) or 'no named models'}")
    single = sorted((e for e in entries if e.model in models), key=lambda e: models.index(e.model))
    return single + [e for e in entries if e.model is None and (e.kind != "study" or set(models_of(e)) & set(models))]
