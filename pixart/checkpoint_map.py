"""The official ↔ diffusers map of PixArt transformer checkpoints: parameter names, configs, and a config
inferred from a state dict (``pixart.checkpoints`` reads, writes and converts with it).

The key map is the one diffusers' ``scripts/convert_pixart_alpha_to_diffusers.py`` applies, derived
independently from the two models' parameter names: fused ``attn.qkv`` ↔ ``attn1.to_{q,k,v}``, fused
``cross_attn.kv_linear`` ↔ ``attn2.to_{k,v}``, and renames. Splits and concatenations copy values, so
round trips are bit-exact. ``pos_embed_matches`` / ``detect_pe_scale`` check or read the position
embedding's scale off a stored ``pos_embed``.
"""

from __future__ import annotations

import re

import torch

from pixart.errors import InputError
from pixart.files import package_version
from pixart.model import PixArtConfig, base_pos_embed

OPTIONAL_KEYS = ("pos_embed", "y_embedder.y_embedding")
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


# ----------------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------------

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
