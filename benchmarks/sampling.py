"""Wall time of our PixArtPipeline vs diffusers' PixArtAlphaPipeline on identical random components.

Random weights of the real architectures (speed does not depend on the values), the same scheduler
(DPM-Solver), steps, guidance 4.5 and seeds; best of ``--repeats`` runs after a warm-up (which, for
``ours + compile``, pays the compile). Prints seconds per run, the ratio to diffusers and the largest
difference of the outputs from diffusers' (the same images are expected, up to rounding), also as a
fraction of diffusers' largest output value (random weights give latents in the hundreds).

Presets (``--preset``) name the transformer and its components:
  S-2-256 (default)  PixArt S/2 (hidden 384, depth 12), a small T5 (width 64), a small 4-level VAE; 256 px
  XL-2-512           PixArt XL/2 at 512 px, a T5 of T5-XXL's architecture (4.8 B parameters), the SD VAE
  XL-2-1024-MS       PixArt XL/2 1024-MS (micro-conditions) at 1024 px, T5-XXL and SD VAE architectures
  tiny, tiny-MS      the tests' tiny transformers, a small T5, a tiny VAE; 64 px (diffusers' pipeline
                     gives micro-conditions only to a 1024 px model: run tiny-MS end to end at --size 1024)
``--t5 small|xxl`` and ``--vae small|sd`` swap a component. Both pipelines are built from the same
modules in memory (the transformer's weights converted to diffusers' layout), so nothing goes
through the disk; a T5-XXL is built directly on the device in the run's dtype.

``--loop-only`` times the denoising loop alone: the transformer and 20 DPM-Solver steps on random
text features (24 real tokens of 120, the null branch 1 of 120), no T5 and no VAE. ours =
``PixArtPipeline.sample_latents``; diffusers = ``PixArtAlphaPipeline`` given the text features
(``prompt_embeds`` and the null branch's), so its own loop runs without T5 and VAE. Otherwise the whole pipeline runs, prompts to
latents (the default preset) or to decoded images (``--output pt``, what the GPU suite times).

    .venv/bin/python benchmarks/sampling.py [--device cuda] [--size 256] [--steps 20] [--batch 2] [--repeats 3]
    .venv/bin/python benchmarks/sampling.py --preset XL-2-1024-MS --batch 4 --dtype bf16 --loop-only --compile
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from pixart.model import PixArt, PixArtConfig
from pixart.pipeline import PixArtPipeline, SampleSettings, make_scheduler

PRESETS = {  # name: (transformer preset, t5, vae)
    "S-2-256": ("S-2-256", "small", "small"),
    "XL-2-512": ("XL-2-512", "xxl", "sd"),
    "XL-2-1024-MS": ("XL-2-1024-MS", "xxl", "sd"),
    "tiny": ("tiny", "small", "tiny"),
    "tiny-MS": ("tiny-MS", "small", "tiny"),
}
T5_WIDTH = {"small": 64, "xxl": 4096}
# block widths, layers per block, norm groups
VAE_CHANNELS = {"tiny": ((8, 8, 8, 8), 1, 8), "small": ((16, 32, 32, 32), 1, 8), "sd": ((128, 256, 512, 512), 2, 32)}
TEXT_SLOTS, REAL_TOKENS = 120, 24
PROMPT = "a red circle to the left of a blue square"
VARIANTS = ("diffusers", "ours", "ours + compile")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def t5_encoder(kind: str, vocab_size: int, device, dtype, seed: int = 0):
    """A random ``T5EncoderModel``: "xxl" is t5-v1_1-xxl's architecture (d_model 4096, d_ff 10240, 24 layers,
    64 heads of 64, gated-gelu, vocab 32128), built on ``device`` in ``dtype``; "small" is one layer of width 64."""
    from transformers import T5Config, T5EncoderModel

    from pixart.random_components import small_t5

    if kind == "small":
        return small_t5(vocab_size, T5_WIDTH["small"], num_layers=1, num_heads=8, d_kv=8, buckets=8,
                        seed=seed).to(device, dtype)
    config = T5Config(vocab_size=32128, d_model=4096, d_ff=10240, num_layers=24, num_heads=64, d_kv=64,
                      feed_forward_proj="gated-gelu")
    torch.manual_seed(seed)
    with torch.device(device):
        return T5EncoderModel._from_config(config, dtype=dtype).eval()


def vae_model(kind: str, device, dtype, seed: int = 0):
    """A random ``AutoencoderKL`` with 4 levels (latents at 1/8 of the image side): "sd" is Stable Diffusion's
    VAE architecture, "small" and "tiny" narrow ones."""
    from diffusers import AutoencoderKL

    channels, layers, groups = VAE_CHANNELS[kind]
    torch.manual_seed(seed)
    with torch.device(device):
        vae = AutoencoderKL(block_out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=layers,
                            norm_num_groups=groups, sample_size=512)
    return vae.to(dtype).eval()


def to_diffusers(model: PixArt, device, dtype):
    """diffusers' ``PixArtTransformer2DModel`` holding ``model``'s weights (converted in memory)."""
    from bench.ablate.flops import diffusers_twin

    with torch.device(device):
        theirs = diffusers_twin(model)
    return theirs.to(dtype).eval().requires_grad_(False)


def build_pipelines(preset: str, *, device, dtype: str = "fp32", t5: str | None = None, vae: str | None = None,
                    size: int | None = None, seed: int = 0):
    """(ours: PixArtPipeline, theirs: PixArtAlphaPipeline) sharing one tokenizer, T5 and VAE, the transformer's
    weights equal. The transformer's zero-initialised layers get small random weights, so every path runs."""
    from diffusers import PixArtAlphaPipeline

    from pixart.random_components import random_tokenizer
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    name, t5_default, vae_default = PRESETS[preset]
    t5, vae = t5 or t5_default, vae or vae_default
    torch_dtype = DTYPES[dtype]
    overrides = {"caption_channels": T5_WIDTH[t5], "model_max_length": TEXT_SLOTS}
    if size:
        overrides["input_size"] = size // 8
    torch.manual_seed(seed)
    with torch.device(device):
        model = PixArt(PixArtConfig.preset(name, **overrides))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    tokenizer = random_tokenizer()
    text_encoder = t5_encoder(t5, len(tokenizer), device, torch_dtype, seed)
    autoencoder = vae_model(vae, device, torch_dtype, seed)
    theirs = PixArtAlphaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=autoencoder,
                                 transformer=to_diffusers(model, device, torch_dtype),
                                 scheduler=make_scheduler("dpm-solver"))
    theirs.set_progress_bar_config(disable=True)
    ours = PixArtPipeline(model.to(torch_dtype), TextEncoder(tokenizer, text_encoder, max_length=TEXT_SLOTS),
                          VAE(autoencoder))
    return ours, theirs


def text_features(batch: int, channels: int, device, dtype, seed: int = 1):
    """Random T5-like features and masks: (y, mask) with REAL_TOKENS real of TEXT_SLOTS, (y_null, mask_null) with 1."""
    g = torch.Generator().manual_seed(seed)

    def features(real: int):
        mask = torch.zeros(batch, TEXT_SLOTS, dtype=torch.long)
        mask[:, :real] = 1
        return torch.randn(batch, TEXT_SLOTS, channels, generator=g).to(device, dtype), mask.to(device)

    return (*features(REAL_TOKENS), *features(1))


def timed(fn, repeats: int, device: str):
    """(best seconds of ``repeats`` runs after one warm-up, every run's seconds, the last output)."""
    cuda = torch.device(device).type == "cuda"
    fn()
    times, out = [], None
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times), times, out


def measure(preset: str = "S-2-256", *, device: str | None = None, dtype: str = "fp32", size: int | None = None,
            steps: int = 20, batch: int = 2, repeats: int = 3, loop_only: bool = False, t5: str | None = None,
            vae: str | None = None, compile: bool = False, output: str = "latent", log=None) -> list[dict]:
    """One row per variant (diffusers, ours, and ours + compile with ``compile``): best seconds per run, ratio
    to diffusers, largest output difference from diffusers'. A variant that raises gives a row with status
    "failed" and the reason; the others still run."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if output not in ("latent", "pt"):
        raise ValueError(f"output must be 'latent' or 'pt', got {output!r}")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # casting random modules to bf16 is intended: no warning per module
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ours, theirs = build_pipelines(preset, device=device, dtype=dtype, t5=t5, vae=vae, size=size)
    config = ours.transformer.config
    size = size or config.input_size * 8
    seeds = list(range(batch))
    settings = SampleSettings(steps=steps, guidance_scale=4.5, height=size, width=size, null_caption="empty-string",
                              resolution_binning=False)
    common = {"preset": preset, "loop_only": loop_only, "size": size, "batch": batch, "steps": steps, "dtype": dtype,
              "repeats": repeats, "t5": None if loop_only else (t5 or PRESETS[preset][1]),
              "vae": None if loop_only else (vae or PRESETS[preset][2]), "output": "latent" if loop_only else output,
              "device": device, "torch": torch.__version__,
              "device_name": torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else None}

    def gens():
        return [torch.Generator().manual_seed(s) for s in seeds]

    if loop_only:
        y, mask, y_null, mask_null = text_features(batch, config.caption_channels, device, DTYPES[dtype])
        s = settings.resolved(ours)

        def run_theirs():  # the pipeline's own loop; given the text features, it runs no T5 and, for latents, no VAE
            return theirs(prompt_embeds=y, prompt_attention_mask=mask, negative_prompt=None,
                          negative_prompt_embeds=y_null, negative_prompt_attention_mask=mask_null, generator=gens(),
                          num_inference_steps=steps, guidance_scale=4.5, height=size, width=size,
                          use_resolution_binning=False, output_type="latent").images

        def run_ours():
            return ours.sample_latents(y, mask, y_null, mask_null, gens(), s, (size, size))
    else:
        prompts = [PROMPT] * batch

        def run_theirs():
            return theirs(prompts, generator=gens(), num_inference_steps=steps, guidance_scale=4.5, height=size,
                          width=size, use_resolution_binning=False, clean_caption=False, output_type=output).images

        def run_ours():
            return ours(prompts, seeds, settings, batch_size=batch, output_type=output, progress=False)

    rows, reference = [], None
    for variant in VARIANTS if compile else VARIANTS[:2]:
        row = {**common, "variant": variant}
        try:
            if variant == "ours + compile":
                ours.compile(mode="default")
            best, times, out = timed(run_theirs if variant == "diffusers" else run_ours, repeats, device)
            row.update(status="ok", seconds=best, times=times, finite=bool(torch.isfinite(out).all()))
            if variant == "diffusers":
                reference = out
            elif reference is not None:
                diff = (out.float() - reference.float()).abs().max().item()
                # relative to the reference's largest value: bf16 rounds to a fraction of it, whatever the scale
                row.update(max_abs_diff=diff, rel_diff=diff / max(reference.float().abs().max().item(), 1e-12))
        except Exception as e:  # noqa: BLE001 - any failure (out of memory, a compile error) is this row's result
            row.update(status="failed", reason=f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
                       if str(e).strip() else type(e).__name__)
        rows.append(row)
        if log:
            log(row)
    base = rows[0]["seconds"] if rows[0]["status"] == "ok" else None
    for r in rows:
        r["vs_diffusers"] = base / r["seconds"] if base and r["status"] == "ok" else None
        r.setdefault("max_abs_diff", None)
        r.setdefault("rel_diff", None)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=list(PRESETS), default="S-2-256")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="weights' dtype (every component)")
    ap.add_argument("--size", type=int, help="image side in pixels (latent side = size / 8; default: the preset's)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-only", action="store_true", help="the transformer's denoising loop alone (no T5, no VAE)")
    ap.add_argument("--t5", choices=list(T5_WIDTH), help="T5 architecture (default: the preset's)")
    ap.add_argument("--vae", choices=list(VAE_CHANNELS), help="VAE architecture (default: the preset's)")
    ap.add_argument("--output", choices=("latent", "pt"), default="latent",
                    help="latent: stop before the VAE; pt: decoded images (ignored with --loop-only)")
    ap.add_argument("--compile", action="store_true", help="also time ours with PixArtPipeline.compile()")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.size is not None and (args.size < 16 or args.size % 16):
        ap.error(f"--size must be a multiple of 16 pixels, got {args.size}")
    rows = measure(args.preset, device=args.device, dtype=args.dtype, size=args.size, steps=args.steps,
                   batch=args.batch, repeats=args.repeats, loop_only=args.loop_only, t5=args.t5, vae=args.vae,
                   compile=args.compile, output=args.output)
    r0 = rows[0]
    what = "denoising loop only" if args.loop_only else f"pipeline, T5 {r0['t5']}, VAE {r0['vae']}, output {r0['output']}"
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"preset {args.preset} ({what}), {r0['size']}px, batch {args.batch}, dpm-solver {args.steps} steps, "
          f"cfg 4.5, {args.dtype}")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['variant']:<16} failed: {r['reason']}")
            continue
        diff = (f"   max |diff| vs diffusers = {r['max_abs_diff']:.2e} ({r['rel_diff']:.1e} of its largest value)"
                if r["max_abs_diff"] is not None else "")
        print(f"{r['variant']:<16} {r['seconds']:.3f} s/run (best of {args.repeats}); diffusers/this = "
              f"{r['vs_diffusers']:.2f}x{diff}" if r["vs_diffusers"] else f"{r['variant']:<16} {r['seconds']:.3f} s/run")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
