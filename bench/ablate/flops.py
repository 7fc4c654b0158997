"""FLOPs of one training step, counted on the meta device, and model-FLOPs utilisation against a card's peak.

``step_flops`` runs one forward and one backward of the real module (ours, or diffusers'
``PixArtTransformer2DModel`` built from the equivalent config) on ``meta`` tensors under
``torch.utils.flop_counter.FlopCounterMode``: shapes only, so XL-2 at batch 64 costs seconds and no
memory. The counter counts matrix products, convolutions and attention (``scaled_dot_product_attention``,
forward and backward); elementwise work, normalisation and the optimizer step are not FLOPs in this
sense. These are *model* FLOPs: gradient checkpointing recomputes the forward on the hardware but is
not counted, so MFU compares settings on equal terms. Text is counted at all ``text_tokens`` slots
(a padding mask does not change the work of a dense attention kernel).

MFU = FLOPs per step / seconds per step / the card's dense peak for the step's precision.
``peak_flops`` knows a few cards (dense, no sparsity; vendor data sheets): an unknown card, a CPU or
a precision the table lacks gives None and the reason, never a guess.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from pixart.model import PixArt, PixArtConfig

# dense peak TFLOP/s: bf16/fp16 tensor cores, TF32 tensor cores, plain fp32; matched on the CUDA device name,
# first match wins (so "H100 PCIe" before "H100")
PEAK_TFLOPS = [
    ("H100 PCIe", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100 NVL", {"bf16": 835.0, "tf32": 418.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.0, "tf32": 494.7, "fp32": 67.0}),  # SXM (the name says "HBM3")
    ("H200", {"bf16": 989.0, "tf32": 494.7, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("A10G", {"bf16": 70.0, "tf32": 35.0, "fp32": 31.2}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
]


def peak_flops(device_name: str | None, precision: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) for a CUDA device name and a precision ("bf16", "fp16", "tf32",
    "fp32"); (None, why) when the table has no figure."""
    if not device_name:
        return None, "no peak FLOP/s for CPUs: MFU is reported on CUDA devices only"
    for key, peaks in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            lookup = "bf16" if precision == "fp16" and "fp16" not in peaks else precision
            if lookup not in peaks:
                return None, f"no {precision} peak for {key} in the table"
            return peaks[lookup] * 1e12, f"{key} dense {precision} peak, {peaks[lookup]:g} TFLOP/s"
    return None, f"{device_name!r} is not in the table of peak FLOP/s (bench.ablate.flops.PEAK_TFLOPS)"


def step_precision(dtype: str, device_type: str) -> str:
    """The precision the step's matrix products run in: bf16/fp16 autocast, TF32 when CUDA allows it, fp32."""
    if dtype in ("bf16", "fp16"):
        return dtype
    if device_type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "fp32"


def mfu(flops_per_step: float | None, seconds_per_step: float | None, peak: float | None) -> float | None:
    if not flops_per_step or not seconds_per_step or not peak:
        return None
    return flops_per_step / seconds_per_step / peak


def build(config: PixArtConfig, implementation: str = "ours"):
    """The module for ``implementation`` ("ours" or "diffusers"), on the current default device.
    diffusers: ``PixArtTransformer2DModel`` from ``pixart.checkpoints.config_to_diffusers`` (which raises
    for a config diffusers cannot express)."""
    if implementation == "ours":
        return PixArt(config)
    if implementation != "diffusers":
        raise ValueError(f"implementation must be 'ours' or 'diffusers', got {implementation!r}")
    from diffusers import PixArtTransformer2DModel

    from pixart.checkpoints import config_to_diffusers

    kwargs = {k: v for k, v in config_to_diffusers(config).items() if not k.startswith("_")}
    return PixArtTransformer2DModel(**kwargs)


def diffusers_twin(model: PixArt):
    """diffusers' ``PixArtTransformer2DModel`` holding ``model``'s weights (converted in memory, nothing on
    disk), built on the current default device: the two implementations compared on equal weights."""
    from pixart.checkpoints import official_state_dict, official_to_diffusers

    theirs = build(model.config, "diffusers")
    theirs.load_state_dict(official_to_diffusers(official_state_dict(model), model.config))
    return theirs


def batch_inputs(config: PixArtConfig, batch: int, resolution: int | None, text_tokens: int, real_tokens: int,
                 device, generator: torch.Generator | None = None) -> dict:
    """A training batch's tensors (random): latents, timesteps, text features and mask, target."""
    side = resolution // 8 if resolution else config.input_size
    meta = torch.device(device).type == "meta"

    def randn(*shape):
        return torch.empty(*shape, device=device) if meta else torch.randn(*shape, generator=generator).to(device)

    mask = torch.zeros(batch, text_tokens, dtype=torch.long)
    mask[:, :real_tokens] = 1
    inputs = {"x": randn(batch, config.in_channels, side, side), "y": randn(batch, text_tokens, config.caption_channels),
              "mask": mask.to(device),
              "t": torch.randint(0, 1000, (batch,), generator=generator).to(device) if not meta
              else torch.empty(batch, dtype=torch.long, device=device),
              "target": randn(batch, config.out_channels, side, side)}
    if config.micro_conditions:
        px = side * 8
        inputs["resolution"] = torch.tensor([[px, px]] * batch, dtype=torch.float32).to(device)
        inputs["aspect_ratio"] = torch.ones(batch).to(device)
    return inputs


def forward(model, implementation: str, inputs: dict) -> torch.Tensor:
    """One forward of either implementation on a batch from ``batch_inputs``."""
    if implementation == "diffusers":
        extra = {"resolution": inputs.get("resolution"), "aspect_ratio": inputs.get("aspect_ratio")}
        return model(inputs["x"], encoder_hidden_states=inputs["y"], timestep=inputs["t"],
                     encoder_attention_mask=inputs["mask"], added_cond_kwargs=extra).sample
    return model(inputs["x"], inputs["t"], inputs["y"], inputs["mask"], resolution=inputs.get("resolution"),
                 aspect_ratio=inputs.get("aspect_ratio"))


def step_flops(config: PixArtConfig, batch: int, *, resolution: int | None = None, text_tokens: int = 120,
               implementation: str = "ours") -> dict:
    """{"forward": FLOPs, "step": FLOPs of forward + backward} for one training step, counted on meta."""
    with torch.device("meta"):
        model = build(config, implementation)
    inputs = batch_inputs(config, batch, resolution, text_tokens, text_tokens, "meta")
    inputs["mask"] = None  # a mask changes no FLOPs, and meta tensors cannot say which slots are real
    counter = FlopCounterMode(display=False)
    with counter:
        out = forward(model, implementation, inputs)
        fwd = counter.get_total_flops()
        (out - inputs["target"]).square().mean().backward()
    return {"forward": int(fwd), "step": int(counter.get_total_flops())}
