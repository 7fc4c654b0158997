"""Initialise PixArt from a class-conditional DiT with the paper's adaLN-single re-parameterisation.

DiT block i modulates with its own MLP of the conditioning ``c(t) = TE(t) + class_emb``:
``S_i(t) = W_i · SiLU(c(t)) + b_i`` ([6, D]: shift/scale/gate for attention and MLP), and its
final layer with ``F(t) = W_f · SiLU(c(t)) + b_f`` ([2, D]). PixArt computes one global
``t0 = t_block(t)`` and adds a per-block table: ``S_i = t0 + E(i)``; its final layer uses
``table + t``. The paper sets every E(i) so that PixArt reproduces DiT *without the class* at a
chosen t* (500). We read "without c" as the null (CFG) class, as the issue asks, and choose:

1. Shared layers copied: patch embed, self-attention, MLPs, final linear (same names in both
   official layouts; diffusers' split q/k/v are fused).
2. ``t_embedder`` ← DiT's timestep embedder, with the null-class vector folded into its output
   bias, so PixArt's ``t`` equals DiT's conditioning ``c(t)`` for the null class at *every* t.
3. ``t_block`` ← block 0's adaLN MLP (so E(0) = 0 for an official DiT, exactly, at every t).
4. ``E(i) = S_i(t*) − t_block(t(t*))`` and ``final table = F(t*) − t(t*)``, computed in float64.
5. Cross-attention output projections stay zero-initialised (``PixArt.initialize_weights``), so
   text cannot change the output yet: PixArt(x, t*, any text) == DiT(x, t*, null class).

At other t the two models differ only through the time path (the per-block modulations), since
every other weight is shared. The caption projection and the null caption are freshly
initialised (seeded). The positional embedding uses ``lewei_scale=1``, which is DiT's.

Deliberate difference: diffusers' ``DiTTransformer2DModel`` embeds time with
``downscale_freq_shift=1`` (the official DiT and PixArt use 0) and keeps a copy of the time and
class embedders in every block. We evaluate the source's own conditioning (through diffusers'
modules) at t*, so equality at t* holds for both sources; away from t* the diffusers-sourced
model also differs in block 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F

from pixart.checkpoints import CheckpointError, load_torch_file, pos_embed_matches
from pixart.errors import read_json, reading
from pixart.model import PixArt, PixArtConfig, TimestepEmbedder

DIT_HEADS = {1152: 16, 1024: 16, 768: 12, 384: 6}  # DiT-XL / L / B / S


class _DiTSource:
    """A DiT checkpoint reduced to what the re-parameterisation needs (official PixArt key names)."""

    shared: dict  # copied tensors, official names
    t_embedder: dict  # t_embedder.mlp.{0,2}.{weight,bias} of block 0's embedder
    null_class: torch.Tensor  # [D] null-class embedding of block 0
    block_adaln: list  # [(W [6D, D], b [6D])] per block
    final_adaln: tuple  # (W [2D, D], b [2D])
    config: dict  # PixArtConfig fields read off the source
    dtype: torch.dtype  # stored precision, kept by the converted model

    def conditioning(self, i: int, t: torch.Tensor) -> torch.Tensor:
        """Block i's conditioning c_i(t) [B, D] for the null class, in float64."""
        raise NotImplementedError


class _OfficialDiT(_DiTSource):
    """``facebookresearch/DiT`` ``.pt``: a plain state dict, or a training checkpoint's ``ema``."""

    def __init__(self, path: Path, num_heads: int | None):
        obj = load_torch_file(path)
        if not isinstance(obj, dict):
            raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a DiT state dict")
        sd = dict(obj.get("ema", obj.get("model", obj)))
        try:
            d, in_ch, p, _ = sd["x_embedder.proj.weight"].shape
            table = sd.pop("y_embedder.embedding_table.weight")
        except KeyError as e:
            raise CheckpointError(f"{path} is not a DiT checkpoint: key {e.args[0]!r} is missing") from None
        depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
        pos_embed = sd.pop("pos_embed", None)
        self.null_class = table[-1]  # row num_classes: the CFG null class
        self.t_embedder = {k: sd.pop(k) for k in list(sd) if k.startswith("t_embedder.")}
        self.block_adaln = [
            (sd.pop(f"blocks.{i}.adaLN_modulation.1.weight"), sd.pop(f"blocks.{i}.adaLN_modulation.1.bias"))
            for i in range(depth)
        ]
        self.final_adaln = (sd.pop("final_layer.adaLN_modulation.1.weight"), sd.pop("final_layer.adaLN_modulation.1.bias"))
        self.shared = sd
        self.dtype = sd["x_embedder.proj.weight"].dtype
        out = sd["final_layer.linear.weight"].shape[0] // (p * p)
        n_tokens = pos_embed.shape[1] if pos_embed is not None else None
        if n_tokens is None:
            raise CheckpointError(f"{path} has no pos_embed: cannot tell the DiT's input size")
        self.config = dict(
            input_size=round(n_tokens**0.5) * p, patch_size=p, in_channels=in_ch, hidden_size=d, depth=depth,
            num_heads=num_heads or DIT_HEADS.get(d, d // 64), mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / d,
            pred_sigma=out == 2 * in_ch,
        )
        self.pos_embed = pos_embed
        self._te = TimestepEmbedder(d).double()
        self._te.load_state_dict({k.removeprefix("t_embedder."): v.double() for k, v in self.t_embedder.items()})

    def conditioning(self, i, t):
        with torch.no_grad():
            return self._te(t) + self.null_class.double()


class _DiffusersDiT(_DiTSource):
    """A diffusers ``DiTTransformer2DModel`` folder (or a DiT pipeline folder with ``transformer/``)."""

    def __init__(self, folder: Path):
        from diffusers import DiTTransformer2DModel

        if not (folder / "config.json").is_file() and (folder / "transformer" / "config.json").is_file():
            folder = folder / "transformer"
        with reading(folder, CheckpointError, "DiT transformer"):
            dit = DiTTransformer2DModel.from_pretrained(folder)
        dit = dit.eval()
        self.dtype = dit.dtype
        dit = dit.double()
        c = dit.config
        self.dit = dit
        self.null_label = c.num_embeds_ada_norm
        blocks = dit.transformer_blocks
        sd = {"x_embedder.proj.weight": dit.pos_embed.proj.weight, "x_embedder.proj.bias": dit.pos_embed.proj.bias}
        for i, blk in enumerate(blocks):
            a = blk.attn1
            for pn in ("weight", "bias"):
                sd[f"blocks.{i}.attn.qkv.{pn}"] = torch.cat([getattr(a.to_q, pn), getattr(a.to_k, pn), getattr(a.to_v, pn)])
                sd[f"blocks.{i}.attn.proj.{pn}"] = getattr(a.to_out[0], pn)
                sd[f"blocks.{i}.mlp.fc1.{pn}"] = getattr(blk.ff.net[0].proj, pn)
                sd[f"blocks.{i}.mlp.fc2.{pn}"] = getattr(blk.ff.net[2], pn)
        sd["final_layer.linear.weight"], sd["final_layer.linear.bias"] = dit.proj_out_2.weight, dit.proj_out_2.bias
        self.shared = {k: v.detach() for k, v in sd.items()}
        emb = blocks[0].norm1.emb
        te = emb.timestep_embedder
        self.t_embedder = {
            "t_embedder.mlp.0.weight": te.linear_1.weight, "t_embedder.mlp.0.bias": te.linear_1.bias,
            "t_embedder.mlp.2.weight": te.linear_2.weight, "t_embedder.mlp.2.bias": te.linear_2.bias,
        }
        self.t_embedder = {k: v.detach() for k, v in self.t_embedder.items()}
        self.null_class = emb.class_embedder.embedding_table.weight[self.null_label].detach()
        self.block_adaln = [(b.norm1.linear.weight.detach(), b.norm1.linear.bias.detach()) for b in blocks]
        self.final_adaln = (dit.proj_out_1.weight.detach(), dit.proj_out_1.bias.detach())
        if abs(blocks[0].norm1.norm.eps - 1e-6) > 1e-12:
            raise CheckpointError(
                f"this DiT's block LayerNorm eps is {blocks[0].norm1.norm.eps}; PixArt (and the official DiT) use 1e-6: "
                "set norm_eps=1e-6 in its config.json if it was converted from the official DiT"
            )
        self.pos_embed = None
        self.config = dict(
            input_size=c.sample_size, patch_size=c.patch_size, in_channels=c.in_channels, hidden_size=dit.inner_dim,
            depth=c.num_layers, num_heads=c.num_attention_heads, mlp_ratio=blocks[0].ff.net[2].in_features / dit.inner_dim,
            pred_sigma=dit.out_channels == 2 * c.in_channels,
        )

    def conditioning(self, i, t):
        labels = torch.full_like(t, self.null_label, dtype=torch.long)
        with torch.no_grad():
            return self.dit.transformer_blocks[i].norm1.emb(t, labels, hidden_dtype=torch.float64)


def read_dit(path: str | Path, num_heads: int | None = None) -> _DiTSource:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"DiT checkpoint not found: {path}")
    if path.is_file():
        return _OfficialDiT(path, num_heads)
    cfg_file = path / "config.json" if (path / "config.json").is_file() else path / "transformer" / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"no DiT config.json in {path} (looked for config.json and transformer/config.json)")
    name = read_json(cfg_file, CheckpointError, "DiT config").get("_class_name")
    if name not in ("DiTTransformer2DModel", "Transformer2DModel"):
        raise CheckpointError(f"{cfg_file} describes a {name!r}, not a DiTTransformer2DModel")
    return _DiffusersDiT(cfg_file.parent)


def pixart_from_dit(
    src: str | Path,
    *,
    t_star: int = 500,
    caption_channels: int = 4096,
    model_max_length: int = 120,
    num_heads: int | None = None,
    seed: int = 0,
) -> PixArt:
    """A text-conditioned PixArt (adaLN-single) that equals the DiT's null-class output at ``t_star``."""
    dit = read_dit(src, num_heads)
    config = PixArtConfig(caption_channels=caption_channels, model_max_length=model_max_length, lewei_scale=1.0, **dit.config)
    if dit.pos_embed is not None and not pos_embed_matches(dit.pos_embed, config):
        raise CheckpointError(f"{src}: the DiT's pos_embed is not the sin-cos embedding PixArt computes for {config}")
    torch.manual_seed(seed)  # fresh caption projection and null caption
    model = PixArt(config).double()
    sd = model.state_dict()
    for k, v in {**dit.shared, **dit.t_embedder}.items():
        if k not in sd or sd[k].shape != v.shape:
            raise CheckpointError(f"DiT tensor {k} {list(v.shape)} has no place in PixArt ({list(sd[k].shape) if k in sd else 'no such key'})")
        sd[k] = v.double()
    d = config.hidden_size
    # (2) fold the null class into the time embedding: PixArt's t == DiT's c for the null class.
    sd["t_embedder.mlp.2.bias"] = sd["t_embedder.mlp.2.bias"] + dit.null_class.double()
    # (3) global adaLN-single MLP := block 0's adaLN MLP.
    w0, b0 = (x.double() for x in dit.block_adaln[0])
    sd["t_block.1.weight"], sd["t_block.1.bias"] = w0, b0
    model.load_state_dict(sd, strict=True)
    # (4) per-block embeddings from the modulations at t*.
    ts = torch.tensor([float(t_star)], dtype=torch.float64)
    with torch.no_grad():
        t_pix = model.t_embedder(ts)[0]  # [D]
        global_mod = F.linear(F.silu(t_pix), w0, b0)  # [6D]
        for i, (w, b) in enumerate(dit.block_adaln):
            s_i = F.linear(F.silu(dit.conditioning(i, ts)[0]), w.double(), b.double())
            model.blocks[i].scale_shift_table.copy_((s_i - global_mod).view(6, d))
        wf, bf = (x.double() for x in dit.final_adaln)
        f = F.linear(F.silu(dit.conditioning(0, ts)[0]), wf, bf)
        model.final_layer.scale_shift_table.copy_(f.view(2, d) - t_pix[None])
    return model.to(dit.dtype)
