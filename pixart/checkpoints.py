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

Official ↔ diffusers key map (the one diffusers' ``scripts/convert_pixart_alpha_to_diffusers.py``
applies, derived independently from the two models' parameter names): fused
``attn.qkv`` ↔ ``attn1.to_{q,k,v}``, fused ``cross_attn.kv_linear`` ↔ ``attn2.to_{k,v}``, and
renames. Splits and concatenations copy values, so round trips are bit-exact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from pixart.errors import InputError, read_json, read_safetensors
from pixart.files import atomic_write, package_version, write_json_atomic
from pixart.model import PRESETS, PixArt, PixArtConfig, base_pos_embed

FORMATS = ("official", "diffusers", "native")
OPTIONAL_KEYS = ("pos_embed", "y_embedder.y_embedding")
NATIVE_CONFIG = "config.json"
NATIVE_WEIGHTS = "model.safetensors"
NATIVE_FORMAT_TAG = "pixart-bench-native"
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
DIFFUSERS_INDEX = "diffusion_pytorch_model.safetensors.index.json"
DIFFUSERS_BUFFERS = "pixart_buffers.safetensors"
PE_SCALE_CANDIDATES = (0.25, 0.5, 1.0, 2.0, 4.0)
DIFFUSERS_HEAD_DIM = 72  # every released PixArt-α model; used only when inferring a .pth's config
# the sizes a diffusers transformer config must state (diffusers' own defaults are XL-2's: a config
# missing one would silently describe another model)
DIFFUSERS_REQUIRED = ("num_attention_heads", "attention_head_dim", "num_layers", "in_channels", "sample_size")


class CheckpointError(InputError, ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


# ----------------------------------------------------------------------------------------------
# Official ↔ diffusers key map
# ----------------------------------------------------------------------------------------------

_BLOCK_MAP = [  # (official suffix, diffusers suffixes; several = split along dim 0 in this order)
    ("scale_shift_table", ["scale_shift_table"]),
    ("attn.qkv.{p}", ["attn1.to_q.{p}", "attn1.to_k.{p}", "attn1.to_v.{p}"]),
    ("attn.proj.{p}", ["attn1.to_out.0.{p}"]),
    ("cross_attn.q_linear.{p}", ["attn2.to_q.{p}"]),
    ("cross_attn.kv_linear.{p}", ["attn2.to_k.{p}", "attn2.to_v.{p}"]),
    ("cross_attn.proj.{p}", ["attn2.to_out.0.{p}"]),
    ("mlp.fc1.{p}", ["ff.net.0.proj.{p}"]),
    ("mlp.fc2.{p}", ["ff.net.2.{p}"]),
]
_GLOBAL_MAP = [
    ("x_embedder.proj.{p}", "pos_embed.proj.{p}"),
    ("t_embedder.mlp.0.{p}", "adaln_single.emb.timestep_embedder.linear_1.{p}"),
    ("t_embedder.mlp.2.{p}", "adaln_single.emb.timestep_embedder.linear_2.{p}"),
    ("t_block.1.{p}", "adaln_single.linear.{p}"),
    ("y_embedder.y_proj.fc1.{p}", "caption_projection.linear_1.{p}"),
    ("y_embedder.y_proj.fc2.{p}", "caption_projection.linear_2.{p}"),
    ("final_layer.linear.{p}", "proj_out.{p}"),
    ("final_layer.scale_shift_table", "scale_shift_table"),
]
_MICRO_MAP = [
    ("csize_embedder.mlp.0.{p}", "adaln_single.emb.resolution_embedder.linear_1.{p}"),
    ("csize_embedder.mlp.2.{p}", "adaln_single.emb.resolution_embedder.linear_2.{p}"),
    ("ar_embedder.mlp.0.{p}", "adaln_single.emb.aspect_ratio_embedder.linear_1.{p}"),
    ("ar_embedder.mlp.2.{p}", "adaln_single.emb.aspect_ratio_embedder.linear_2.{p}"),
]


def key_map(config: PixArtConfig) -> list[tuple[str, list[str]]]:
    """Every official parameter key with the diffusers key(s) it becomes."""
    if config.adaln != "single":
        raise CheckpointError("the per-block adaLN variant (adaln='block') has no diffusers equivalent")

    def expand(pattern):
        return [pattern.format(p=p) for p in ("weight", "bias")] if "{p}" in pattern else [pattern]

    pairs = []
    for off, dif in _GLOBAL_MAP + (_MICRO_MAP if config.micro_conditions else []):
        pairs += [(o, [d]) for o, d in zip(expand(off), expand(dif))]
    for i in range(config.depth):
        for off, difs in _BLOCK_MAP:
            for j, o in enumerate(expand(off)):
                pairs.append((f"blocks.{i}.{o}", [f"transformer_blocks.{i}.{expand(d)[j]}" for d in difs]))
    return pairs


def official_to_diffusers(sd: dict, config: PixArtConfig) -> dict:
    """Official-named parameters → diffusers names (buffers are not part of diffusers' state dict)."""
    params = {k: v for k, v in sd.items() if k not in OPTIONAL_KEYS}
    pairs = key_map(config)
    _require_exact_keys(params, [o for o, _ in pairs], "official")
    out = {}
    for off, difs in pairs:
        parts = params[off].chunk(len(difs), dim=0) if len(difs) > 1 else [params[off]]
        out.update({d: p.clone() for d, p in zip(difs, parts)})
    return out


def diffusers_to_official(sd: dict, config: PixArtConfig) -> dict:
    pairs = key_map(config)
    _require_exact_keys(sd, [d for _, difs in pairs for d in difs], "diffusers")
    return {off: torch.cat([sd[d] for d in difs], dim=0) if len(difs) > 1 else sd[difs[0]] for off, difs in pairs}


def _require_exact_keys(sd: dict, expected: list[str], what: str):
    missing = [k for k in expected if k not in sd]
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise CheckpointError(_mismatch_message(f"the {what} state dict does not fit this config", missing, unexpected, []))


# ----------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------


def config_to_diffusers(config: PixArtConfig) -> dict:
    if config.adaln != "single":
        raise CheckpointError("the per-block adaLN variant (adaln='block') has no diffusers equivalent")
    if config.mlp_ratio != 4.0:
        raise CheckpointError(f"diffusers' PixArt feed-forward is 4x wide; this model has mlp_ratio={config.mlp_ratio}")
    return {
        "_class_name": "PixArtTransformer2DModel",
        "_diffusers_version": package_version("diffusers"),
        "num_attention_heads": config.num_heads,
        "attention_head_dim": config.head_dim,
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "num_layers": config.depth,
        "dropout": 0.0,
        "norm_num_groups": 32,
        "cross_attention_dim": config.hidden_size,
        "attention_bias": True,
        "sample_size": config.input_size,
        "patch_size": config.patch_size,
        "activation_fn": "gelu-approximate",
        "num_embeds_ada_norm": 1000,
        "upcast_attention": config.fp32_attention,
        "norm_type": "ada_norm_single",
        "norm_elementwise_affine": False,
        "norm_eps": 1e-6,
        "interpolation_scale": config.lewei_scale,  # always explicit: diffusers' default guesses from sample_size
        "use_additional_conditions": config.micro_conditions,
        "caption_channels": config.caption_channels,
        "attention_type": "default",
    }


def config_from_diffusers(d: dict, model_max_length: int = 120) -> PixArtConfig:
    """A ``PixArtTransformer2DModel`` config → ``PixArtConfig``, resolving diffusers' implicit defaults."""
    try:
        return _config_from_diffusers(d, model_max_length)
    except (TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"diffusers config has a value of the wrong type or size: {e}") from None


def _config_from_diffusers(d: dict, model_max_length: int) -> PixArtConfig:
    name = d.get("_class_name")
    if name not in ("PixArtTransformer2DModel", "Transformer2DModel"):
        raise CheckpointError(f"config.json describes a {name!r}, not a PixArtTransformer2DModel")
    checks = {
        "norm_type": "ada_norm_single",
        "activation_fn": "gelu-approximate",
        "norm_elementwise_affine": False,
        "attention_bias": True,
        "attention_type": "default",
    }
    for k, want in checks.items():
        if d.get(k, want) != want:
            raise CheckpointError(f"unsupported diffusers config: {k}={d[k]!r} (PixArt-α uses {want!r})")
    if abs(float(d.get("norm_eps", 1e-6)) - 1e-6) > 1e-12:
        raise CheckpointError(f"unsupported diffusers config: norm_eps={d['norm_eps']} (PixArt-α uses 1e-6)")
    if d.get("caption_channels") is None:
        raise CheckpointError("diffusers config has no caption_channels: not a text-conditioned PixArt transformer")
    missing = [k for k in DIFFUSERS_REQUIRED if d.get(k) is None]
    if missing:
        raise CheckpointError(f"diffusers config lacks {', '.join(missing)}: a PixArtTransformer2DModel config "
                              f"names {', '.join(DIFFUSERS_REQUIRED)} (save_pretrained writes them all)")
    heads, head_dim = int(d.get("num_attention_heads", 16)), int(d.get("attention_head_dim", 72))
    hidden = heads * head_dim
    if int(d.get("cross_attention_dim") or hidden) != hidden:
        raise CheckpointError(f"cross_attention_dim {d['cross_attention_dim']} != inner dim {hidden}")
    sample_size = int(d.get("sample_size", 128))
    in_ch = int(d.get("in_channels", 4))
    out_ch = int(d.get("out_channels") or in_ch)
    if out_ch not in (in_ch, 2 * in_ch):
        raise CheckpointError(f"out_channels {out_ch} must be in_channels ({in_ch}) or twice it")
    micro = d.get("use_additional_conditions")
    scale = d.get("interpolation_scale")
    return PixArtConfig(
        input_size=sample_size,
        patch_size=int(d.get("patch_size", 2)),
        in_channels=in_ch,
        hidden_size=hidden,
        depth=int(d.get("num_layers", 28)),
        num_heads=heads,
        caption_channels=int(d["caption_channels"]),
        model_max_length=model_max_length,
        pred_sigma=out_ch == 2 * in_ch,
        # diffusers' implicit defaults, made explicit
        lewei_scale=float(scale) if scale is not None else float(max(sample_size // 64, 1)),
        micro_conditions=bool(micro) if micro is not None else sample_size == 128,
        fp32_attention=bool(d.get("upcast_attention", False)),
    )


def infer_config(sd: dict) -> PixArtConfig:
    """Read a config off an official-named state dict. ``num_heads`` assumes head_dim 72 (all releases)."""
    try:
        hidden, in_ch, p, _ = sd["x_embedder.proj.weight"].shape
        cap = sd["y_embedder.y_proj.fc1.weight"].shape[1]
        out = sd["final_layer.linear.weight"].shape[0] // (p * p)
        mlp_hidden = sd["blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(
            f"cannot infer a PixArt config: key {e.args[0]!r} is missing{_hint(sd)}; pass a config (--config)"
        ) from None
    if hidden % DIFFUSERS_HEAD_DIM:
        raise CheckpointError(
            f"cannot infer num_heads for hidden_size {hidden} (released models use head_dim 72); pass a config (--config)"
        )
    if "pos_embed" not in sd:
        raise CheckpointError("cannot infer input_size: the checkpoint has no pos_embed; pass a config (--config)")
    n_tokens = sd["pos_embed"].shape[1]
    base = round(n_tokens**0.5)
    if base * base != n_tokens:
        raise CheckpointError(f"pos_embed has {n_tokens} tokens, not a square grid; pass a config (--config)")
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    y_emb = sd.get("y_embedder.y_embedding")
    config = PixArtConfig(
        input_size=base * p,
        patch_size=p,
        in_channels=in_ch,
        hidden_size=hidden,
        depth=depth,
        num_heads=hidden // DIFFUSERS_HEAD_DIM,
        mlp_ratio=mlp_hidden / hidden,
        caption_channels=cap,
        model_max_length=y_emb.shape[0] if y_emb is not None else 120,
        pred_sigma=out == 2 * in_ch,
        micro_conditions="csize_embedder.mlp.0.weight" in sd,
        adaln="single" if "t_block.1.weight" in sd else "block",
    )
    return config.replace(lewei_scale=detect_pe_scale(sd["pos_embed"], config))


def detect_pe_scale(pos_embed: torch.Tensor, config: PixArtConfig) -> float:
    """The lewei_scale a stored ``pos_embed`` was computed with (tries the config's, then common ones)."""
    for scale in (config.lewei_scale, *PE_SCALE_CANDIDATES):
        if pos_embed_matches(pos_embed, config.replace(lewei_scale=scale)):
            return scale
    raise CheckpointError(
        f"the stored pos_embed {list(pos_embed.shape)} matches no sin-cos embedding with lewei_scale in "
        f"{sorted(set(PE_SCALE_CANDIDATES))} for input_size {config.input_size}, patch {config.patch_size}"
    )


def pos_embed_matches(pos_embed: torch.Tensor, config: PixArtConfig) -> bool:
    b = config.base_size
    if tuple(pos_embed.shape) != (1, b * b, config.hidden_size):
        return False
    ref = base_pos_embed(config)
    tol = 1e-5 if pos_embed.dtype == torch.float32 else 2e-3
    return torch.allclose(pos_embed.double(), ref, atol=tol, rtol=0)


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


def _mismatch_message(head, missing, unexpected, mismatched, sd=None, limit=12) -> str:
    lines = [head + ":"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected)):
        if items:
            shown = ", ".join(items[:limit]) + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
            lines.append(f"  {len(items)} {title}: {shown}")
    if mismatched:
        lines.append(f"  {len(mismatched)} keys with mismatched shapes:")
        lines += [f"    {k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in mismatched[:limit]]
    if sd is not None:
        lines.append(_hint(sd).strip())
    return "\n".join(line for line in lines if line)


def _hint(sd: dict) -> str:
    keys = set(sd)
    # DiT: a class-embedding table, or per-block adaLN without PixArt's caption projection
    dit_like = any("adaLN_modulation" in k for k in keys) and "y_embedder.y_proj.fc1.weight" not in keys
    if "y_embedder.embedding_table.weight" in keys or dit_like:
        return "\n  this looks like a DiT class-conditional checkpoint: use `pixart-bench convert SRC DST --from dit`"
    if any(k.startswith("transformer_blocks.") for k in keys):
        return "\n  this looks like a diffusers state dict: pass the diffusers folder (with its config.json)"
    return ""


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
