"""Parameter table for the adaLN ablation: PixArt-XL/2 (adaLN-single), per-block adaLN, DiT-XL/2.

Counts come from the real modules built on the ``meta`` device (shapes only, no memory):
our ``PixArt`` for the PixArt rows and diffusers' ``DiTTransformer2DModel`` for DiT-XL/2.
diffusers keeps a copy of DiT's time and class embedders in every block where the official DiT
shares one; the table counts them once (as ``facebookresearch/DiT`` does), so the DiT total is
the published 674,834,720. Buffers (``pos_embed``, ``y_embedding``) are not parameters.

The paper quotes 833M for the per-block adaLN model. Our per-block variant drops the unused
global ``t_block`` and the per-block tables: 825,840,032. Keeping the dead ``t_block`` would give
833,809,568, the closest reading of the paper's figure (see docs/checkpoints.md).
"""

from __future__ import annotations

import re
from collections import Counter

import torch

from pixart.model import PixArt, PixArtConfig

_PIXART_GROUPS = [  # (regex on the parameter name, group), first match wins
    (r"x_embedder\.", "patch embedding"),
    (r"t_embedder\.", "time embedder"),
    (r"(csize|ar)_embedder\.", "micro-conditions (size, aspect ratio)"),
    (r"t_block\.", "adaLN-single global MLP (t_block)"),
    (r"y_embedder\.", "caption projection"),
    (r"blocks\.\d+\.attn\.", "self-attention"),
    (r"blocks\.\d+\.cross_attn\.", "cross-attention"),
    (r"blocks\.\d+\.mlp\.", "MLP"),
    (r"blocks\.\d+\.scale_shift_table", "per-block embeddings E(i)"),
    (r"blocks\.\d+\.adaLN_modulation\.", "per-block adaLN MLPs"),
    (r"final_layer\.", "final layer"),
]
_DIT_GROUPS = [
    (r"pos_embed\.proj\.", "patch embedding"),
    (r"transformer_blocks\.0\.norm1\.emb\.timestep_embedder\.", "time embedder"),
    (r"transformer_blocks\.0\.norm1\.emb\.class_embedder\.", "class embedding"),
    (r"transformer_blocks\.\d+\.norm1\.emb\.", None),  # per-block copies of the shared embedders
    (r"transformer_blocks\.\d+\.attn1\.", "self-attention"),
    (r"transformer_blocks\.\d+\.ff\.", "MLP"),
    (r"transformer_blocks\.\d+\.norm1\.linear\.", "per-block adaLN MLPs"),
    (r"proj_out_\d\.", "final layer"),
]


def _group(named_params, groups) -> dict[str, int]:
    counts: Counter = Counter()
    for name, p in named_params:
        for pattern, group in groups:
            if re.match(pattern, name):
                if group is not None:
                    counts[group] += p.numel()
                break
        else:
            raise KeyError(f"parameter {name} falls in no group")
    return dict(counts)


def pixart_breakdown(config: PixArtConfig) -> dict[str, int]:
    with torch.device("meta"):
        model = PixArt(config)
    return _group(model.named_parameters(), _PIXART_GROUPS)


def dit_breakdown(depth=28, hidden=1152, heads=16, input_size=32, num_classes=1000) -> dict[str, int]:
    from diffusers import DiTTransformer2DModel

    with torch.device("meta"):
        dit = DiTTransformer2DModel(
            num_attention_heads=heads, attention_head_dim=hidden // heads, in_channels=4, out_channels=8,
            num_layers=depth, sample_size=input_size, patch_size=2, num_embeds_ada_norm=num_classes,
        )
    return _group(dit.named_parameters(), _DIT_GROUPS)


def parameter_table() -> list[dict]:
    """Rows {model, total, breakdown} for the ablation: adaLN-single, per-block adaLN, MS, DiT-XL/2."""
    base = PixArtConfig.preset("XL-2-256")
    rows = [
        ("PixArt-XL/2 (adaLN-single)", "single", pixart_breakdown(base)),
        ("PixArt-XL/2 (per-block adaLN)", "per-block", pixart_breakdown(base.replace(adaln="block"))),
        ("PixArt-XL/2-1024-MS (adaLN-single)", "1024-MS", pixart_breakdown(PixArtConfig.preset("XL-2-1024-MS"))),
        ("DiT-XL/2 (class-conditional)", "DiT-XL/2", dit_breakdown(base.depth, base.hidden_size, base.num_heads, base.input_size)),
    ]
    return [{"model": name, "short": short, "total": sum(b.values()), "breakdown": b} for name, short, b in rows]
