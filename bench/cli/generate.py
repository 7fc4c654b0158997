"""``pixart-bench generate``: images for a prompt list from any model, in T2I-CompBench's layout.

It parses options and prints; the work is ``bench.generate`` (``load_source``, ``generate``).
Everything that can be checked before the model loads is (prompts, counts, settings, the output
folder); a folder holding another run is refused after the model is known, before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from bench.cli.app import (CFG_OPTION, DTYPE_OPTION, HEIGHT_OPTION, SAMPLER_OPTION, SCHEDULER_OPTION, STEPS_OPTION,
                           WIDTH_OPTION, DType, NullCaption, Sampler, app)

GENERATE_EXAMPLES = """[bold]Examples[/bold]

  [dim]# T2I-CompBench's official protocol: 10 images per prompt, seeds 42…51, samples/<prompt>_<NNNNNN>.png[/dim]
  pixart-bench generate --ckpt PixArt-alpha/PixArt-XL-2-512x512 --prompts color --out out/pixart/color \\
      --device cuda --dtype fp16

  [dim]# any diffusers text-to-image pipeline (a folder, or a hub id already in the HF cache)[/dim]
  [dim]# (the official script's SD 2 settings: DDIM, 30 steps, fp16, noise drawn on the GPU)[/dim]
  pixart-bench generate --ckpt stabilityai/stable-diffusion-2-base --prompts spatial --out out/sd2/spatial \\
      --scheduler DDIMScheduler --steps 30 --noise device --device cuda --dtype fp16 --batch-size 10

  [dim]# 8 GPUs share the images; re-running the same command resumes an interrupted run[/dim]
  accelerate launch --num_processes 8 -m bench generate --ckpt PixArt-alpha/PixArt-XL-2-512x512 \\
      --prompts complex --out out/pixart/complex --device cuda --dtype fp16

  [dim]# your own prompt file, 4 images per prompt with seeds 0…3[/dim]
  pixart-bench generate --ckpt out/my-pipeline --prompts prompts.txt --images-per-prompt 4 --seeds 0 --out out/mine

  [dim]# images made elsewhere, in the official layout: checked against the prompts and recorded in place[/dim]
  pixart-bench generate --ckpt out/dalle3/color --prompts color --out out/dalle3/color
"""


@app.command(epilog=GENERATE_EXAMPLES)
def generate(
    ckpt: str = typer.Option(..., "--ckpt", help="A diffusers pipeline folder or hub id in the HF cache, a PixArt "
                             "pipeline or checkpoint (as `sample` takes), or a folder of images in the official "
                             "layout."),
    prompts: str = typer.Option(..., "--prompts", help="A text file (one prompt per line) or a T2I-CompBench category: "
                                "color, shape, texture, spatial, non_spatial, complex, 3d_spatial, numeracy."),
    out: Path = typer.Option(..., "--out", help="Output folder: samples/<prompt>_<NNNNNN>.png + manifest.json."),
    images_per_prompt: int = typer.Option(10, "--images-per-prompt"),
    seeds: str = typer.Option("official", "--seeds", help="official (42) or a number BASE: image k of every prompt "
                              "uses seed BASE + k."),
    steps: int = STEPS_OPTION,
    cfg: float = CFG_OPTION,
    height: int = HEIGHT_OPTION,
    width: int = WIDTH_OPTION,
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (under accelerate launch: each process's GPU)."),
    dtype: DType = DTYPE_OPTION,
    batch_size: int = typer.Option(4, "--batch-size", help="Images per model call (each image has its own seeded "
                                   "noise, whatever the batch)."),
    color_list: str = typer.Option("2025", "--color-list", help="--prompts color: the 2025 list, or 2023 (the one "
                                   "published numbers used)."),
    loader: str = typer.Option("auto", "--loader", help="auto, pixart, diffusers or folder (auto: "
                               "PixArtAlphaPipeline folders load as PixArt)."),
    noise: str = typer.Option(None, "--noise", help="Diffusers pipelines: cpu (default: the same noise on every "
                              "machine) or device (generators on the GPU, as the official script)."),
    scheduler: str = SCHEDULER_OPTION,
    sampler: Sampler = SAMPLER_OPTION,
    null_caption: NullCaption = typer.Option(None, "--null-caption", help="PixArt only."),
    t5: str = typer.Option(None, "--t5", help="PixArt transformer checkpoints: the T5 encoder folder."),
    vae: str = typer.Option(None, "--vae", help="PixArt transformer checkpoints: the VAE folder."),
    config: str = typer.Option(None, "--config", help="PixArt .pth checkpoints: preset or config.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Generate images for a prompt list with any text-to-image model (resumable, shardable, recorded)."""
    from bench.errors import check_out
    from bench.generate import generate as run, load_source, parse_seed, resolve_prompts
    from bench.generate.plan import check_counts

    seed = parse_seed(seeds)
    check_counts(images_per_prompt, seed, batch_size)
    texts, where = resolve_prompts(prompts, color_list)
    check_out(out, "generate", overwrite=overwrite)  # its own run resumes: checked once the model is known
    source = load_source(ckpt, loader=loader, steps=steps, cfg=cfg, height=height, width=width, device=device,
                         dtype=dtype.value, noise=noise, scheduler=scheduler,
                         sampler=sampler.value if sampler else None,
                         null_caption=null_caption.value if null_caption else None, t5=t5, vae=vae, config=config)
    manifest = run(source, texts, out, images_per_prompt=images_per_prompt, seed=seed, batch_size=batch_size,
                   prompt_source=where, log=lambda message: typer.echo(message, err=True))
    if int(os.environ.get("RANK", "0")) == 0:
        done, total = len(manifest["images"]), len(texts) * images_per_prompt
        state = "all" if done == total else f"{done:,} of"
        typer.echo(f"{state} {total:,} images of {len(texts):,} prompts in {out / 'samples'}; "
                   f"manifest {out / 'manifest.json'}")
