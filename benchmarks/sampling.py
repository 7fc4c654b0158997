"""Wall time of our PixArtPipeline vs diffusers' PixArtAlphaPipeline on identical components.

Random weights of the real architectures at a mid-size config (PixArt S/2: hidden 384, depth 12;
a 4-level AutoencoderKL, so /8 latents; a small T5), same scheduler, steps, guidance and seeds.
Prints seconds per run for each and the ratio; checks the latents agree.

    .venv/bin/python benchmarks/sampling.py [--device cuda] [--size 256] [--steps 20] [--batch 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from pixart.model import PixArtConfig
from pixart.pipeline import PixArtPipeline, SampleSettings, make_scheduler
from pixart.random_components import random_pipeline


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=256, help="image side in pixels (latent side = size / 8)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from diffusers import PixArtAlphaPipeline

    config = PixArtConfig.preset("S-2-256", input_size=args.size // 8, caption_channels=64, model_max_length=120)
    ours = random_pipeline(config, t5_dim=64, vae_channels=(16, 32, 32, 32), perturb=0.02)
    with tempfile.TemporaryDirectory() as tmp:
        ours.export_diffusers(tmp)
        theirs = PixArtAlphaPipeline.from_pretrained(tmp).to(args.device)
    ours = PixArtPipeline(ours.transformer.to(args.device), ours.text_encoder, ours.vae)
    ours.text_encoder.model.to(args.device)
    ours.vae.model.to(args.device)
    theirs.set_progress_bar_config(disable=True)
    theirs.scheduler = make_scheduler("dpm-solver")
    prompts = ["a red circle to the left of a blue square"] * args.batch
    seeds = list(range(args.batch))
    settings = SampleSettings(steps=args.steps, null_caption="empty-string", height=args.size, width=args.size)

    def run_ours():
        return ours(prompts, seeds, settings, batch_size=args.batch, output_type="latent", progress=False)

    def run_theirs():
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return theirs(prompts, generator=gens, num_inference_steps=args.steps, guidance_scale=4.5, height=args.size,
                      width=args.size, use_resolution_binning=False, output_type="latent").images

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_ours, a = timed(run_ours)
    t_theirs, b = timed(run_theirs)
    diff = (a.float() - b.float()).abs().max().item()
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"config: PixArt S/2 (hidden 384, depth 12), {args.size}px ({args.size // 8}x{args.size // 8} latents), "
          f"batch {args.batch}, dpm-solver {args.steps} steps, cfg 4.5")
    print(f"ours     {t_ours:.3f} s/run (best of {args.repeats})")
    print(f"diffusers {t_theirs:.3f} s/run (best of {args.repeats})")
    print(f"ratio diffusers/ours = {t_theirs / t_ours:.2f}x   (max |latent diff| = {diff:.2e})")


if __name__ == "__main__":
    main()
