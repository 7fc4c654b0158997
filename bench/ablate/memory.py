"""An analytic model of the peak memory of one PixArt training step, and the paper's memory gap explained.

Why a model: ``ablate cost`` measures memory, but a measurement says nothing about a setting that was
not run (the paper's batch, its trainer's extra copies). The model splits the peak into parts that
follow from the config and the settings, so each hypothesis about the paper's 23 GB vs 29 GB can be
priced; docs/ablations.md puts its predictions beside measurements.

The parts (bytes; P parameters, B batch, N image tokens, L text tokens, D width, M MLP width, h heads):

- **states**: the fp32 weights (4 P) and AdamW's two moments (8 P; ``optimizer_bytes`` for others:
  2 for 8-bit Adam, about 4 for factored optimizers such as CAME or Adafactor with momentum), plus
  ``extra_bytes_per_param`` for what a trainer keeps besides (an EMA copy: 4; DDP's gradient buckets
  when they are not views of the gradients: 4). Gradients (4 P) exist from the backward pass until
  ``zero_grad(set_to_none=True)``; they are live at a phase's peak only where it says so.
- **autocast casts** (bf16 / fp16): autocast caches a half-precision copy of every weight it casts,
  and the copy is saved for the backward pass: 2 P for as long as the activations live.
- **activations** saved for the backward pass, per block: B·(N·(a_D·D + a_M·M + 16 + 8·h) + L·a_L·D),
  the 16 + 8·h being the two LayerNorms' statistics and the two attentions' log-sum-exp in fp32. The
  coefficients are counted, not guessed: ``count_saved_bytes`` hooks the saved tensors of a real
  forward (one storage counted once, parameters left out), and tests/test_ablate_cost.py checks the
  model against it. fp32: a_D = 60 (15 fp32 tensors of width D per token), a_M = 8 (the MLP's
  hidden activation before and after GELU), a_L = 8 (cross-attention's K and V). Under bf16 autocast
  (CPU autocast counted; CUDA autocast casts the same ops): a_D = 38 (the residual stream, the
  LayerNorms and the modulations stay fp32; the projections' inputs and outputs are bf16), a_M = 4,
  a_L = 4. Per-block adaLN adds the SiLU of t saved per block: B·D·4, next to nothing: the two
  variants' activations are equal.
- with **gradient checkpointing** each block keeps only its input (the fp32 residual stream,
  B·N·D·4) and one block's activations exist at a time, recomputed in the backward pass.
- the embedders and the final layer (3 fp32 tensors of width D per token, the latents in and out),
  the batch itself (latents, text features, target) and the backward pass's working space (the
  gradients of the two widest activations, 2·B·N·M in the activation dtype).

The peak is the larger of two moments: the start of the backward pass (every activation alive,
gradients not yet made, unless a trainer keeps them between steps) and its end (every gradient made,
only the first block's activations left). With activations much larger than 4 P (a large batch) the
start wins, so a variant's extra parameters cost 12 B + 2 B (casts) each; at a small batch, or with
checkpointing, the end wins and they cost 16 B.

Check against a measurement this model was not fitted to (docs/ablations.md): XL-2, 256 px, batch 64,
bf16 autocast, fused AdamW on one H100 measured 36.3 GiB (adaLN-single) and 39.1 GiB (per-block);
the model says 36.2 and 39.0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from pixart.model import PixArt, PixArtConfig

# bytes saved per block: per image token per unit of D and of M, per text token per unit of D
ACTIVATION_BYTES = {"fp32": {"d": 60, "m": 8, "text_d": 8}, "bf16": {"d": 38, "m": 4, "text_d": 4}}
GIB = 2**30


@dataclass(frozen=True)
class MemorySetting:
    """A training step's settings, as far as memory goes."""

    batch: int
    dtype: str = "fp32"  # "fp32", or "bf16" / "fp16" autocast (same sizes)
    grad_checkpointing: bool = False
    text_tokens: int = 120  # text slots the model sees (after any trimming of padding)
    optimizer_bytes: int = 8  # optimizer state per parameter: AdamW 8, 8-bit Adam 2, CAME ≈ 4
    extra_bytes_per_param: int = 0  # EMA copy 4, DDP buckets 4
    grads_persist: bool = False  # gradients kept between steps (zero_grad(set_to_none=False))
    resolution: int | None = None  # image side in pixels (default: the config's)

    def activation_kind(self) -> str:
        if self.dtype not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"dtype must be fp32, bf16 or fp16, got {self.dtype!r}")
        return "fp32" if self.dtype == "fp32" else "bf16"


_COUNTS: dict = {}


def parameter_count(config: PixArtConfig) -> int:
    """Parameters of ``config``, counted on the meta device (remembered per config)."""
    key = tuple(sorted(config.to_dict().items()))
    if key not in _COUNTS:
        with torch.device("meta"):
            _COUNTS[key] = sum(p.numel() for p in PixArt(config).parameters())
    return _COUNTS[key]


def tokens(config: PixArtConfig, resolution: int | None) -> int:
    side = (resolution // 8 if resolution else config.input_size) // config.patch_size
    return side * side


def predict_peak(config: PixArtConfig, setting: MemorySetting) -> dict:
    """The model's peak (bytes) and its parts, for one training step of ``config``: {"total", "phase",
    "parts": {name: bytes}, "gib"}."""
    kind = setting.activation_kind()
    coeff = ACTIVATION_BYTES[kind]
    p = parameter_count(config)
    b, n, lt = setting.batch, tokens(config, setting.resolution), setting.text_tokens
    d, m, h = config.hidden_size, int(config.hidden_size * config.mlp_ratio), config.num_heads
    act_size = 4 if kind == "fp32" else 2
    block = b * (n * (coeff["d"] * d + coeff["m"] * m + 16 + 8 * h) + lt * coeff["text_d"] * d)
    if config.adaln == "block":
        block += b * d * 4
    side = n * config.patch_size**2  # latent pixels
    common = {
        "weights": 4 * p,
        "optimizer states": setting.optimizer_bytes * p,
        "trainer copies": setting.extra_bytes_per_param * p,
        "embedders and final layer": embedders_bytes(config, b, n),
        "batch": b * (config.in_channels * side + lt * config.caption_channels + config.out_channels * side) * 4,
        "backward workspace": 2 * b * n * m * act_size,
    }
    casts = 2 * p if kind == "bf16" else 0
    kept_inputs = b * n * d * 4  # one block's input, kept under checkpointing
    depth = config.depth
    if setting.grad_checkpointing:
        start = {"block inputs (checkpointing)": depth * kept_inputs, "activations (one block)": block,
                 "autocast casts (one block)": casts // depth}
        end = {"block inputs (checkpointing)": kept_inputs, "activations (one block)": block,
               "autocast casts (one block)": casts // depth}
    else:
        start = {"activations": depth * block, "autocast casts": casts}
        end = {"activations (one block)": block, "autocast casts (one block)": casts // depth}
    start["gradients"] = 4 * p if setting.grads_persist else 0
    end["gradients"] = 4 * p
    phases = {"start of backward": {**common, **start}, "end of backward": {**common, **end}}
    phase = max(phases, key=lambda k: sum(phases[k].values()))
    parts = {k: v for k, v in phases[phase].items() if v}
    total = sum(parts.values())
    return {"total": total, "gib": total / GIB, "gb": total / 1e9, "phase": phase, "parameters": p, "parts": parts,
            "setting": asdict(setting)}


def embedders_bytes(config: PixArtConfig, batch: int, n: int) -> int:
    """Saved outside the blocks (fp32): the patch embedding's input and output, the final layer's norm input and
    modulated input (3 tensors of width D per token) and its output."""
    p2 = config.patch_size**2
    return batch * n * (3 * config.hidden_size + p2 * config.out_channels + p2 * config.in_channels) * 4


def count_saved_bytes(config: PixArtConfig, batch: int, *, dtype: str = "fp32", text_tokens: int = 8,
                      seed: int = 0) -> dict:
    """The bytes a real forward (CPU) saves for the backward pass, each storage once, parameters left out:
    {"saved": bytes}. A small config only: the model is built and run for real."""
    torch.manual_seed(seed)
    model = PixArt(config).train()
    side = config.input_size
    x = torch.randn(batch, config.in_channels, side, side)
    y = torch.randn(batch, text_tokens, config.caption_channels)
    t = torch.randint(0, 1000, (batch,))
    mask = torch.ones(batch, text_tokens, dtype=torch.long)
    params = {q.untyped_storage().data_ptr() for q in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        key = tensor.untyped_storage().data_ptr()
        if key not in params:
            seen[key] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype != "fp32"), \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x, t, y, mask)
    return {"saved": sum(seen.values())}


def predicted_saved_bytes(config: PixArtConfig, batch: int, *, dtype: str = "fp32", text_tokens: int = 8) -> int:
    """What the model says ``count_saved_bytes`` counts: every block's activations and the embedders' (autocast
    casts and the text path's per-caption tensors left out: a difference of two batches cancels the casts)."""
    coeff = ACTIVATION_BYTES["fp32" if dtype == "fp32" else "bf16"]
    n, d, m, h = tokens(config, None), config.hidden_size, int(config.hidden_size * config.mlp_ratio), config.num_heads
    block = batch * (n * (coeff["d"] * d + coeff["m"] * m + 16 + 8 * h) + text_tokens * coeff["text_d"] * d)
    return config.depth * block + embedders_bytes(config, batch, n)


# ---- the paper's 23 GB vs 29 GB ----------------------------------------------------------------------------

# (name, what it assumes, the setting); each priced for adaLN-single and both readings of per-block adaLN
HYPOTHESES = [
    ("reference: H100 run", "256 px, batch 64, bf16 autocast, AdamW, no checkpointing (measured 36.3 / 39.1 GiB)",
     MemorySetting(batch=64, dtype="bf16")),
    ("smaller batch (8)", "as the reference, batch 8", MemorySetting(batch=8, dtype="bf16")),
    ("gradient checkpointing", "as the reference, with checkpointing", MemorySetting(batch=64, dtype="bf16",
                                                                                    grad_checkpointing=True)),
    ("official 256 px batch, checkpointing", "batch 176 (the official 256 px config), fp16, checkpointing, AdamW",
     MemorySetting(batch=176, dtype="fp16", grad_checkpointing=True)),
    ("+ 8-bit / factored optimizer", "as above with 2 B/param optimizer states",
     MemorySetting(batch=176, dtype="fp16", grad_checkpointing=True, optimizer_bytes=2)),
    ("official trainer", "batch 176, fp16, checkpointing, AdamW, EMA copy and DDP gradient buckets (+8 B/param)",
     MemorySetting(batch=176, dtype="fp16", grad_checkpointing=True, extra_bytes_per_param=8)),
    ("official trainer, gradients kept", "as above, and gradients alive between steps (+4 B/param)",
     MemorySetting(batch=176, dtype="fp16", grad_checkpointing=True, extra_bytes_per_param=8, grads_persist=True)),
]
PAPER_GB = {"single": 23.0, "block": 29.0}


def gap_table(base: PixArtConfig | None = None) -> list[dict]:
    """One row per hypothesis: predicted GB (1e9 bytes, the paper's unit) and GiB for adaLN-single, per-block
    adaLN (our 826M variant) and per-block keeping the global t_block (the paper's 833M), and the gap."""
    base = base or PixArtConfig.preset("XL-2-256")
    rows = []
    for name, assumes, setting in HYPOTHESES:
        single = predict_peak(base, setting)
        block = predict_peak(base.replace(adaln="block"), setting)
        # the paper's 833M keeps t_block (7,969,536 parameters) beside the per-block MLPs: priced like any parameter
        extra = 7_969_536 * (block["total"] - single["total"]) / (block["parameters"] - single["parameters"])
        block_833 = block["total"] + extra
        rows.append({"hypothesis": name, "assumes": assumes, "setting": asdict(setting),
                     "single_gb": single["gb"], "block_gb": block["gb"], "block_833_gb": block_833 / 1e9,
                     "single_gib": single["gib"], "block_gib": block["gib"],
                     "gap": 1 - single["total"] / block["total"], "gap_833": 1 - single["total"] / block_833,
                     "bytes_per_extra_param": (block["total"] - single["total"])
                     / (block["parameters"] - single["parameters"]),
                     "phase": single["phase"]})
    return rows


def implied_by_paper(block_parameters: int = 833_809_568, single_parameters: int = 610_856_096) -> dict:
    """What the paper's 23 GB and 29 GB imply if both differ only by their parameters' per-parameter cost:
    bytes per parameter k = 6 GB / extra parameters, and the rest (activations, batch, workspace)."""
    k = (PAPER_GB["block"] - PAPER_GB["single"]) * 1e9 / (block_parameters - single_parameters)
    return {"bytes_per_param": k, "rest_gb": PAPER_GB["single"] - single_parameters * k / 1e9,
            "block_parameters": block_parameters}


def gap_markdown() -> str:
    """The hypotheses table as Markdown (``python -m bench.ablate.memory`` prints it for docs/ablations.md)."""
    implied = implied_by_paper()
    header = ("| hypothesis | adaLN-single GB (GiB) | per-block 826M GB (GiB) | per-block 833M GB | gap | "
              "B per extra param |")
    lines = [header, "|---|---|---|---|---|---|"]
    for r in gap_table():
        lines.append(f"| {r['hypothesis']}: {r['assumes']} | {r['single_gb']:.1f} ({r['single_gib']:.1f}) | "
                     f"{r['block_gb']:.1f} ({r['block_gib']:.1f}) | {r['block_833_gb']:.1f} | "
                     f"−{r['gap_833']:.0%} | {r['bytes_per_extra_param']:.0f} |")
    lines.append(f"| the paper | 23 | | 29 | −21% | {implied['bytes_per_param']:.0f} (implied) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(gap_markdown())
