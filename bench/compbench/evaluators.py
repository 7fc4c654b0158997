"""Evaluator models from local folders or the Hugging Face cache, offline.

``model_folder`` finds a model (a folder, or a hub id's snapshot already in the cache; nothing is
downloaded) and says how to get a missing one; ``load_pretrained`` loads a transformers model and
its processor from it, refusing another kind of model or weights that leave part of it unset;
``weights_sha256`` is what the results record of the weights that made a number. ``check_pretrained``
checks a folder without loading it (config, weight files and their headers, processor files): what a
run checks before it makes an image (``bench.compbench.preflight``).
"""

from __future__ import annotations

import json
import os
import zipfile
from functools import cache
from pathlib import Path

from bench.errors import BenchError, check_device
from pixart.errors import read_json, reading
from pixart.files import sha256_files


def model_folder(model_path: str | os.PathLike, what: str, how_to_get: str) -> Path:
    """The folder of ``model_path``: a local folder, or a hub id's snapshot already in the Hugging
    Face cache (nothing is downloaded); BenchError says how to get a missing one."""
    path = Path(model_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise BenchError(f"{what} {path} is a file; pass the model folder (config.json, weights, processor)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(model_path), local_files_only=True))
    except (HFValidationError, LocalEntryNotFoundError):
        raise BenchError(f"{what} {model_path} is neither a folder nor a model in the Hugging Face cache; "
                         f"{how_to_get}") from None


def load_pretrained(model_path, model_cls, processor_cls, model_type: str, what: str, how_to_get: str,
                    device: str = "cpu"):
    """(model in eval mode on ``device``, processor or None, folder) of a transformers model folder;
    BenchError names a missing or damaged folder, another kind of model, or weights that leave part
    of the model unset."""
    folder = model_folder(model_path, what, how_to_get)
    config = folder / "config.json"
    if not config.is_file():
        raise BenchError(f"no {what} in {folder}: {config} does not exist; {how_to_get}")
    found = read_json(config, BenchError, f"{what} config").get("model_type")
    if found != model_type:
        raise BenchError(f"{folder} holds a {found!r} model, not {what} (model_type {model_type!r}); {how_to_get}")
    target = check_device(device)
    with reading(folder, BenchError, f"{what} folder"):
        model, info = model_cls.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        processor = processor_cls.from_pretrained(folder, local_files_only=True) if processor_cls else None
    unset = sorted(info["missing_keys"]) + sorted(info["mismatched_keys"])
    if unset:
        raise BenchError(f"{what} {folder}: its weights leave {len(unset)} tensors unset (e.g. {unset[0]}); "
                         f"it is not a {model_cls.__name__} checkpoint; {how_to_get}")
    return model.to(target).eval().requires_grad_(False), processor, folder


def how_to_get(hub_id: str) -> str:
    """How to get a hub model onto a machine without internet access."""
    return (f"on a machine with internet access run `hf download {hub_id} --local-dir {hub_id.split('/')[-1]}` "
            "(older huggingface_hub: `huggingface-cli download ...`), copy the folder over and pass its path")


# the weight files ``from_pretrained`` reads, in its order of preference (an index names its shards)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def weight_files(folder: Path, where: str) -> list[Path]:
    """The weight files ``from_pretrained`` would read from ``folder`` ([] when there are none);
    BenchError (``where``: the option and path) names a damaged index or the shards it lacks."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return [path]
        weight_map = read_json(path, BenchError, f"{where}: weights index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise BenchError(f"{where}: weights index {path} has no weight_map")
        shards = [folder / str(f) for f in sorted(set(weight_map.values()))]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise BenchError(f"{where}: {path.name} names {len(missing)} shard(s) that {folder} lacks: "
                             f"{', '.join(missing[:3])}")
        return shards
    return []


def weights_header_problem(path: Path) -> str | None:
    """Why the header of a weight file does not read (None when it does): a .safetensors file's header
    must parse and describe exactly the file's bytes; any other (.bin, .pt, .pth) must be a torch archive
    whose directory reads, or torch's legacy pickle. Reads the headers only."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if path.suffix == ".safetensors":
                head = f.read(8)
                n = int.from_bytes(head, "little") if len(head) == 8 else -1
                if n < 2 or 8 + n > size:
                    return f"its safetensors header is cut off or not one ({size} bytes; truncated?)"
                try:
                    header = json.loads(f.read(n))
                    end = 8 + n + max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                                      default=0)
                except (ValueError, UnicodeDecodeError, TypeError, KeyError, IndexError, AttributeError):
                    return "its safetensors header does not parse (damaged?)"
                if end != size:
                    return f"its header describes {end:,} bytes, the file has {size:,} (truncated?)"
                return None
            if zipfile.is_zipfile(f):
                return None
            f.seek(0)
            head = f.read(2)
            if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):  # a pickle: torch's
                return None  # legacy (pre-zip) format
            return "it is neither a torch archive nor torch's legacy format (truncated or damaged?)"
    except zipfile.BadZipFile:
        return "its torch archive does not read (truncated?)"
    except OSError as e:
        return f"it cannot be read ({e.strerror or e})"


def check_pretrained(model_path, model_type: str, what: str, option: str, how: str,
                     files: tuple[tuple[str, ...], ...] = ()) -> Path:
    """The folder of ``model_path`` (a folder or a hub id in the cache), checked without loading the
    model: its config names ``model_type``, its weight files exist and their headers read, and for each
    group of ``files`` (the processor's) one is there. BenchError names ``option``, the path and ``how``
    to get the model."""
    folder = model_folder(model_path, option, how)
    where = f"{option} {model_path}" + (f" ({folder})" if str(folder) != str(model_path) else "")
    config = folder / "config.json"
    if not config.is_file():
        raise BenchError(f"{where}: no {what} there: {config.name} does not exist; {how}")
    found = read_json(config, BenchError, f"{option}: {what} config").get("model_type")
    if found != model_type:
        raise BenchError(f"{where} holds a {found!r} model, not {what} (model_type {model_type!r}); {how}")
    weights = weight_files(folder, where)
    if not weights:
        raise BenchError(f"{where}: no weights ({' or '.join(WEIGHT_FILES[::2])}); {how}")
    for path in weights:
        problem = weights_header_problem(path)
        if problem:
            raise BenchError(f"{where}: weight file {path.name} is damaged: {problem}; {how}")
    for group in files:
        if not any((folder / name).is_file() for name in group):
            raise BenchError(f"{where}: no {' or '.join(group)} (the {what}'s processor files); {how}")
    return folder


@cache
def weights_sha256(folder: Path) -> str:
    """SHA-256 of the weight files ``from_pretrained`` reads (safetensors, else .bin), in name order
    (computed once per folder: provenance is asked for more than once per run)."""
    return sha256_files(sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin")))
