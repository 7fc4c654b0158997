"""The PixArt-α transformer, in one file.

Read top to bottom, in the style of facebookresearch/DiT ``models.py``:

    x [B, C, H, W] latents ──PatchEmbed──▶ tokens [B, N, D] (+ fixed 2D sin-cos PE, N = H/p · W/p)
    timestep [B] ──TimestepEmbedder──▶ t [B, D]   (+ size / aspect-ratio embeddings for the MS model)
    t ──t_block (SiLU, Linear D→6D), once──▶ t0 [B, 6D]        (adaLN-single)
    y [B, L, C_cap] ──CaptionEmbedder (Mlp C_cap→D→D)──▶ [B, L, D]
    for each block i:
        shift/scale/gate (msa, mlp) = scale_shift_table_i [6, D] + t0      (per-block embedding E(i))
        x = x + gate_msa · SelfAttn(LN(x)·(1+scale_msa) + shift_msa)
        x = x + CrossAttn(x, y, mask)                                      (no norm, no gate; proj zero-init)
        x = x + gate_mlp · Mlp(LN(x)·(1+scale_mlp) + shift_mlp)
    FinalLayer: shift/scale = table [2, D] + t;  Linear D → p·p·C_out;  unpatchify → [B, C_out, H, W]

Parameter and buffer names and shapes are the official checkpoint's (``PixArt-alpha/PixArt-alpha``,
``diffusion/model/nets/PixArt*.py``) so an official ``.pth`` loads with ``strict=True``; see
``pixart/checkpoints.py`` for the explicit handling of the two buffers ``pos_embed`` and
``y_embedder.y_embedding``.

``adaln="block"`` is the paper's ablation baseline: every block owns a DiT-style
``adaLN_modulation`` (SiLU, Linear D→6D) fed by ``t``; there is no ``t_block`` and no
``scale_shift_table`` in the blocks.

Deliberate differences from the official code (all behaviour-preserving for its checkpoints):
- attention through ``F.scaled_dot_product_attention`` (xformers is never imported); the text
  padding mask is a per-sample boolean mask instead of the official "concatenate all captions
  into one sequence + block-diagonal mask", which computes the same thing;
- a caption whose mask is all zeros attends to all its tokens (as diffusers' -10000 bias does)
  instead of producing NaN;
- the positional embedding is recomputed for any latent size (as ``PixArtMS`` and diffusers do),
  so the single-scale model also accepts non-square latents;
- no device-specific calls (the model follows its parameters' device); caption dropout lives in the trainer, not in the model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class PixArtConfig:
    """Architecture of a PixArt transformer. ``input_size`` is the latent side at the base resolution."""

    input_size: int = 32  # latent side at the base resolution (image side / 8)
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    caption_channels: int = 4096
    model_max_length: int = 120  # length of the trained null caption y_embedding
    pred_sigma: bool = True  # learned-range variance: out_channels = 2 * in_channels
    lewei_scale: float = 1.0  # PE interpolation scale (diffusers: interpolation_scale)
    micro_conditions: bool = False  # size + aspect-ratio embedders (PixArtMS, 1024-MS checkpoint)
    adaln: str = "single"  # "single" (adaLN-single) or "block" (per-block adaLN, ablation)
    fp32_attention: bool = False  # compute attention in float32 under bf16/fp16

    def __post_init__(self):
        if self.adaln not in ("single", "block"):
            raise ValueError(f"adaln must be 'single' or 'block', got {self.adaln!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} is not divisible by patch_size {self.patch_size}")
        if self.micro_conditions and self.hidden_size % 3:
            raise ValueError("micro_conditions need hidden_size divisible by 3 (two sizes + one aspect ratio)")

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.pred_sigma else self.in_channels

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def base_size(self) -> int:
        """Token-grid side at the base resolution; the PE of any grid is expressed relative to it."""
        return self.input_size // self.patch_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PixArtConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown PixArtConfig fields {unknown}; known fields are {sorted(known)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> "PixArtConfig":
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)

    def replace(self, **changes) -> "PixArtConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, PixArtConfig] = {
    # The released checkpoints. 256 px: the official configs leave lewei_scale at its default 1.0
    # (diffusers' converter map says 0.5); loading a .pth checks the stored pos_embed either way.
    "XL-2-256": PixArtConfig(input_size=32, lewei_scale=1.0),
    "XL-2-512": PixArtConfig(input_size=64, lewei_scale=1.0),
    "XL-2-1024-MS": PixArtConfig(input_size=128, lewei_scale=2.0, micro_conditions=True),
    # Smaller members of the family (DiT naming), for benchmarks and CPU training.
    "B-2-256": PixArtConfig(input_size=32, hidden_size=768, depth=12, num_heads=12),
    "S-2-256": PixArtConfig(input_size=32, hidden_size=384, depth=12, num_heads=6),
    # Tiny random models for tests.
    "tiny": PixArtConfig(input_size=8, hidden_size=48, depth=2, num_heads=4, caption_channels=16, model_max_length=8),
    "tiny-MS": PixArtConfig(
        input_size=8, hidden_size=48, depth=2, num_heads=4, caption_channels=16, model_max_length=8,
        micro_conditions=True,
    ),
}


# --------------------------------------------------------------------------------------------
# Fixed 2D sin-cos positional embedding
# --------------------------------------------------------------------------------------------


def get_2d_sincos_pos_embed(embed_dim: int, grid_hw: tuple[int, int], base_size: int, lewei_scale: float) -> np.ndarray:
    """[h*w, D] embedding; tokens in row-major (h, w) order, first D/2 dims encode w, last D/2 encode h.

    Positions are ``arange(n) / (n / base_size) / lewei_scale`` per axis, so every axis spans
    [0, base_size / lewei_scale) whatever the grid size. Computed with numpy exactly like the
    official code (float32 grid, float64 frequencies) so the stored ``pos_embed`` buffers match.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim {embed_dim} must be divisible by 4 for a 2D sin-cos embedding")
    h, w = grid_hw
    grid_h = np.arange(h, dtype=np.float32) / np.float32(h / base_size) / np.float32(lewei_scale)
    grid_w = np.arange(w, dtype=np.float32) / np.float32(w / base_size) / np.float32(lewei_scale)
    gh, gw = np.meshgrid(grid_h, grid_w, indexing="ij")  # [h, w] each
    emb_w = _1d_sincos(embed_dim // 2, gw.reshape(-1))
    emb_h = _1d_sincos(embed_dim // 2, gh.reshape(-1))
    return np.concatenate([emb_w, emb_h], axis=1)


def base_pos_embed(c: "PixArtConfig") -> torch.Tensor:
    """[1, base_size², D] float64: the base grid's table, what the ``pos_embed`` buffer holds."""
    return torch.from_numpy(get_2d_sincos_pos_embed(c.hidden_size, (c.base_size, c.base_size), c.base_size,
                                                    c.lewei_scale))[None]


def _1d_sincos(dim: int, pos: np.ndarray) -> np.ndarray:
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # [dim/2]
    out = np.einsum("m,d->md", pos, omega)  # [M, dim/2]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


# --------------------------------------------------------------------------------------------
# Embedders
# --------------------------------------------------------------------------------------------


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class PatchEmbed(nn.Module):
    """[B, C, H, W] → [B, (H/p)(W/p), D] with a p×p stride-p convolution.

    The result is made contiguous: ``flatten(2).transpose(1, 2)`` alone leaves a [B, N, D] view
    with strides (N·D, 1, N), and elementwise ops keep their first operand's layout, so the whole
    residual stream would stay transposed: every residual add strided, every LayerNorm and linear
    input copied first (on a GPU that costs more than the copy made here, once per forward).
    """

    def __init__(self, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2).contiguous()


class TimestepEmbedder(nn.Module):
    """Scalar → 256-d [cos, sin] sinusoid (max period 10000) → Linear → SiLU → Linear."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb  # [B, dim]

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        freq = self.sinusoid(t, self.frequency_embedding_size).to(self.mlp[0].weight.dtype)
        return self.mlp(freq)


class SizeEmbedder(TimestepEmbedder):
    """Micro-condition embedder: each scalar of s [B, k] is embedded alone; outputs are concatenated."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__(hidden_size, frequency_embedding_size)
        self.outdim = hidden_size

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        b, k = s.shape
        emb = super().forward(s.reshape(-1))  # [B*k, outdim]
        return emb.reshape(b, k * self.outdim)


class Mlp(nn.Module):
    """fc1 → GELU(tanh) → fc2 (timm ``Mlp`` naming, as in the official checkpoints)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=True)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, out_features, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CaptionEmbedder(nn.Module):
    """Projects T5 features [B, L, C_cap] → [B, L, D]; holds the trained null caption.

    ``y_embedding`` [model_max_length, C_cap] is a *buffer*, as in the official model: it is saved
    and used for caption dropout / classifier-free guidance, but is never optimised.
    """

    def __init__(self, caption_channels: int, hidden_size: int, model_max_length: int):
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden_size, hidden_size)
        self.register_buffer("y_embedding", torch.randn(model_max_length, caption_channels) / caption_channels**0.5)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.y_proj(y)


def trim_text_padding(y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop trailing text positions that are padding in every caption of the batch.

    The model's output does not change (padding is masked out of cross-attention), but the
    caption projection and the K/V projections no longer run on up to 120 mostly-empty slots.
    Batches holding a caption without any real token are returned unchanged (such a caption
    attends to all its slots, so trimming would change it).
    """
    real = mask.bool()
    if not real.any(dim=1).all():
        return y, mask
    keep = int(real.any(dim=0).nonzero().max()) + 1
    return y[:, :keep], mask[:, :keep]


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def _sdpa(q, k, v, attn_mask, fp32: bool) -> torch.Tensor:
    """q [B, h, N, d], k/v [B, h, M, d] → [B, N, h·d]."""
    dtype = q.dtype
    if fp32:
        q, k, v = q.float(), k.float(), v.float()
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    b, h, n, d = out.shape
    return out.to(dtype).transpose(1, 2).reshape(b, n, h * d)


class Attention(nn.Module):
    """Self-attention with fused qkv (official ``WindowAttention``, which never windows)."""

    def __init__(self, hidden_size: int, num_heads: int, fp32: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.fp32 = fp32
        self.qkv = nn.Linear(hidden_size, hidden_size * 3, bias=True)
        self.proj = nn.Linear(hidden_size, hidden_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        return self.proj(_sdpa(qkv[0], qkv[1], qkv[2], None, self.fp32))


class CrossAttention(nn.Module):
    """Image tokens attend to caption tokens; K and V fused in ``kv_linear``; padding masked."""

    def __init__(self, hidden_size: int, num_heads: int, fp32: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.fp32 = fp32
        self.q_linear = nn.Linear(hidden_size, hidden_size, bias=True)
        self.kv_linear = nn.Linear(hidden_size, hidden_size * 2, bias=True)
        self.proj = nn.Linear(hidden_size, hidden_size, bias=True)

    def forward(self, x: torch.Tensor, y: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        m = y.shape[1]
        h = self.num_heads
        q = self.q_linear(x).reshape(b, n, h, d // h).transpose(1, 2)
        kv = self.kv_linear(y).reshape(b, m, 2, h, d // h).permute(2, 0, 3, 1, 4)
        return self.proj(_sdpa(q, kv[0], kv[1], attn_mask, self.fp32))


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------


class PixArtBlock(nn.Module):
    """Self-attention, cross-attention, MLP; modulated by adaLN-single (or per-block adaLN)."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, adaln: str, fp32_attention: bool):
        super().__init__()
        self.hidden_size = hidden_size
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads, fp32_attention)
        self.cross_attn = CrossAttention(hidden_size, num_heads, fp32_attention)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio), hidden_size)
        if adaln == "single":
            self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size**0.5)  # E(i)
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True))

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        """cond: t0 [B, 6D] (adaLN-single) or t [B, D] (per-block) → [B, 6, D]."""
        b = cond.shape[0]
        if hasattr(self, "scale_shift_table"):
            return self.scale_shift_table[None] + cond.reshape(b, 6, -1)
        return self.adaLN_modulation(cond).reshape(b, 6, -1)

    def forward(self, x, y, cond, attn_mask):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.modulation(cond).chunk(6, dim=1)
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.cross_attn(x, y, attn_mask)
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """LN → modulate with (table [2, D] + t) → Linear D → p·p·C_out (official ``T2IFinalLayer``)."""

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.scale_shift_table[None] + t[:, None]).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class PixArt(nn.Module):
    """PixArt-α diffusion transformer: ``model(x, timestep, y, mask)`` → [B, out_channels, H, W]."""

    def __init__(self, config: PixArtConfig):
        super().__init__()
        self.config = c = config
        d = c.hidden_size
        self.gradient_checkpointing = False
        # True when y_embedding holds a trained (or official-init) null caption; False when the
        # weights came from a format that lacks it (diffusers). Set by pixart.checkpoints.
        self.has_null_caption = True

        self.x_embedder = PatchEmbed(c.patch_size, c.in_channels, d)
        self.t_embedder = TimestepEmbedder(d)
        if c.micro_conditions:
            self.csize_embedder = SizeEmbedder(d // 3)  # image (h, w)  → 2 · D/3
            self.ar_embedder = SizeEmbedder(d // 3)  # aspect ratio  → D/3
        if c.adaln == "single":
            self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d, bias=True))
        self.y_embedder = CaptionEmbedder(c.caption_channels, d, c.model_max_length)
        self.register_buffer("pos_embed", base_pos_embed(c).float())  # [1, N, D]
        self.blocks = nn.ModuleList(
            [PixArtBlock(d, c.num_heads, c.mlp_ratio, c.adaln, c.fp32_attention) for _ in range(c.depth)]
        )
        self.final_layer = FinalLayer(d, c.patch_size, c.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        """The official initialisation, in one place."""

        def _basic_init(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

        self.apply(_basic_init)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        std_init = [self.t_embedder.mlp[0], self.t_embedder.mlp[2], self.y_embedder.y_proj.fc1, self.y_embedder.y_proj.fc2]
        if self.config.adaln == "single":
            std_init.append(self.t_block[1])
        if self.config.micro_conditions:
            std_init += [self.csize_embedder.mlp[0], self.csize_embedder.mlp[2]]
            std_init += [self.ar_embedder.mlp[0], self.ar_embedder.mlp[2]]
        for lin in std_init:
            nn.init.normal_(lin.weight, std=0.02)
        for block in self.blocks:
            # Cross-attention starts as the identity on the residual stream: a model initialised
            # from DiT (or trained class-conditionally) keeps its output when text is added.
            nn.init.zeros_(block.cross_attn.proj.weight)
            nn.init.zeros_(block.cross_attn.proj.bias)
            if self.config.adaln == "block":  # DiT's adaLN-Zero for the per-block variant
                nn.init.zeros_(block.adaLN_modulation[1].weight)
                nn.init.zeros_(block.adaLN_modulation[1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    # ---- helpers -------------------------------------------------------------------------

    def pos_embed_for(self, h: int, w: int, device, dtype) -> torch.Tensor:
        """[1, h·w, D] PE of an h × w token grid (the buffer when it is the base grid)."""
        c = self.config
        if (h, w) == (c.base_size, c.base_size):
            return self.pos_embed.to(device=device, dtype=dtype)
        pe = get_2d_sincos_pos_embed(c.hidden_size, (h, w), c.base_size, c.lewei_scale)
        return torch.from_numpy(pe).to(device=device, dtype=dtype)[None]

    def unpatchify(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """[B, h·w, p·p·C] → [B, C, h·p, w·p]."""
        p, c = self.config.patch_size, self.config.out_channels
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def null_caption(self, batch_size: int, length: int | None = None) -> torch.Tensor:
        """The trained null caption as text features [B, L, C_cap] (first ``length`` tokens)."""
        if not self.has_null_caption:
            raise ValueError(
                "this model has no trained null caption (y_embedder.y_embedding): its weights came from a "
                "format without it (diffusers); use the T5 encoding of an empty prompt instead"
            )
        y = self.y_embedder.y_embedding
        if length is not None:
            y = y[:length]
        return y[None].expand(batch_size, -1, -1)

    def enable_gradient_checkpointing(self, enabled: bool = True) -> "PixArt":
        self.gradient_checkpointing = enabled
        return self

    # ---- forward -------------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor | None = None,
        resolution: torch.Tensor | None = None,
        aspect_ratio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        x: [B, C, H, W] latents; timestep: [B] (or scalar); y: [B, L, caption_channels];
        mask: [B, L] with 1 for real tokens; resolution: [B, 2] image (height, width) in pixels and
        aspect_ratio: [B] (height / width), both required by micro-conditioned (MS) models.
        Returns [B, out_channels, H, W].
        """
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ValueError(f"x must be latents [B, {c.in_channels}, H, W], got shape {list(x.shape)}")
        b, _, hh, ww = x.shape
        if hh % c.patch_size or ww % c.patch_size:
            raise ValueError(f"latent size {hh}x{ww} is not divisible by patch_size {c.patch_size}")
        if y.ndim != 3 or y.shape[0] != b or y.shape[2] != c.caption_channels:
            raise ValueError(f"y must be [B={b}, L, {c.caption_channels}], got {list(y.shape)}")
        h, w = hh // c.patch_size, ww // c.patch_size
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1)
        if timestep.numel() not in (1, b):
            raise ValueError(f"timestep must be a scalar or [B={b}], got shape {list(timestep.shape)}")
        timestep = timestep.expand(b)

        x = self.x_embedder(x) + self.pos_embed_for(h, w, x.device, x.dtype)  # [B, N, D]
        t = self.t_embedder(timestep)  # [B, D]
        if c.micro_conditions:
            t = t + self._micro_conditions(resolution, aspect_ratio, b, x.device, t.dtype)
        cond = self.t_block(t) if c.adaln == "single" else t  # [B, 6D] or [B, D]
        y = self.y_embedder(y)  # [B, L, D]

        attn_mask = None
        if mask is not None:
            mask = mask.to(device=x.device).bool()
            if mask.shape != y.shape[:2]:
                raise ValueError(f"mask must be [B, L] = {list(y.shape[:2])}, got {list(mask.shape)}")
            mask = mask | ~mask.any(dim=1, keepdim=True)  # an all-padding caption attends to everything
            attn_mask = mask[:, None, None, :]  # [B, 1, 1, L]

        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, y, cond, attn_mask, use_reentrant=False)
            else:
                x = block(x, y, cond, attn_mask)
        x = self.final_layer(x, t)  # [B, N, p·p·C_out]
        return self.unpatchify(x, h, w)

    def _micro_conditions(self, resolution, aspect_ratio, b, device, dtype) -> torch.Tensor:
        if resolution is None or aspect_ratio is None:
            raise ValueError(
                "this model is micro-conditioned (micro_conditions=True): pass resolution=[B, 2] "
                "(image height, width in pixels) and aspect_ratio=[B] (height / width)"
            )
        res = torch.as_tensor(resolution, device=device, dtype=torch.float32).reshape(-1, 2).expand(b, 2)
        ar = torch.as_tensor(aspect_ratio, device=device, dtype=torch.float32).reshape(-1, 1).expand(b, 1)
        return torch.cat([self.csize_embedder(res), self.ar_embedder(ar)], dim=1).to(dtype)
