"""Load, save and convert PixArt transformer checkpoints in three formats.

Formats
- ``official``: the ``.pth`` of ``PixArt-alpha/PixArt-alpha`` (``{"state_dict": ...}`` or a plain
  state dict; training checkpoints' ``state_dict_ema`` on request). Also a ``.safetensors`` file
  with official key names. Our model uses these names, so it loads with ``strict=True``.
- ``diffusers``: a ``PixArtTransformer2DModel`` folder (``config.json`` +
  ``diffusion_pytorch_model[.safetensors|.bin]``, sharded or not), or a pipeline folder holding
  one in ``transformer/``. diffusers has no ``y_embedding``; when *we* write a diffusers folder we
  keep the null caption (and ``pos_embed``) in ``pixart_buffers.safetensors`` beside the weights:
  diffusers ignores that file, we read it back, so official → diffusers → official is bit-exact.
- ``native``: our folder, ``config.json`` (a ``PixArtConfig``) + ``model.safetensors`` with
  official key names.

The two buffers, handled explicitly (and only these):
- ``pos_embed`` is derived from the config. When a checkpoint stores it, it is *checked*
  against the config's ``lewei_scale`` (and, when the config is inferred, the scale is read off
  it); a mismatch is an error naming the scale the checkpoint was made with. When absent
  (diffusers) it is recomputed.
- ``y_embedder.y_embedding`` (trained null caption). When absent, the model is loaded with
  ``model.has_null_caption = False`` and the formats we write omit it.
Every other key must match by name and shape, or loading fails with a message that lists the
missing, unexpected and mis-shaped keys. Nothing is loaded with ``strict=False``.

The official ↔ diffusers key and config map, and a config inferred from a state dict, are in
``pixart.checkpoint_map`` (re-exported here).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from pixart.checkpoint_map import (  # noqa: F401
    DIFFUSERS_HEAD_DIM,
    DIFFUSERS_REQUIRED,
    OPTIONAL_KEYS,
    PE_SCALE_CANDIDATES,
    CheckpointError,
    _hint,
    _mismatch_message,
    config_from_diffusers,
    config_to_diffusers,
    detect_pe_scale,
    diffusers_to_official,
    infer_config,
    key_map,
    official_to_diffusers,
    pos_embed_matches,
)
from pixart.errors import read_json, read_safetensors
from pixart.files import atomic_write, package_version, write_json_atomic
from pixart.model import PRESETS, PixArt, PixArtConfig, base_pos_embed

FORMATS = ("official", "diffusers", "native")
NATIVE_CONFIG = "config.json"
NATIVE_WEIGHTS = "model.safetensors"
NATIVE_FORMAT_TAG = "pixart-bench-native"
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
DIFFUSERS_INDEX = "diffusion_pytorch_model.safetensors.index.json"
DIFFUSERS_BUFFERS = "pixart_buffers.safetensors"
def resolve_config(config) -> PixArtConfig | None:
    """``None``, a ``PixArtConfig``, a preset name, or a path to a JSON config → ``PixArtConfig``."""
    if config is None or isinstance(config, PixArtConfig):
        return config
    if isinstance(config, dict):
        return _config_from_native_json(config, "the config")
    if isinstance(config, (str, Path)) and Path(config).is_file():
        return _config_from_native_json(read_json(config, CheckpointError, "model config"), str(config))
    if str(config).endswith(".json"):
        raise CheckpointError(f"model config not found: {config}")
    if str(config) not in PRESETS:
        raise CheckpointError(f"unknown preset {str(config)!r} for --config; choose one of {sorted(PRESETS)} "
                              "or give a config.json")
    return PixArtConfig.preset(str(config))


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def detect_format(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_file():
        return "official"
    folder = _model_folder(path)
    cfg = read_json(folder / "config.json", CheckpointError, "transformer config")
    if cfg.get("_format") == NATIVE_FORMAT_TAG:
        return "native"
    if "_class_name" in cfg:
        return "diffusers"
    raise CheckpointError(f"{folder / 'config.json'} is neither a pixart-bench nor a diffusers transformer config")


def _model_folder(path: Path) -> Path:
    """The folder holding the transformer's config.json (a pipeline folder's ``transformer/``)."""
    for folder in (path, path / "transformer"):
        if (folder / "config.json").is_file():
            return folder
    raise CheckpointError(f"no transformer config.json in {path} (looked for config.json and transformer/config.json)")


# what a refusal of a file that is not a checkpoint says was expected
EXPECTED = ("a PixArt transformer checkpoint is an official .pth or .safetensors file, a transformer folder "
            "(config.json), or a diffusers or pixart-bench pipeline folder holding one")
# the key prefixes of an official-named PixArt (or DiT) state dict, and of a diffusers one
MODEL_PREFIXES = ("x_embedder.", "t_embedder.", "y_embedder.", "blocks.", "final_layer.", "transformer_blocks.",
                  "pos_embed")


def read_official(path: Path, key: str | None = None) -> dict:
    """State dict of an official ``.pth`` / ``.pt`` (``state_dict`` by default) or ``.safetensors``."""
    try:
        sd = read_safetensors(path, CheckpointError) if path.suffix == ".safetensors" else _read_official_pth(path, key)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; {EXPECTED}") from None
    if sd and not any(k.startswith(MODEL_PREFIXES) for k in sd):
        names = ", ".join(sorted(map(str, sd))[:3]) + (", ..." if len(sd) > 3 else "")
        raise CheckpointError(f"{path} is not a PixArt transformer checkpoint: none of its {len(sd):,} entries "
                              f"({names}) has a transformer's name; {EXPECTED}")
    return sd


def _read_official_pth(path: Path, key: str | None) -> dict:
    obj = load_torch_file(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    if key is not None:
        if key not in obj:
            raise CheckpointError(f"{path} has no {key!r} entry; it has {sorted(obj)[:10]}")
        return obj[key]
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        return obj["state_dict"]
    return obj


def read_diffusers(path: Path) -> tuple[dict, dict, dict]:
    """(config dict, diffusers-named state dict, our buffers if present) of a diffusers folder."""
    folder = _model_folder(path)
    config = read_json(folder / "config.json", CheckpointError, "transformer config")
    index = folder / DIFFUSERS_INDEX
    if index.is_file():
        weight_map = read_json(index, CheckpointError, "weights index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"weights index {index} has no weight_map")
        shards = sorted(set(weight_map.values()))
        sd = {}
        for shard in shards:
            sd.update(_read_weights_file(folder / shard))
    else:
        for name in DIFFUSERS_WEIGHTS:
            if (folder / name).is_file():
                sd = _read_weights_file(folder / name)
                break
        else:
            raise CheckpointError(f"no diffusers weights in {folder}: looked for {', '.join(DIFFUSERS_WEIGHTS)}, {DIFFUSERS_INDEX}")
    buffers = read_safetensors(folder / DIFFUSERS_BUFFERS, CheckpointError) if (folder / DIFFUSERS_BUFFERS).is_file() else {}
    return config, sd, buffers


def _read_weights_file(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"weights file missing: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path, CheckpointError)
    return load_torch_file(path)


def load_torch_file(path: Path):
    """A ``.pth`` / ``.pt`` / ``.bin`` file's object (tensors only: ``weights_only``), or CheckpointError.

    The catch is as wide as the one call: torch's unpickler meets a damaged or foreign file with
    whatever the bytes happen to trigger (RuntimeError, EOFError, IndexError, KeyError, ...)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - only torch.load of the user's file is inside
        looks = _looks_like(path)
        if looks is not None:  # torch's own words on such a file say nothing useful
            raise CheckpointError(f"cannot read {path} as a torch checkpoint: the file is {looks}, not a "
                                  "checkpoint") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = first if len(first) <= 200 else first[:197] + "..."
        raise CheckpointError(f"cannot read {path} as a torch checkpoint (truncated, corrupt or not a "
                              f"checkpoint): {first}") from None


def _looks_like(path: Path) -> str | None:
    """What a file that is no checkpoint seems to be, from its first bytes (None when nothing is recognised)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    for magic, what in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
                        (b"%PDF", "a PDF document")):
        if head.startswith(magic):
            return what
    if not head:
        return "empty"
    import codecs

    try:  # incremental: a character cut at byte 512 is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:  # binary: a damaged checkpoint, or something else
        return None
    return "a text file"


def read_native(path: Path) -> tuple[PixArtConfig, dict, dict]:
    folder = _model_folder(path)
    meta = read_json(folder / NATIVE_CONFIG, CheckpointError, "transformer config")
    weights = folder / NATIVE_WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"weights file missing: looked for {weights}")
    return _config_from_native_json(meta, str(folder / NATIVE_CONFIG)), read_safetensors(weights, CheckpointError), meta


def _config_from_native_json(meta: dict, source: str) -> PixArtConfig:
    """A native config.json (or a plain PixArtConfig dict) without our bookkeeping fields."""
    try:
        return PixArtConfig.from_dict({k: v for k, v in meta.items() if not k.startswith("_") and k != "has_null_caption"})
    except (TypeError, ValueError) as e:  # unknown fields, wrong types, inconsistent sizes
        raise CheckpointError(f"{source} is not a valid PixArt config: {e}") from None


# ----------------------------------------------------------------------------------------------
# Loading into the model
# ----------------------------------------------------------------------------------------------


def load_transformer(
    path: str | os.PathLike,
    config: PixArtConfig | str | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    state_dict_key: str | None = None,
) -> PixArt:
    """A ``PixArt`` from an official ``.pth``, a diffusers folder, or a native folder.

    ``config`` (a ``PixArtConfig``, preset name or JSON path) is needed only for an official file
    whose config cannot be inferred; for folders the folder's config is used, and a different
    ``config`` is an error. The weights keep their stored dtype unless ``dtype`` is given.
    """
    path = Path(path)
    config = resolve_config(config)
    fmt, stored, sd = read_state_dict(path, config, state_dict_key)
    if config is not None and fmt != "official" and config != stored:
        raise CheckpointError(f"{path} holds a model with config {stored}, not the requested {config}")
    model = build_from_state_dict(stored, sd, source=str(path))
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
        # the fixed sin-cos table, at the requested precision: weights stored in fp16 and loaded as
        # fp32 would otherwise keep a table rounded to fp16 (diffusers keeps it exact; tested)
        pe = sd.get("pos_embed")
        if pe is None or pe.dtype != torch.float32:  # none stored, or stored rounded: compute it (checked above)
            pe = base_pos_embed(stored)
        model.pos_embed.data = pe.to(device=model.pos_embed.device, dtype=model.pos_embed.dtype)
    return model


def read_state_dict(path: Path, config: PixArtConfig | None = None, state_dict_key: str | None = None):
    """(format, config, official-named state dict) of any checkpoint; ``config`` is needed only for a .pth
    whose config cannot be inferred."""
    fmt = detect_format(path)
    if fmt == "official":
        sd = read_official(path, state_dict_key)
        return fmt, config or infer_config(sd), sd
    if fmt == "native":
        stored, sd, _ = read_native(path)
        return fmt, stored, sd
    raw_config, dsd, buffers = read_diffusers(path)
    y_emb = buffers.get("y_embedder.y_embedding")
    stored = config_from_diffusers(raw_config, y_emb.shape[0] if y_emb is not None else 120)
    return fmt, stored, {**diffusers_to_official(dsd, stored), **buffers}


def build_from_state_dict(config: PixArtConfig, sd: dict, source: str = "state dict", new_modules: tuple = ()) -> PixArt:
    """``PixArt(config)`` with ``sd`` loaded strictly: only the two documented buffers, and keys under the
    explicitly named ``new_modules`` prefixes (kept at their initialisation), may be absent."""
    model = PixArt(config)
    expected = model.state_dict()
    new_modules = tuple(new_modules)
    fresh = [k for k in expected if k not in sd and new_modules and k.startswith(new_modules)]
    sd = {**sd, **{k: expected[k] for k in fresh}}
    missing = [k for k in expected if k not in sd and k not in OPTIONAL_KEYS]
    unexpected = sorted(k for k in sd if k not in expected)
    mismatched = [(k, tuple(sd[k].shape), tuple(expected[k].shape)) for k in sd if k in expected and sd[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(_mismatch_message(f"{source} does not fit PixArt({config})", missing, unexpected, mismatched, sd))
    if "pos_embed" in sd and not pos_embed_matches(sd["pos_embed"], config):
        found = detect_pe_scale(sd["pos_embed"], config)
        raise CheckpointError(
            f"{source}: its pos_embed was computed with lewei_scale={found}, but the config says "
            f"lewei_scale={config.lewei_scale}; use a config with lewei_scale={found}"
        )
    floats = [v.dtype for k, v in sd.items() if v.is_floating_point() and k not in OPTIONAL_KEYS]
    if floats:
        model.to(floats[0])  # keep the stored precision so conversions are bit-exact
    model.has_null_caption = "y_embedder.y_embedding" in sd
    model.load_state_dict({**{k: expected[k] for k in OPTIONAL_KEYS if k not in sd}, **sd}, strict=True)
    return model


# ----------------------------------------------------------------------------------------------
# Saving and converting
# ----------------------------------------------------------------------------------------------


def official_state_dict(model: PixArt) -> dict:
    """The model's state dict as the official format stores it (no null caption if it has none)."""
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if not model.has_null_caption:
        sd.pop("y_embedder.y_embedding")
    return sd


def save_transformer(model: PixArt, dst: str | os.PathLike, fmt: str = "native") -> Path:
    """Write ``model`` to ``dst`` (a folder, or a ``.pth`` file for ``official``); atomic per file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    dst = Path(dst)
    if fmt == "official" and dst.is_dir():
        raise CheckpointError(f"output {dst} is a folder; an official checkpoint is one .pth file")
    if fmt != "official" and dst.exists() and not dst.is_dir():
        raise CheckpointError(f"output {dst} is a file; a {fmt} checkpoint is a folder")
    sd = official_state_dict(model)
    if fmt == "official":
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dst, lambda tmp: torch.save({"state_dict": sd}, tmp))
        return dst
    dst.mkdir(parents=True, exist_ok=True)
    if fmt == "native":
        meta = {"_format": NATIVE_FORMAT_TAG, "_format_version": 1, "_pixart_bench_version": package_version("pixart-bench"),
                "has_null_caption": model.has_null_caption, **model.config.to_dict()}
        atomic_write(dst / NATIVE_WEIGHTS, lambda tmp: save_file(sd, tmp, metadata={"format": "pt"}))
        write_json_atomic(dst / NATIVE_CONFIG, meta)
        return dst
    dsd = official_to_diffusers(sd, model.config)
    buffers = {k: sd[k] for k in OPTIONAL_KEYS if k in sd}
    atomic_write(dst / DIFFUSERS_WEIGHTS[0], lambda tmp: save_file(dsd, tmp, metadata={"format": "pt"}))
    atomic_write(dst / DIFFUSERS_BUFFERS, lambda tmp: save_file(buffers, tmp, metadata={"format": "pt"}))
    config = config_to_diffusers(model.config)
    write_json_atomic(dst / "config.json", config)
    return dst


def convert(src: str | os.PathLike, dst: str | os.PathLike, to: str, config=None) -> PixArt:
    """Read any format, validate it against the model, write ``to``; returns the loaded model."""
    model = load_transformer(src, config)
    save_transformer(model, dst, to)
    return model
