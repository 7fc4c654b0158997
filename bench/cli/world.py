"""The shapes world's commands: ``demo`` and ``world make-dataset | make-suites | train-reference |
train-extractor`` (world-FID between folders is ``fid folder --extractor world-cnn``).

The work is done by ``bench.world`` (dataset, demo, reference, fid) and, for the demo's report,
``reports.build.write_demo_report``; commands parse and print. The library checks its input up front
and raises ``bench.errors.BenchError`` (or the pipeline's and trainer's own errors), which the command
group prints as one line with exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli.app import Sampler, app, console, world_app


WORLD_DATASET_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench world make-dataset --n 50000 --size 64 --out data/world64 --workers 2   [dim]# render in 2 processes[/dim]
  pixart-bench world make-dataset --n 20000 --size 128 --multi-aspect --out data/world128   [dim]# 128 px + non-square buckets[/dim]
  pixart-bench world make-dataset --n 8000 --size 64 --out data/world64-and --and-fraction 0.5   [dim]# binding phrasing too[/dim]
"""


@world_app.command("make-dataset", epilog=WORLD_DATASET_EXAMPLES)
def world_make_dataset(
    out: Path = typer.Option(..., "--out", help="Output folder: PNGs, .txt / .sparse.txt captions, manifest.jsonl."),
    n: int = typer.Option(50000, "--n", help="Number of images."),
    size: int = typer.Option(64, "--size", help="Image side in pixels."),
    multi_aspect: bool = typer.Option(False, "--multi-aspect", help="Cycle square, 1:2 and 2:1 images (for stage-3 buckets)."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(1, "--workers", help="Render in this many processes (same files)."),
    and_fraction: float = typer.Option(0.0, "--and-fraction", help="Share of two-object short captions without "
                                       "the relation ('a red circle and a blue square', the binding suites' phrasing)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Render a world dataset the trainer reads (image folder + captions + JSONL manifest); re-running resumes."""
    from bench.errors import check_out
    from bench.world.dataset import make_dataset

    check_out(out, "world make-dataset", overwrite=overwrite)  # its own dataset resumes when seed and size match
    sizes = [(size, size), (size, size * 2), (size * 2, size)] if multi_aspect else None
    make_dataset(out, n, size, seed=seed, sizes=sizes, workers=workers, and_fraction=and_fraction)
    console.print(f"wrote {n} images to {out} (manifest.jsonl)")


@world_app.command("make-suites", epilog="[bold]Examples[/bold]\n\n  pixart-bench world make-suites --out my-suites --n 100\n")
def world_make_suites(
    out: Path = typer.Option(..., "--out"),
    n: int = typer.Option(50, "--n", help="Prompts per category."),
    seed: int = typer.Option(1234, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Write the compositional prompt suites ({category}_val.txt + ground-truth .json); the bundled ones use the defaults."""
    from bench.errors import check_out
    from bench.world.dataset import make_suites

    check_out(out, "world make-suites", same=lambda folder: _same_suites(folder, n, seed), overwrite=overwrite)
    suites = make_suites(out, n, seed)
    console.print(f"wrote {', '.join(f'{k} ({len(v)})' for k, v in suites.items())} to {out}")
    capped = [k for k, v in suites.items() if len(v) < n]
    if capped:  # e.g. "single": 6 shapes x 8 colours
        console.print(f"{', '.join(capped)}: every distinct prompt there is (fewer than --n {n})")


DEMO_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench demo                  [dim]# 4 prompts x 4 seeds per category, about a minute on a 2-core CPU[/dim]
  pixart-bench demo --prompts 12     [dim]# more prompts: tighter confidence intervals[/dim]
  pixart-bench demo --quick          [dim]# 2 prompts x 1 seed per category[/dim]
  pixart-bench demo --sampler iddpm  [dim]# the official repo's IDDPM, 100 steps (5x slower; scores as high as the default)[/dim]
  pixart-bench demo --sampler dpm-solver --cfg 4.5   [dim]# the deterministic sampler at the usual guidance: about half the scores[/dim]
  pixart-bench demo --out my-report --reference out/my-world-model
  pixart-bench demo --out r192 --prompts 48 --seeds 4 --categories single,color,spatial   [dim]# the 192-image figures of docs/world.md[/dim]
  pixart-bench demo --out r64 --size 64 --first-seed 1000 --categories single   [dim]# another size; fresh seeds[/dim]
"""


@app.command(epilog=DEMO_EXAMPLES)
def demo(
    out: Path = typer.Option(Path("demo-report"), "--out", help="Report folder (report.md, report.html, results.json, grid.png, images/)."),
    quick: bool = typer.Option(False, "--quick", help="A few prompts only (seconds)."),
    reference: Path = typer.Option(None, "--reference", help="Pipeline folder to use instead of the bundled world model."),
    prompts: int = typer.Option(None, "--prompts", help="Prompts per category (default 4, or 2 with --quick)."),
    seeds: int = typer.Option(None, "--seeds", help="Images per prompt (default 4, or 1 with --quick)."),
    sampler: Sampler = typer.Option(None, "--sampler", help="Default: sde-dpm-solver (what the world model draws best with; docs/experiments/reference-model.md)."),
    steps: int = typer.Option(None, "--steps", help="Default: 20 with the default sampler, else the sampler's default."),
    cfg: float = typer.Option(None, "--cfg", help="Classifier-free guidance scale (default 2)."),
    categories: str = typer.Option(None, "--categories", help="Comma-separated suites, e.g. single,color,spatial (default: all six)."),
    size: int = typer.Option(None, "--size", help="Square image side in pixels (default: the model's, 128 for the bundle)."),
    first_seed: int = typer.Option(0, "--first-seed", help="Image k of a category uses seed first-seed + k."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Run the whole product offline on the bundled world model: sample → oracle scores with CIs → world-FID → report."""
    from bench.errors import check_out
    from bench.world.demo import REFERENCE, run_demo, select_categories
    from reports.build import write_demo_report

    chosen = select_categories([c.strip() for c in categories.split(",") if c.strip()] if categories else None)
    check_out(out, "demo", overwrite=overwrite)  # its own report resumes when model and settings match
    run_demo(out, quick=quick, reference=reference or REFERENCE, prompts_per_category=prompts, seeds=seeds,
             sampler=sampler.value if sampler else None, steps=steps, cfg=cfg, categories=chosen,
             size=size, first_seed=first_seed, log=console.print)
    write_demo_report(out)
    console.print(f"\nReport: {out / 'report.md'} and {out / 'report.html'} (one self-contained page; figures in "
                  f"{out / 'results.json'}, samples in {out / 'grid.png'})")
    console.print("Next: sample a real checkpoint with `pixart-bench sample --ckpt PixArt-alpha/PixArt-XL-2-512x512 ...`.")


TRAIN_REFERENCE_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench world train-reference --work runs/world-reference --out bench/world/reference --overwrite   [dim]# the bundle's own folder (it holds the world-FID extractor too)[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --stage2-low-lr-steps 12000   [dim]# a longer low-LR phase (resumes; a stage whose parent or data changed restarts, the old run kept aside)[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --stage2-low-lr-steps 0 --stage3-low-lr-steps 0   [dim]# constant learning rate[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --and-fraction 0.5   [dim]# "X and Y" captions too: stages 1-3 retrain (the old runs kept aside)[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --n-images-64 40000 --batch-size 1024 --lr 6e-4 --stage2-steps 7000   [dim]# on a GPU: more images, bigger batches, fewer steps[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --components bench/world/reference --stage-minutes stage2=3,stage3=1   [dim]# reuse tokenizer/T5/VAE; stop each stage on time[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --prepare-only   [dim]# data, components, feature caches; train later[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --mixed-precision bf16 --compile stage2,stage2b   [dim]# GPU: bf16, compiled long stages[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --latent-scale-128 0.5   [dim]# stage 3 on latents x 0.5 (signal-to-noise ratio / 4 at every step)[/dim]
  pixart-bench world train-reference --work runs/base --out out/base --stop-after stage2b   [dim]# stages 1-2b only; copy runs/base to try stage 3 several ways[/dim]
  pixart-bench world train-reference --work runs/s3 --out out/s3 --components bench/world/reference --stage3-from bench/world/reference --stage3-steps 20000   [dim]# only stages 3 and 3b: a longer stage 3 from the bundle[/dim]
"""


@world_app.command("train-reference", epilog=TRAIN_REFERENCE_EXAMPLES)
def world_train_reference(
    out: Path = typer.Option(..., "--out", help="Where the pipeline folder goes (diffusers PixArtAlphaPipeline layout)."),
    work: Path = typer.Option(Path("runs/world-reference"), "--work", help="Data, caches, components and checkpoints (resumable)."),
    n_images_64: int = typer.Option(8000, "--n-images-64"),
    n_images_128: int = typer.Option(1500, "--n-images-128"),
    and_fraction: float = typer.Option(0.0, "--and-fraction", help="Share of two-object short captions without the "
                                       "relation (see `world make-dataset`); every stage trains again on them."),
    vae_steps: int = typer.Option(4500, "--vae-steps"),
    stage1_steps: int = typer.Option(500, "--stage1-steps"),
    stage2_steps: int = typer.Option(100000, "--stage2-steps", help="Stage-2 steps at --lr."),
    stage2_low_lr_steps: int = typer.Option(6000, "--stage2-low-lr-steps", help="Then this many at --low-lr (stage 2b; 0: none)."),
    stage3_steps: int = typer.Option(3000, "--stage3-steps", help="Stage-3 steps at --lr."),
    stage3_low_lr_steps: int = typer.Option(3000, "--stage3-low-lr-steps", help="Then this many at --low-lr (stage 3b; 0: none)."),
    lr: float = typer.Option(3e-4, "--lr"),
    low_lr: float = typer.Option(1e-4, "--low-lr"),
    stage3_lr: float = typer.Option(None, "--stage3-lr", help="Stage 3's learning rate (default: --lr)."),
    depth: int = typer.Option(4, "--depth"),
    hidden: int = typer.Option(192, "--hidden"),
    patch_size: int = typer.Option(2, "--patch-size", help="1: four times the tokens per image."),
    batch_size: int = typer.Option(32, "--batch-size", help="Stages 1 and 2 (64 px)."),
    batch_size_128: int = typer.Option(16, "--batch-size-128", help="Stage 3 (128 px)."),
    heads: int = typer.Option(3, "--heads"),
    seed: int = typer.Option(0, "--seed"),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="The trainer's: no, bf16 (a GPU) or fp16."),
    compile_stages: str = typer.Option("", "--compile", help="Stages whose training forward goes through torch.compile, "
                                       "e.g. 'stage2,stage2b' (on a GPU: fewer, fused kernels per step; each costs a compile)."),
    compile_mode: str = typer.Option("default", "--compile-mode", help="torch.compile mode of the --compile stages: "
                                     "default, reduce-overhead (each step replayed as CUDA graphs: a small model's "
                                     "GPU step is launch-bound), max-autotune, max-autotune-no-cudagraphs."),
    stage_minutes: str = typer.Option("", "--stage-minutes", help="Wall-clock caps, e.g. 'stage2=4,stage3=1.5' "
                                      "(stages stage1, stage2, stage2b, stage3, stage3b): a stage stops early with a "
                                      "checkpoint and the next starts from it."),
    workers: int = typer.Option(1, "--workers", help="Processes that render the images."),
    components: Path = typer.Option(None, "--components", help="Take tokenizer, T5 and VAE from this pipeline folder "
                                    "(e.g. bench/world/reference) instead of making them."),
    prepare_only: bool = typer.Option(False, "--prepare-only", help="Stop once data, components and feature caches are ready."),
    latent_scale_128: float = typer.Option(1.0, "--latent-scale-128", help="Stages 3 and 3b learn latents × this "
                                           "(input scaling: 0.5 divides every noise level's signal-to-noise ratio by 4, the usual "
                                           "rule for twice the side); the pipeline's VAE scaling_factor carries it."),
    stop_after: str = typer.Option(None, "--stop-after", help="Stop once this stage (stage1, stage2, stage2b, stage3) "
                                   "is trained, writing no pipeline; copies of --work can then continue the later "
                                   "stages in different ways (the command prints the step options that resume it)."),
    stage3_from: Path = typer.Option(None, "--stage3-from", help="Skip stages 1-2b: stage 3 starts from this 64 px "
                                     "text model (a pipeline folder, or a transformer / checkpoint ema/ folder)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Reproduce the bundled world model from scratch: tokenizer, T5, VAE, and PixArt through the paper's three stages."""
    from bench.errors import check_out
    from bench.world.reference import STEP_OPTIONS, ReferenceBudget, parse_stage_minutes, train_reference

    budget = ReferenceBudget(n_images_64=n_images_64, n_images_128=n_images_128, vae_steps=vae_steps,
                             stage1_steps=stage1_steps, stage2_steps=stage2_steps, stage3_steps=stage3_steps,
                             stage2_low_lr_steps=stage2_low_lr_steps, stage3_low_lr_steps=stage3_low_lr_steps,
                             lr=lr, low_lr=low_lr, and_fraction=and_fraction,
                             depth=depth, hidden=hidden, patch_size=patch_size, batch_size=batch_size,
                             batch_size_128=batch_size_128, heads=heads, seed=seed, stage3_lr=stage3_lr,
                             mixed_precision=mixed_precision,
                             compile_stages=tuple(filter(None, (n.strip() for n in compile_stages.split(",")))),
                             compile_mode=compile_mode,
                             stage_minutes=parse_stage_minutes(stage_minutes), latent_scale_128=latent_scale_128)
    check_out(out, "world train-reference", same=lambda folder: _same_budget(folder, budget), overwrite=overwrite)
    record = train_reference(out, work, budget, log=console.print, workers=workers, components=components,
                             prepare_only=prepare_only, stop_after=stop_after, stage3_from=stage3_from)
    if prepare_only:
        console.print(f"prepared {work}; run the same command without --prepare-only to train")
        return
    if "stopped_after" in record:  # not after the last stage: that run writes its pipeline
        steps = " ".join(f"{STEP_OPTIONS[k]} {v['steps']}" for k, v in record["stages"].items())
        console.print(f"stopped after {stop_after} in {work}; a copy of it goes on to the later stages with {steps}",
                      soft_wrap=True)
        return
    total = sum(record["seconds"].values()) / 60
    if "continued_from" in record:  # its seconds include the history of the weights it started from
        took = f"wall time {record['seconds_this_run'] / 60:.1f} min ({total:.1f} min with the run it continued)"
    else:
        took = f"wall time {total:.1f} min"
    console.print(f"wrote {out}; VAE PSNR {record['vae_psnr_db']:.2f} dB; {took}")


TRAIN_EXTRACTOR_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench world train-extractor --out out/extractor.safetensors   [dim]# the bundled extractor's recipe (seed 0)[/dim]
  pixart-bench world train-extractor --out out/big.safetensors --n-images 40000 --steps 10000
  pixart-bench fid folder GEN REAL --out runs/wfid --extractor world-cnn --resize none \\
      --world-weights out/extractor.safetensors   [dim]# world-FID with it[/dim]
"""


@world_app.command("train-extractor", epilog=TRAIN_EXTRACTOR_EXAMPLES)
def world_train_extractor(
    out: Path = typer.Option(..., "--out", help="Weights file (.safetensors); its config goes beside it (.json)."),
    n_images: int = typer.Option(10000, "--n-images", help="Rendered training scenes."),
    steps: int = typer.Option(2500, "--steps", help="AdamW steps of batch 64."),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Train world-FID's feature extractor (a small CNN) on rendered scenes; prints its held-out accuracy.

    The bundled extractor (bench/world/reference/feature_extractor.safetensors) is this command with
    its defaults; its .json records the run.
    """
    from bench.errors import check_new_file
    from bench.world.fid import train_feature_extractor

    check_new_file(out, also=(Path(out).with_suffix(".json"),), overwrite=overwrite,
                   same=lambda path: _same_extractor(path, n_images, steps, seed))
    config = train_feature_extractor(out, n_images=n_images, steps=steps, seed=seed, verbose=True)
    accuracy = config["training"]["heldout_accuracy"]
    console.print("held-out accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    console.print(f"wrote {out} and {Path(out).with_suffix('.json')} ({config['training']['wall_s']:.0f} s)")


def _same_suites(folder: Path, n: int, seed: int) -> bool:
    """Whether ``folder`` holds exactly the suites of ``n`` and ``seed`` (then writing them changes nothing)."""
    import tempfile

    from bench.world.dataset import make_suites

    with tempfile.TemporaryDirectory() as tmp:
        make_suites(tmp, n, seed)
        return all((folder / p.name).is_file() and (folder / p.name).read_bytes() == p.read_bytes()
                   for p in Path(tmp).iterdir())


def _same_budget(folder: Path, budget) -> bool:
    """Whether ``folder/training.json`` records a model trained with ``budget``."""
    import json

    from bench.errors import BenchError
    from pixart.errors import read_json

    recorded = read_json(folder / "training.json", BenchError, "training record").get("budget")
    return recorded == json.loads(json.dumps(budget.__dict__, default=str))


def _same_extractor(path: Path, n_images: int, steps: int, seed: int) -> bool:
    """Whether the extractor at ``path`` was trained with these settings (its .json says so)."""
    import json

    try:
        training = json.loads(Path(path).with_suffix(".json").read_text())["training"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (training.get("n_images"), training.get("steps"), training.get("seed")) == (n_images, steps, seed)
