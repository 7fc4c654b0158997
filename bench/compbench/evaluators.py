"""Evaluator models from local folders or the Hugging Face cache, offline.

``model_folder`` finds a model (a folder, or a hub id's snapshot already in the cache; nothing is
downloaded) and says how to get a missing one; ``load_pretrained`` loads a transformers model and
its processor from it, refusing another kind of model or weights that leave part of it unset;
``weights_sha256`` is what the results record of the weights that made a number.
"""

from __future__ import annotations

import os
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


@cache
def weights_sha256(folder: Path) -> str:
    """SHA-256 of the weight files ``from_pretrained`` reads (safetensors, else .bin), in name order
    (computed once per folder: provenance is asked for more than once per run)."""
    return sha256_files(sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin")))
