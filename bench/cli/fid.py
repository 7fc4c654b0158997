"""The ``fid`` command group (torch-fidelity FID): ``fid folder GEN REF`` between two image folders, or a
folder and reference statistics; ``fid coco`` (zero-shot COCO FID-30K end to end) and ``fid world`` (the
same on the shapes world). The work is done by ``bench.fid`` (``compute_fid``) and ``bench.fid.protocol``;
commands parse, write ``DIR/fid.json`` (with the ``protocol`` record of ``bench.fid.labels``) and print the
figures on stdout and each warning (small N, KID not computed) as one ``warning: ...`` line on stderr. KID is
computed beside FID unless ``--no-kid``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from bench.cli.app import (CFG_OPTION, DTYPE_OPTION, HEIGHT_OPTION, SAMPLER_OPTION, SCHEDULER_OPTION, STEPS_OPTION,
                           WIDTH_OPTION, DType, Sampler, app, console)

fid_app = typer.Typer(help="FID with torch-fidelity: two image folders, or a folder against reference statistics.",
                      no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(fid_app, name="fid")

FidExtractor = Enum("FidExtractor", {n: n for n in ("inception-v3-compat", "clip-vit-b-32", "world-cnn")}, type=str)
Resize = Enum("Resize", {n: n for n in ("center-crop-256", "none")}, type=str)


# options the fid commands share (typer reads each option's metadata; the objects can serve several commands)
EXTRACTOR_OPTION = typer.Option(FidExtractor["inception-v3-compat"], "--extractor",
                                help="Feature extractor: Inception-v3 (FID), CLIP ViT-B/32 (CLIP-FID) or the world's.")
INCEPTION_WEIGHTS_OPTION = typer.Option(None, "--inception-weights", help="torch-fidelity's Inception weights "
                                        "(weights-inception-2015-12-05-6726825d.pth; default: torch-fidelity's cache).")
CLIP_WEIGHTS_OPTION = typer.Option(None, "--clip-weights", help="OpenAI's CLIP ViT-B/32 TorchScript file "
                                   "(default: torch-fidelity's cache).")
WORLD_WEIGHTS_OPTION = typer.Option(None, "--world-weights", help="Another world-cnn (default: the bundled one).")
RESIZE_OPTION = typer.Option(Resize["center-crop-256"], "--resize", help="center-crop-256: centred square, PIL "
                             "bicubic to 256x256 (both sides); none: as they are (one size per set).")
KID_OPTION = typer.Option(False, "--kid", help="Also KID (needs the reference's features).")
KID_DEFAULT_OPTION = typer.Option(None, "--kid/--no-kid", show_default=False,
                                  help="KID (unbiased at any N) beside FID; on by default, and left out with a "
                                  "warning when REF is an .npz without features. --kid: refuse such a REF; "
                                  "--no-kid: FID only.")
CACHE_OPTION = typer.Option(None, "--cache", help="Statistics cache, keyed by content "
                            "(default: $TORCH_HOME/pixart_bench_fid).")
NO_CACHE_OPTION = typer.Option(False, "--no-cache", help="Compute both sides, read and write no cache.")
DEVICE_OPTION = typer.Option(None, "--device", help="cpu or cuda[:N] (default: cuda when there is one).")
BATCH_OPTION = typer.Option(64, "--batch-size")


def weights_for(extractor: FidExtractor, inception: Path | None, clip: Path | None, world: Path | None) -> Path | None:
    return {"inception-v3-compat": inception, "clip-vit-b-32": clip, "world-cnn": world}[extractor.value]


def pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def write_result(out: Path, result: dict) -> Path:
    """``out/fid.json``, written atomically, the figures printed, and each warning as one line on stderr."""
    from pixart.files import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    path = write_json_atomic(out / "fid.json", result)
    kid = f", KID {result['kid_mean']:.6g} ± {result['kid_std']:.3g}" if "kid_mean" in result else ""
    where = "cached" if result["reference"]["cached"] else "computed"
    protocol = result.get("protocol", {}).get("name", "unknown")
    console.print(f"FID {result['fid']:.4f}{kid} ({result['n_gen']} generated vs {result['n_ref']} reference images; "
                  f"{result['extractor']['name']}, --resize {result['settings']['resize']}; reference statistics "
                  f"{where}; protocol: {protocol})")
    for warning in result.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    console.print(f"wrote {path}", soft_wrap=True)
    return path


FOLDER_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench fid folder out/gen data/ref --out runs/fid   [dim]# FID-N, both folders centre-cropped to 256 px[/dim]
  pixart-bench fid folder out/gen data/ref --out runs/fid --inception-weights weights-inception-2015-12-05-6726825d.pth
  pixart-bench fid folder out/gen data/ref --out runs/fid --save-stats ref.npz   [dim]# keep the reference's stats[/dim]
  pixart-bench fid folder out/gen2 ref.npz --out runs/fid2   [dim]# a second model: only its own images are read[/dim]
  pixart-bench fid folder out/gen data/ref --out runs/fid --resize none --no-kid   [dim]# as they are; no KID[/dim]
  pixart-bench fid folder out/gen data/ref --out runs/clip --extractor clip-vit-b-32 --clip-weights ViT-B-32.pt
  pixart-bench fid folder world-gen world-real --out runs/w --extractor world-cnn --resize none   [dim]# world-FID[/dim]
"""


@fid_app.command("folder", epilog=FOLDER_EXAMPLES)
def fid_folder(
    gen: Path = typer.Argument(..., help="Folder of generated images (.png .jpg .jpeg .webp .bmp, not subfolders)."),
    ref: Path = typer.Argument(..., help="Folder of reference images, or an .npz of statistics written here "
                               "(--save-stats, or the cache)."),
    out: Path = typer.Option(..., "--out", help="Folder for fid.json."),
    extractor: FidExtractor = EXTRACTOR_OPTION,
    inception_weights: Path = INCEPTION_WEIGHTS_OPTION,
    clip_weights: Path = CLIP_WEIGHTS_OPTION,
    world_weights: Path = WORLD_WEIGHTS_OPTION,
    resize: Resize = RESIZE_OPTION,
    save_stats: Path = typer.Option(None, "--save-stats", help="Also write the reference statistics here (.npz), "
                                    "to pass as REF later."),
    kid: Optional[bool] = KID_DEFAULT_OPTION,
    cache: Path = CACHE_OPTION,
    no_cache: bool = NO_CACHE_OPTION,
    device: str = DEVICE_OPTION,
    batch_size: int = BATCH_OPTION,
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """FID-N (and KID) between two image folders, or a folder and reference statistics, with torch-fidelity.

    The row a report makes of it is a folder FID: "COCO-30K zero-shot" is `fid coco`'s label alone."""
    from dataclasses import asdict

    from bench.errors import check_out
    from bench.fid import compute_fid
    from bench.fid.labels import FOLDER, protocol_record

    check_out(out, "fid folder", same=lambda folder: _same_fid(folder, gen, ref, extractor.value, resize.value),
              overwrite=overwrite)
    settings = fid_settings(extractor.value, weights_for(extractor, inception_weights, clip_weights, world_weights),
                            resize.value, kid, cache, no_cache, device, batch_size)
    result = compute_fid(gen, ref, **asdict(settings), save_stats=save_stats)
    write_result(out, {**result, "protocol": protocol_record(FOLDER, result)})


def _same_fid(folder: Path, gen: Path, ref: Path, extractor: str, resize: str) -> bool:
    """Whether ``folder/fid.json`` measured the same two sides with the same extractor and resize."""
    import json

    def same_path(recorded, given: Path) -> bool:
        return recorded is not None and Path(str(recorded)).resolve() == given.resolve()

    record = json.loads((folder / "fid.json").read_text())
    return (same_path(record.get("generated", {}).get("source"), gen)
            and same_path(record.get("reference", {}).get("source"), ref)
            and record.get("extractor", {}).get("name") == extractor
            and record.get("settings", {}).get("resize") == resize)


CaptionPolicy = Enum("CaptionPolicy", {n: n for n in ("random", "first", "all")}, type=str)
ReferencePolicy = Enum("ReferencePolicy", {n: n for n in ("sampled", "all")}, type=str)


def fid_settings(extractor: str, weights, resize: str, kid: bool | None, cache, no_cache: bool, device: str | None,
                 batch_size: int):
    """The protocols' ``FidSettings`` from the shared options (cache: ``--cache``, the default one, or none)."""
    from bench.errors import BenchError
    from bench.fid.protocol import FidSettings
    from bench.fid.statistics import default_cache_dir

    if no_cache and cache is not None:
        raise BenchError("--cache and --no-cache contradict each other; give one")
    if extractor == "world-cnn":  # the world's network joins torch-fidelity's registry here, at the top
        from bench.world.fid import register_world_extractor

        register_world_extractor()
    return FidSettings(extractor=extractor, weights=weights, resize=resize, kid=kid,
                       cache_dir=None if no_cache else (cache or default_cache_dir()), device=pick_device(device),
                       batch_size=batch_size)


COCO_EXAMPLES = """[bold]Examples[/bold]

  [dim]# zero-shot FID-30K on MS-COCO 2014 val (docs/fid.md: downloads, choices, why it is not the paper's 7.32)[/dim]
  pixart-bench fid coco --captions annotations/captions_val2014.json --images val2014 --n 30000 --seed 0 \\
      --ckpt PixArt-alpha/PixArt-XL-2-512x512 --out runs/coco-pixart512 --device cuda --dtype fp16 \\
      --inception-weights weights-inception-2015-12-05-6726825d.pth

  [dim]# 8 GPUs share the generation; the main process computes FID; re-running resumes[/dim]
  accelerate launch --num_processes 8 -m bench fid coco --captions annotations/captions_val2014.json \\
      --images val2014 --ckpt PixArt-alpha/PixArt-XL-2-512x512 --out runs/coco-pixart512 --device cuda --dtype fp16

  [dim]# the paper's FID checkpoint (.pth) with local T5 and VAE; the reference statistics come from the cache[/dim]
  pixart-bench fid coco --captions annotations/captions_val2014.json --images val2014 \\
      --ckpt PixArt-XL-2-256x256-MSCOCO-FID732.pth --t5 t5-v1_1-xxl --vae sd-vae-ft-ema --config XL-2-256 \\
      --out runs/coco-fid732 --device cuda --dtype fp16

  [dim]# Imagen's reference (the full validation set) and the CLIP score too[/dim]
  pixart-bench fid coco --captions annotations/captions_val2014.json --images val2014 --ckpt out/my-pipeline \\
      --out runs/coco-mine --reference all --clip-score openai/clip-vit-base-patch32 --device cuda
"""


@fid_app.command("coco", epilog=COCO_EXAMPLES)
def fid_coco(
    captions: Path = typer.Option(..., "--captions", help="A COCO captions file (annotations/captions_val2014.json)."),
    images: Path = typer.Option(..., "--images", help="The folder of the images it names (val2014/)."),
    ckpt: str = typer.Option(..., "--ckpt", help="The model, as `generate` takes it: a diffusers pipeline folder or "
                             "hub id in the HF cache, a PixArt pipeline or checkpoint."),
    out: Path = typer.Option(..., "--out", help="Run folder: captions.jsonl, samples/<NNNNNN>.png, manifest.json, "
                             "fid.json."),
    n: int = typer.Option(30000, "--n", help="Images drawn (FID-N). With --caption-policy all, every caption of "
                          "these N images is generated."),
    seed: int = typer.Option(0, "--seed", help="Draws the images and captions; image i is generated with SEED + i."),
    caption_policy: CaptionPolicy = typer.Option(CaptionPolicy.random, "--caption-policy", help="random: one of "
                                                 "each image's captions, drawn with the seed; first: its first; all."),
    reference: ReferencePolicy = typer.Option(ReferencePolicy.sampled, "--reference", help="sampled: the N drawn "
                                              "images; all: every image of the captions file."),
    # the FID options of `fid folder`
    extractor: FidExtractor = EXTRACTOR_OPTION, resize: Resize = RESIZE_OPTION,
    kid: Optional[bool] = KID_DEFAULT_OPTION,
    inception_weights: Path = INCEPTION_WEIGHTS_OPTION, clip_weights: Path = CLIP_WEIGHTS_OPTION,
    world_weights: Path = WORLD_WEIGHTS_OPTION, cache: Path = CACHE_OPTION, no_cache: bool = NO_CACHE_OPTION,
    fid_batch_size: int = typer.Option(64, "--fid-batch-size", help="Images per feature-extractor call."),
    clip_score: str = typer.Option(None, "--clip-score", help="Also the CLIP score of each image with its caption: "
                                   "a CLIP model (transformers folder or hub id in the HF cache, or an OpenAI .pt)."),
    # the generation options of `generate`
    steps: int = STEPS_OPTION, cfg: float = CFG_OPTION, sampler: Sampler = SAMPLER_OPTION,
    scheduler: str = SCHEDULER_OPTION, height: int = HEIGHT_OPTION, width: int = WIDTH_OPTION,
    dtype: DType = DTYPE_OPTION, device: str = DEVICE_OPTION,
    batch_size: int = typer.Option(4, "--batch-size", help="Images per model call (each has its own seeded noise)."),
    t5: str = typer.Option(None, "--t5", help="PixArt .pth checkpoints: the T5 encoder folder."),
    vae: str = typer.Option(None, "--vae", help="PixArt .pth checkpoints: the VAE folder."),
    config: str = typer.Option(None, "--config", help="PixArt .pth checkpoints: preset or config.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Zero-shot COCO FID-N (and KID): draw N captions, generate an image for each, compare with COCO.

    fid.json says "coco-30k zero-shot" only when the FID used 30,000 generated images and the standard Inception."""
    from bench.errors import check_out
    from bench.fid.protocol import prepare_coco, run_coco
    from bench.generate import load_source

    settings = fid_settings(extractor.value, weights_for(extractor, inception_weights, clip_weights, world_weights),
                            resize.value, kid, cache, no_cache, device, fid_batch_size)
    check_out(out, "fid coco", overwrite=overwrite)  # its own run resumes: the caption list is checked next
    plan = prepare_coco(out, captions=captions, images=images, n=n, seed=seed, caption_policy=caption_policy.value,
                        reference=reference.value, fid=settings, clip_model=clip_score)
    source = load_source(ckpt, steps=steps, cfg=cfg, height=height, width=width, device=settings.device,
                         dtype=dtype.value, scheduler=scheduler, sampler=sampler.value if sampler else None, t5=t5,
                         vae=vae, config=config)
    record = run_coco(plan, source, batch_size=batch_size, log=lambda message: typer.echo(message, err=True))
    if record is not None:
        report(out, record)


def report(out: Path, record: dict) -> None:
    """Print the figures of a protocol's ``fid.json`` (already written)."""
    write_result(out, record)
    if "clip_score" in record:
        console.print(f"CLIP score {record['clip_score']['mean']:.4f} (mean cosine of each image with its caption)")


WORLD_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench fid world --out runs/world-fid   [dim]# the bundled world model, every suite prompt[/dim]
  pixart-bench fid world --out runs/w --prompts 8 --images-per-prompt 4 --no-kid
  pixart-bench fid world --ckpt out/my-world-model --out runs/w-mine --categories single,color
"""


@fid_app.command("world", epilog=WORLD_EXAMPLES)
def fid_world(
    out: Path = typer.Option(..., "--out", help="Run folder: samples/, reference/ (renderings), manifest.json, "
                             "fid.json."),
    ckpt: str = typer.Option(None, "--ckpt", help="Default: the bundled world model."),
    categories: str = typer.Option(None, "--categories", help="Comma-separated suites (default: all six)."),
    prompts: int = typer.Option(None, "--prompts", help="The first N prompts of each suite (default: all)."),
    images_per_prompt: int = typer.Option(1, "--images-per-prompt"),
    seed: int = typer.Option(0, "--seed", help="Image i is generated, and its reference drawn, with SEED + i."),
    steps: int = typer.Option(None, "--steps", help="Default: the demo's (20 with its sampler)."),
    cfg: float = typer.Option(None, "--cfg", help="Default: the demo's (2)."),
    sampler: Sampler = typer.Option(None, "--sampler", help="PixArt only (default: the demo's, sde-dpm-solver)."),
    height: int = HEIGHT_OPTION, width: int = WIDTH_OPTION, device: str = DEVICE_OPTION,
    batch_size: int = typer.Option(8, "--batch-size", help="Images per model call."),
    world_weights: Path = WORLD_WEIGHTS_OPTION, kid: Optional[bool] = KID_DEFAULT_OPTION,
    cache: Path = CACHE_OPTION, no_cache: bool = NO_CACHE_OPTION,
    fid_batch_size: int = typer.Option(64, "--fid-batch-size", help="Images per feature-extractor call."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """World-FID: the world's suites generated with any model, against renderings of the same prompts (world-cnn)."""
    from bench.errors import check_out
    from bench.fid.protocol import prepare_world, run_world
    from bench.generate import load_source
    from bench.generate.sources import detect
    from bench.world.demo import DEMO_CFG, DEMO_SAMPLER, DEMO_STEPS, REFERENCE
    from pixart.pipeline import resolve_pretrained

    settings = fid_settings("world-cnn", world_weights, "none", kid, cache, no_cache, device, fid_batch_size)
    chosen = [c.strip() for c in categories.split(",") if c.strip()] if categories else None
    check_out(out, "fid world", overwrite=overwrite)  # its own run resumes: the store checks its prompts and model
    plan = prepare_world(out, categories=chosen, prompts_per_category=prompts, images_per_prompt=images_per_prompt,
                         seed=seed, fid=settings)
    ckpt = ckpt or str(REFERENCE)
    if detect(resolve_pretrained(ckpt)) == "pixart":  # the demo's sampler unless told otherwise
        sampler_name = sampler.value if sampler else DEMO_SAMPLER
        steps = steps if steps is not None else (DEMO_STEPS if sampler is None else None)
        cfg = DEMO_CFG if cfg is None else cfg
    else:
        sampler_name = sampler.value if sampler else None
    source = load_source(ckpt, steps=steps, cfg=cfg, height=height, width=width, device=settings.device,
                         sampler=sampler_name, component_options=False)
    record = run_world(plan, source, batch_size=batch_size, log=lambda message: typer.echo(message, err=True))
    if record is not None:
        report(out, record)
