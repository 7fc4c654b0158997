"""``pixart-bench compbench``: T2I-CompBench for any model, with the official scoring rules.

It parses options and prints; the work is ``bench.compbench.run`` (generate or find the images,
score them, write ``results.json`` / ``per_image.csv`` and the official ``vqa_result.json`` files)
and, for the shapes world, ``bench.compbench.world``. Everything that can be checked before a model
loads is: the categories, the evaluators they need (resolved and checked: ``bench.compbench.preflight``),
the spaCy pipeline, the generation settings, the output folder.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli.app import (CFG_OPTION, DTYPE_OPTION, HEIGHT_OPTION, SAMPLER_OPTION, SCHEDULER_OPTION, STEPS_OPTION,
                           WIDTH_OPTION, DType, Sampler, app, console)

# `compbench` runs the benchmark itself (its options), and holds subcommands (`compbench audit`)
compbench_app = typer.Typer(rich_markup_mode="rich", invoke_without_command=True)
app.add_typer(compbench_app, name="compbench")

COMPBENCH_EXAMPLES = """[bold]Examples[/bold]

  [dim]# the paper's six categories: 10 images per prompt (seeds 42…51), scored with the official rules[/dim]
  pixart-bench compbench --ckpt PixArt-alpha/PixArt-XL-2-512x512 --out out/pixart-compbench --device cuda --dtype fp16 \\
      --blip Salesforce/blip-vqa-capfilt-large --clip openai/clip-vit-base-patch32 --detections-2d unidet-rs200.json

  [dim]# images made elsewhere, one folder per category in the official layout (DIR/color/samples/...)[/dim]
  pixart-bench compbench --images out/sd2 --categories color,shape,texture --blip ./blip-vqa-capfilt-large

  [dim]# spatial with an open-vocabulary detector (a different metric: labelled with the detector's name)[/dim]
  pixart-bench compbench --ckpt out/my-pipeline --categories spatial --detector owlv2:google/owlv2-base-patch16-ensemble

  [dim]# several GPUs share the generation; scoring runs once, in the main process[/dim]
  accelerate launch --num_processes 8 -m bench compbench --ckpt PixArt-alpha/PixArt-XL-2-512x512 --device cuda ...

  [dim]# the bundled world model: the world's suites, scored by the world judge (and by B-VQA beside it)[/dim]
  pixart-bench compbench --ckpt bench/world/reference --out out/world-compbench --blip ./blip-vqa-capfilt-large

  [dim]# world images made elsewhere: DIR/world-<suite>/samples/<prompt>_<NNNNNN>.png, scored by the exact oracle[/dim]
  pixart-bench compbench --images out/my-world-images --suite world --world-judge oracle --out out/my-world-scores
"""


@compbench_app.callback(epilog=COMPBENCH_EXAMPLES)
def compbench(
    ctx: typer.Context,
    ckpt: str = typer.Option(None, "--ckpt", help="The model: a diffusers pipeline folder or hub id in the HF cache, "
                             "or a PixArt pipeline / checkpoint (as `generate` takes)."),
    images: Path = typer.Option(None, "--images", help="Score images made elsewhere instead: DIR/<category>/samples/"
                                "<prompt>_<NNNNNN>.png (or DIR/samples/ for one category); with --suite world: "
                                "DIR/world-<suite>/samples/ (or DIR/<suite>/samples/), as a --ckpt run writes."),
    out: Path = typer.Option(Path("compbench-out"), "--out", help="Images (per category), results.json, "
                             "per_image.csv, the official vqa_result.json files."),
    categories: str = typer.Option(None, "--categories", help="Comma-separated: color, shape, texture, spatial, "
                                   "non_spatial, complex (default: these six), 3d_spatial, numeracy; with --suite "
                                   "world: single, color, shape, texture, spatial, complex."),
    blip: str = typer.Option(None, "--blip", help="BLIP VQA folder or cached hub id (Salesforce/blip-vqa-capfilt-large)."),
    clip: str = typer.Option(None, "--clip", help="CLIP ViT-B/32: a transformers folder or cached hub id "
                             "(openai/clip-vit-base-patch32), or OpenAI's ViT-B-32.pt."),
    clip_backend: str = typer.Option("auto", "--clip-backend", help="auto, transformers or clip (the `clip` package)."),
    detections_2d: Path = typer.Option(None, "--detections-2d", help="spatial, complex: detections made elsewhere; "
                                       "the official rule uses UniDet RS200's. JSON {image file: [{label, score, "
                                       "box}]} naming its detector and checkpoint (docs/compbench.md)."),
    detections_3d: Path = typer.Option(None, "--detections-3d", help="3d_spatial, numeracy: detections made "
                                       "elsewhere; the official rules use UniDet R50's (same format)."),
    detector: str = typer.Option(None, "--detector", help="owlv2:PATH or grounding-dino:PATH: an open-vocabulary "
                                 "detector instead of UniDet (a different metric, labelled as such)."),
    suite: str = typer.Option(None, "--suite", help="compbench (T2I-CompBench's prompts) or world (the shapes "
                              "world's suites, scored by the world judge or the exact oracle: --world-judge; "
                              "generated with --ckpt, or a folder of them with --images). Default: world for the "
                              "bundled world model; --images without --suite is T2I-CompBench."),
    world_judge: str = typer.Option(None, "--world-judge", help="--suite world: which reader scores the images. "
                                    "judge (default): the world judge, which reads model images as people do "
                                    "(its measured agreement with people: docs/world.md); oracle: the exact "
                                    "oracle, exact on renders but rejecting most objects a model draws."),
    depth: str = typer.Option(None, "--depth", help="3d_spatial: a depth model (Intel/dpt-hybrid-midas)."),
    depth_dir: Path = typer.Option(None, "--depth-dir", help="3d_spatial: depth maps made elsewhere."),
    threshold: float = typer.Option(0.5, "--threshold", help="Detector confidence below which detections are ignored."),
    np_num: int = typer.Option(8, "--np-num", help="B-VQA: noun phrases asked per prompt (8; 2 = the first release)."),
    color_list: str = typer.Option("2025", "--color-list", help="2025 or 2023 (the color list published numbers used)."),
    spacy_model: str = typer.Option("en_core_web_sm", "--spacy-model", help="For prompts outside the shipped lists."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda: generation and evaluators."),
    batch_size: int = typer.Option(32, "--batch-size", help="Evaluator batch size."),
    limit: int = typer.Option(None, "--limit", help="Only the first N prompts of each category (a quick look; not "
                              "the protocol, and results.json says so)."),
    images_per_prompt: int = typer.Option(None, "--images-per-prompt", help="Default 10 (the protocol; 4 for the world)."),
    seeds: str = typer.Option("official", "--seeds", help="official (42…51) or BASE: image k of a prompt uses BASE + k."),
    assume_official_seeds: bool = typer.Option(False, "--assume-official-seeds", help="--images: take the images as "
                                               "made with seeds 42…51 when no generate manifest records their seeds "
                                               "(recorded as an assumption and shown in every table)."),
    steps: int = STEPS_OPTION,
    cfg: float = CFG_OPTION,
    sampler: Sampler = SAMPLER_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    height: int = HEIGHT_OPTION,
    width: int = WIDTH_OPTION,
    dtype: DType = DTYPE_OPTION,
    generation_batch: int = typer.Option(4, "--generation-batch", help="Images per model call."),
    t5: str = typer.Option(None, "--t5", help="A PixArt transformer checkpoint's T5 encoder folder."),
    vae: str = typer.Option(None, "--vae", help="A PixArt transformer checkpoint's VAE folder."),
    config: str = typer.Option(None, "--config", help="A PixArt .pth checkpoint's preset or config.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """T2I-CompBench for any model: generate (or reuse) images, score them with the official rules, 95% CIs."""
    if ctx.invoked_subcommand is not None:  # `compbench audit ...`: the subcommand does the work
        return
    from bench.compbench.metrics import Evaluators
    from bench.compbench.prompts import CATEGORIES, PAPER_CATEGORIES
    from bench.errors import BenchError, check_out, check_range
    from bench.generate import parse_seed
    world = _is_world(ckpt, suite)
    if world_judge is not None and not world:
        raise BenchError("--world-judge picks the reader of the shapes world's suites: give it with --suite world "
                         "(or the bundled world model, bench/world/reference); T2I-CompBench's categories are "
                         "scored by their official rules")
    if world_judge not in (None, "judge", "oracle"):
        raise BenchError(f"--world-judge must be judge or oracle, got {world_judge!r}")
    reader = world_judge or "judge"
    chosen = [c.strip() for c in categories.split(",") if c.strip()] if categories else None
    if not world:
        chosen = chosen or list(PAPER_CATEGORIES)
        unknown = sorted(set(chosen) - set(CATEGORIES))
        if unknown:
            raise typer.BadParameter(f"unknown categories {unknown}; choose from {', '.join(CATEGORIES)}",
                                     param_hint="--categories")
    if (ckpt is None) == (images is None):
        raise BenchError("give --ckpt MODEL to generate the images, or --images DIR to score images made elsewhere")
    if assume_official_seeds and world:
        raise BenchError("--assume-official-seeds is for T2I-CompBench's prompts: the world suites have no seed "
                         "protocol to assume")
    if assume_official_seeds and images is None:
        raise BenchError("--assume-official-seeds is for --images: the images this command makes have their seeds "
                         "on record")
    seed = parse_seed(seeds) if not world or seeds != "official" else 0
    n_images = images_per_prompt if images_per_prompt is not None else (4 if world else 10)
    check_range("--images-per-prompt", n_images, 1, 10_000, whole=True)
    check_range("--generation-batch", generation_batch, 1, 4096, whole=True)
    check_range("--batch-size", batch_size, 1, 4096, whole=True)
    check_range("--np-num", np_num, 1, 64, whole=True)
    check_range("--threshold", threshold, 0, 1)
    if limit is not None:
        check_range("--limit", limit, 1, 10_000, whole=True)
    if images is not None and (t5 or vae or config):
        raise BenchError("--t5, --vae and --config go with --ckpt (a PixArt transformer checkpoint), not --images")
    check_out(out, "compbench", same=lambda folder: _same_run(folder, ckpt, images), overwrite=overwrite)
    ev = Evaluators(blip=blip, clip=clip, clip_backend=clip_backend, detector=detector,
                    detections_2d=str(detections_2d) if detections_2d else None,
                    detections_3d=str(detections_3d) if detections_3d else None, depth=depth,
                    depth_dir=str(depth_dir) if depth_dir else None, threshold=threshold, np_num=np_num,
                    spacy_model=spacy_model, device=device, batch_size=batch_size)
    if not world:
        ev.check(chosen)
    source = None
    if ckpt is not None:  # check first: every evaluator and spaCy before the model loads (--images: once listed)
        from bench.compbench.preflight import compbench_preflight, world_preflight

        if world:
            world_preflight(ev, chosen, limit)
        else:
            compbench_preflight(ev, chosen, color_list=color_list, limit=limit)
        source = _load(ckpt, world, device=device, dtype=dtype.value, steps=steps, cfg=cfg, sampler=sampler,
                       scheduler=scheduler, height=height, width=width, t5=t5, vae=vae, config=config)
    log = (lambda message: typer.echo(message, err=True))
    if world:
        from bench.compbench.world import run_world_and_write

        if images is not None:  # world images made elsewhere, in the layout a --ckpt run writes
            record = run_world_and_write(None, out, ev, images=images, categories=chosen, limit=limit, judge=reader,
                                         log=log)
        else:
            record = run_world_and_write(source, out, ev, categories=chosen, limit=limit, images_per_prompt=n_images,
                                         seed=seed, generation_batch=generation_batch, model=_model(ckpt, source),
                                         judge=reader, log=log)
        if record is not None:
            from bench.compbench.world import world_table

            typer.echo(world_table(record["suites"], record["reader"]))
            console.print(f"results: {out / 'results.json'}; per image: {out / 'per_image.csv'}")
        return
    from bench.compbench.results import table
    from bench.compbench.run import run_compbench

    record = run_compbench(chosen, out, ev, source=source, images=images, color_list=color_list, limit=limit,
                           images_per_prompt=n_images, seed=seed, generation_batch=generation_batch,
                           model=_model(ckpt, source) if source is not None else None,
                           assume_official_seeds=assume_official_seeds, log=log)
    if record is None:  # another process of a multi-process launch: the main one scores and prints
        return
    published = ("current", "first-release") if np_num == 2 or color_list == "2023" else ("current",)
    typer.echo(table(record["categories"], ckpt or str(images), published, record["protocol"]))
    for line in protocol_warnings(record):
        typer.echo(f"warning: {line}", err=True)
    console.print(f"results: {out / 'results.json'}; per image: {out / 'per_image.csv'}")


def protocol_warnings(record: dict) -> list[str]:
    """One line per way the run falls short of the official protocol, or assumes part of it."""
    from bench.compbench.protocol import describe

    protocol, lines = record["protocol"], []
    if not protocol["official"]:
        lines.append(f"{describe(protocol, record['categories'])}; compare with the published rows only for "
                     "orientation")
    for category, summary in record["categories"].items():
        if summary["protocol"].get("seeds_note"):
            lines.append(f"{category}: seeds {summary['protocol']['seeds_evidence']}: {summary['protocol']['seeds_note']}")
    lines += protocol.get("assumptions", [])
    return lines


def _is_world(ckpt: str | None, suite: str | None) -> bool:
    from bench.errors import BenchError
    from bench.world.demo import REFERENCE

    if suite not in (None, "compbench", "world"):
        raise BenchError(f"--suite must be compbench or world, got {suite!r}")
    if suite is not None:
        return suite == "world"
    return ckpt is not None and Path(ckpt).exists() and Path(ckpt).resolve() == REFERENCE.resolve()


def _load(ckpt: str, world: bool, *, sampler, steps, cfg, **options):
    """The generation source; a PixArt world model samples as the demo does unless told otherwise (any
    other pipeline with its own scheduler)."""
    from bench.generate import load_source

    if world and sampler is None and steps is None and cfg is None and _is_pixart(ckpt):
        from bench.world.demo import DEMO_CFG, DEMO_SAMPLER, DEMO_STEPS

        return load_source(ckpt, sampler=DEMO_SAMPLER, steps=DEMO_STEPS, cfg=DEMO_CFG, **options)
    return load_source(ckpt, sampler=sampler.value if sampler else None, steps=steps, cfg=cfg, **options)


def _is_pixart(ckpt: str) -> bool:
    """Whether ``ckpt`` loads as a PixArt model (the demo's sampler is PixArt's); False when it does not
    resolve (``load_source`` then says why)."""
    from bench.errors import BenchError
    from bench.generate.sources import detect
    from pixart.errors import PipelineError
    from pixart.pipeline import resolve_pretrained

    try:
        return detect(resolve_pretrained(ckpt)) == "pixart"
    except (BenchError, PipelineError):
        return False


def _same_run(folder: Path, ckpt: str | None, images: Path | None) -> bool:
    """Whether ``folder/results.json`` is a run of the same model (--ckpt) or images (--images): resumed."""
    import json

    model = json.loads((folder / "results.json").read_text()).get("model", {})
    return model.get("ckpt") == ckpt if ckpt is not None else model.get("images") == str(images)


def _model(ckpt: str, source) -> dict:
    return {"ckpt": ckpt, **{k: v for k, v in source.describe().items() if k != "device"}}

