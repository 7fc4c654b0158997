"""The ``pixart-bench`` command line: one typer app, a subcommand per job.

Commands parse arguments and print; the work is done by library functions
(``pixart.checkpoints``, ``pixart.dit_init``, ``bench.params``) that never read argv.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="pixart-bench",
    help="Reproduce and measure PixArt-α: reference transformer, checkpoints, and benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()


class Target(str, Enum):
    official = "official"
    diffusers = "diffusers"
    native = "native"


class Source(str, Enum):
    auto = "auto"
    official = "official"
    diffusers = "diffusers"
    native = "native"
    dit = "dit"


PARAMS_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench params
  pixart-bench params --json params.json
"""

CONVERT_EXAMPLES = """[bold]Examples[/bold]

  [dim]# official .pth -> diffusers PixArtTransformer2DModel folder[/dim]
  pixart-bench convert PixArt-XL-2-512x512.pth out/pixart-512-diffusers --to diffusers

  [dim]# diffusers folder (or a PixArtAlphaPipeline folder) -> official .pth[/dim]
  pixart-bench convert out/pixart-512-diffusers PixArt-XL-2-512x512.pth --to official

  [dim]# a .pth whose config cannot be inferred: name a preset or a config.json[/dim]
  pixart-bench convert my.pth out/native --to native --config XL-2-1024-MS

  [dim]# initialise PixArt from DiT-XL/2 with the adaLN-single re-parameterisation[/dim]
  pixart-bench convert DiT-XL-2-256x256.pt out/pixart-from-dit --from dit
"""


@app.command(epilog=PARAMS_EXAMPLES)
def params(
    json_out: Path = typer.Option(None, "--json", help="Also write the table (with per-module breakdown) to this JSON file."),
):
    """Parameter counts of PixArt-XL/2 (adaLN-single, per-block adaLN, 1024-MS) and DiT-XL/2, per module.

    Counted on the meta device: no weights are allocated.
    """
    from bench.params import parameter_table

    rows = parameter_table()
    dit_total = rows[-1]["total"]
    table = Table(title="Parameters (adaLN ablation)")
    table.add_column("model")
    table.add_column("parameters", justify="right")
    table.add_column("vs DiT-XL/2", justify="right")
    for r in rows:
        table.add_row(r["model"], f"{r['total']:,}", f"{r['total'] / dit_total:.1%}")
    console.print(table)

    groups = list(dict.fromkeys(g for r in rows for g in r["breakdown"]))
    detail = Table(title="Per-module breakdown")
    detail.add_column("module")
    for r in rows:
        detail.add_column(r["short"], justify="right")
    for g in groups:
        detail.add_row(g, *(f"{r['breakdown'][g]:,}" if g in r["breakdown"] else "-" for r in rows))
    console.print(detail)
    console.print(
        "[dim]The paper's 833M for per-block adaLN matches keeping the unused global t_block "
        "(833,809,568); our per-block variant drops it.[/dim]"
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"models": rows}, indent=2) + "\n")
        console.print(f"wrote {json_out}")


@app.command(epilog=CONVERT_EXAMPLES)
def convert(
    src: Path = typer.Argument(..., help="Official .pth/.safetensors, diffusers folder, native folder, or (with --from dit) a DiT .pt / diffusers DiT folder."),
    dst: Path = typer.Argument(..., help="Output: a folder (diffusers, native) or a .pth file (official)."),
    to: Target = typer.Option(None, "--to", help="Output format. Default: native."),
    from_: Source = typer.Option(Source.auto, "--from", help="Input format; 'auto' detects official/diffusers/native. 'dit' re-parameterises a DiT."),
    config: str = typer.Option(None, "--config", help="Preset name (e.g. XL-2-512) or config.json, for a .pth whose config cannot be inferred."),
    t_star: int = typer.Option(500, "--t-star", help="--from dit: timestep at which PixArt reproduces DiT's null-class output."),
    caption_channels: int = typer.Option(4096, help="--from dit: text feature width of the new caption projection (T5-XXL: 4096)."),
    model_max_length: int = typer.Option(120, help="--from dit: tokens in the new null caption."),
    seed: int = typer.Option(0, help="--from dit: seed for the freshly initialised caption layers."),
):
    """Convert a PixArt transformer between official, diffusers and native formats, or initialise one from DiT.

    Keys are checked strictly: a checkpoint that does not fit fails with the missing, unexpected
    and mis-shaped keys. Conversions copy values, so round trips are bit-exact.
    """
    from pixart import checkpoints

    target = (to or Target.native).value
    try:
        if from_ is Source.dit:
            from pixart.dit_init import pixart_from_dit

            model = pixart_from_dit(src, t_star=t_star, caption_channels=caption_channels, model_max_length=model_max_length, seed=seed)
        else:
            if from_ is not Source.auto and checkpoints.detect_format(src) != from_.value:
                raise checkpoints.CheckpointError(f"{src} is a {checkpoints.detect_format(src)} checkpoint, not {from_.value}")
            model = checkpoints.load_transformer(src, config)
        checkpoints.save_transformer(model, dst, target)
    except (checkpoints.CheckpointError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)  # plain text: paths and key lists must not be re-wrapped
        raise typer.Exit(code=2) from None
    n = sum(p.numel() for p in model.parameters())
    console.print(f"wrote {target} checkpoint to {dst} ({n:,} parameters, {model.config.depth} blocks)")


SAMPLE_EXAMPLES = """[bold]Examples[/bold]

  [dim]# a diffusers PixArtAlphaPipeline folder, or a hub id already in the HF cache (offline)[/dim]
  pixart-bench sample --ckpt PixArt-alpha/PixArt-XL-2-512x512 --prompt "a red fox in the snow" --out out/fox

  [dim]# an official .pth with T5 and VAE folders; 4 images per prompt, SA-Solver, bf16 on a GPU[/dim]
  pixart-bench sample --ckpt PixArt-XL-2-512x512.pth --t5 t5-v1_1-xxl --vae sd-vae-ft-ema \\
      --prompts prompts.txt --images-per-prompt 4 --sampler sa-solver --device cuda --dtype bf16 --out out/run

  [dim]# re-running the same command resumes an interrupted run[/dim]
"""

EXPORT_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench export-diffusers out/my-pipeline out/my-pipeline-diffusers
  pixart-bench export-diffusers PixArt-XL-2-512x512.pth out/pixart-512 --t5 t5-v1_1-xxl --vae sd-vae-ft-ema
"""

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class Sampler(str, Enum):
    dpm_solver = "dpm-solver"
    sde_dpm_solver = "sde-dpm-solver"
    sa_solver = "sa-solver"
    iddpm = "iddpm"
    ddpm = "ddpm"


class NullCaption(str, Enum):
    trained = "trained"
    empty_string = "empty-string"


class DType(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


@app.command(epilog=SAMPLE_EXAMPLES)
def sample(
    ckpt: str = typer.Option(..., "--ckpt", help="Pipeline folder (ours or diffusers), hub id in the HF cache, or a transformer checkpoint with --t5/--vae."),
    out: Path = typer.Option(..., "--out", help="Output folder: PNGs + manifest.json."),
    prompt: str = typer.Option(None, "--prompt", help="One prompt."),
    prompts: Path = typer.Option(None, "--prompts", help="Text file, one prompt per line."),
    sampler: Sampler = typer.Option(Sampler.dpm_solver, "--sampler"),
    steps: int = typer.Option(None, "--steps", help="Default: 20 (dpm-solver), 50 (sde-dpm-solver), 25 (sa-solver), 100 (iddpm/ddpm)."),
    cfg: float = typer.Option(4.5, "--cfg", help="Classifier-free guidance scale (1 disables guidance)."),
    seed: int = typer.Option(0, "--seed", help="Image k uses seed + k."),
    height: int = typer.Option(None, "--height"),
    width: int = typer.Option(None, "--width"),
    images_per_prompt: int = typer.Option(1, "--images-per-prompt"),
    batch_size: int = typer.Option(4, "--batch-size"),
    null_caption: NullCaption = typer.Option(None, "--null-caption", help="trained: the checkpoint's y_embedding (official; default when present). empty-string: T5 of \"\" (diffusers)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    dtype: DType = typer.Option(DType.fp32, "--dtype"),
    t5: Path = typer.Option(None, "--t5", help="T5 encoder folder (needed with a bare transformer checkpoint)."),
    vae: Path = typer.Option(None, "--vae", help="VAE folder (needed with a bare transformer checkpoint)."),
    config: str = typer.Option(None, "--config", help="Transformer preset / config.json, for a .pth whose config cannot be inferred."),
):
    """Generate images from prompts with a PixArt checkpoint (diffusers schedulers, per-image seeds)."""
    import torch

    from pixart.checkpoints import CheckpointError
    from pixart.pipeline import PipelineError, PixArtPipeline, SampleSettings
    from pixart.sample_run import read_prompts, run_sampling

    try:
        if (prompt is None) == (prompts is None):
            raise PipelineError("give exactly one of --prompt TEXT or --prompts FILE")
        texts = [prompt] if prompt is not None else read_prompts(prompts)
        if not all(t.strip() for t in texts):
            raise PipelineError("--prompt is empty")
        pipe = PixArtPipeline.from_pretrained(ckpt, t5=t5, vae=vae, transformer_config=config, device=device,
                                              dtype=getattr(torch, DTYPES[dtype.value]))
        settings = SampleSettings(sampler.value, steps, cfg, height, width, null_caption.value if null_caption else None)
        manifest = run_sampling(pipe, texts, out, settings, seed=seed, images_per_prompt=images_per_prompt,
                                batch_size=batch_size, checkpoint=ckpt)
    except (PipelineError, CheckpointError, FileNotFoundError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"wrote {len(manifest['images'])} images and manifest.json to {out}")


@app.command("export-diffusers", epilog=EXPORT_EXAMPLES)
def export_diffusers(
    src: str = typer.Argument(..., help="Pipeline folder, hub id in the HF cache, or transformer checkpoint (with --t5/--vae)."),
    dst: Path = typer.Argument(..., help="Output folder for diffusers.PixArtAlphaPipeline.from_pretrained."),
    t5: Path = typer.Option(None, "--t5"),
    vae: Path = typer.Option(None, "--vae"),
    config: str = typer.Option(None, "--config"),
):
    """Write a diffusers PixArtAlphaPipeline folder that generates the same images as our pipeline."""
    from pixart.checkpoints import CheckpointError
    from pixart.pipeline import PipelineError, PixArtPipeline

    try:
        PixArtPipeline.from_pretrained(src, t5=t5, vae=vae, transformer_config=config).export_diffusers(dst)
    except (PipelineError, CheckpointError, FileNotFoundError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"wrote a diffusers PixArtAlphaPipeline folder to {dst}")


TRAIN_EXAMPLES = """[bold]Examples[/bold]

  [dim]# stage 2 of the paper on your data (XL-2, 256 px), from a stage-1 checkpoint[/dim]
  pixart-bench train --config configs/pixart_xl2_stage2_256.yaml --set data.root=data/sam --set init_from=runs/stage1/checkpoints/step-0300000/ema

  [dim]# a tiny run on a CPU in minutes; resume it after an interruption[/dim]
  pixart-bench train --config configs/tiny_stage2.yaml --set data.root=world/ --set t5=tiny/text_encoder --set vae=tiny/vae
  pixart-bench train --config configs/tiny_stage2.yaml --set data.root=world/ --set t5=tiny/text_encoder --set vae=tiny/vae --resume

  [dim]# several processes (GPUs, or CPU processes with gloo)[/dim]
  accelerate launch --multi_gpu --num_processes 2 -m pixart.train --config configs/tiny_stage2.yaml --set ...
"""

FEATURES_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench extract-features --config configs/pixart_xl2_stage2_256.yaml --set data.root=data/sam --out cache/sam-256
  accelerate launch --num_processes 8 -m pixart.extract --config ... --out cache/sam-256
"""


@app.command(epilog=TRAIN_EXAMPLES)
def train(
    config: Path = typer.Option(None, "--config", help="YAML training config (see configs/)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value: key.sub=value (YAML scalar). Repeatable."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest complete checkpoint in output_dir."),
    output_dir: str = typer.Option(None, "--output-dir", help="Shortcut for --set output_dir=..."),
):
    """Train PixArt (any of the paper's three stages) with the hybrid IDDPM loss, EMA, checkpoints and exact resume."""
    from pixart.checkpoints import CheckpointError
    from pixart.data import DataError
    from pixart.train import load_config
    from pixart.train import train as run_train

    try:
        cfg = load_config(config, [*set_, *([f"output_dir={output_dir}"] if output_dir else [])])
        result = run_train(cfg, resume=resume)
    except (DataError, CheckpointError, ValueError, FileNotFoundError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    last = result["history"][-1] if result["history"] else {}
    console.print(f"done: {len(result['history'])} steps, last loss {last.get('loss', float('nan')):.4f}; "
                  f"checkpoint {result['final_checkpoint']}; metrics {result['output_dir']}/metrics.jsonl")


@app.command("extract-features", epilog=FEATURES_EXAMPLES)
def extract_features_cmd(
    out: Path = typer.Option(..., "--out", help="Cache folder (safetensors shards + features.json)."),
    config: Path = typer.Option(None, "--config", help="Training config: its data, t5, vae, resolution, max_length are used."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value: key.sub=value. Repeatable."),
    batch_size: int = typer.Option(8, "--batch-size"),
    shard_size: int = typer.Option(256, "--shard-size"),
):
    """Precompute T5 features and VAE posteriors (per aspect bucket) for training; resumable, multi-process."""
    from pixart.data import DataError
    from pixart.extract import run_extract

    try:
        n = run_extract(out, config, set_, batch_size=batch_size, shard_size=shard_size)
    except (DataError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"encoded {n} new items into {out}")


CAPTION_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench caption data/sam/images --out data/sam/captions.jsonl --model llava-hf/llava-1.5-7b-hf --device cuda --dtype bf16
  [dim]# re-running the same command captions only the images not yet in captions.jsonl[/dim]
"""

VOCAB_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench vocab data/sam/captions.jsonl
  pixart-bench vocab data/coco/captions.txt --spacy-model en_core_web_sm --min-count 10 --json vocab.json
"""


@app.command(epilog=CAPTION_EXAMPLES)
def caption(
    images: Path = typer.Argument(..., help="Folder of images (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="JSONL output: one {path, caption, model, prompt} per image (appended, resumable)."),
    model: str = typer.Option(..., "--model", help="LLaVA-style model folder or hub id in the HF cache (LlavaForConditionalGeneration)."),
    prompt: str = typer.Option(None, "--prompt", help='Default: the paper\'s "Describe this image and its style in a very detailed manner".'),
    batch_size: int = typer.Option(8, "--batch-size"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    device: str = typer.Option("cpu", "--device"),
    dtype: DType = typer.Option(DType.fp32, "--dtype"),
):
    """Re-caption images with a vision-language model (the paper's dense LLaVA captions); batched and resumable."""
    import torch

    from pixart.captions import DEFAULT_PROMPT, caption_images

    try:
        n = caption_images(images, out, model, prompt=prompt or DEFAULT_PROMPT, batch_size=batch_size,
                           max_new_tokens=max_new_tokens, device=device, dtype=getattr(torch, DTYPES[dtype.value]))
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"captioned {n} new images into {out}")


@app.command(epilog=VOCAB_EXAMPLES)
def vocab(
    captions: Path = typer.Argument(..., help="Captions: .jsonl (caption/prompt/text field), .txt (one per line), or a folder of .txt files."),
    spacy_model: str = typer.Option("en_core_web_sm", "--spacy-model", help="spaCy pipeline name or folder (needs a POS tagger)."),
    min_count: int = typer.Option(10, "--min-count", help="A noun is 'valid' when it appears at least this often."),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
):
    """The paper's caption vocabulary table: valid / total distinct nouns, noun occurrences, nouns per image."""
    from pixart.vocab import load_spacy, read_captions, vocab_stats

    try:
        texts = read_captions(captions)
        stats = vocab_stats(texts, load_spacy(spacy_model), min_count=min_count, progress=True)
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    table = Table(title=f"Caption vocabulary ({captions})")
    for col in ("images", "valid distinct nouns", "total distinct nouns", "noun occurrences", "nouns / image", "VN ratio"):
        table.add_column(col, justify="right")
    table.add_row(f"{stats['images']:,}", f"{stats['valid_distinct_nouns']:,}", f"{stats['total_distinct_nouns']:,}",
                  f"{stats['total_noun_occurrences']:,}", f"{stats['avg_nouns_per_image']:.2f}", f"{stats['vn_ratio']:.1%}")
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps({"source": str(captions), "min_count": min_count, **stats}, indent=2) + "\n")


world_app = typer.Typer(help="The shapes world: datasets, prompt suites, oracle, bundled reference model.",
                        no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(world_app, name="world")

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
):
    """Render a world dataset the trainer reads (image folder + captions + JSONL manifest); re-running resumes."""
    from bench.world.dataset import make_dataset

    sizes = [(size, size), (size, size * 2), (size * 2, size)] if multi_aspect else None
    make_dataset(out, n, size, seed=seed, sizes=sizes, workers=workers, and_fraction=and_fraction)
    console.print(f"wrote {n} images to {out} (manifest.jsonl)")


@world_app.command("make-suites", epilog="[bold]Examples[/bold]\n\n  pixart-bench world make-suites --out my-suites --n 100\n")
def world_make_suites(
    out: Path = typer.Option(..., "--out"),
    n: int = typer.Option(50, "--n", help="Prompts per category."),
    seed: int = typer.Option(1234, "--seed"),
):
    """Write the compositional prompt suites ({category}_val.txt + ground-truth .json); the bundled ones use the defaults."""
    from bench.world.dataset import make_suites

    suites = make_suites(out, n, seed)
    console.print(f"wrote {', '.join(f'{k} ({len(v)})' for k, v in suites.items())} to {out}")


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
    out: Path = typer.Option(Path("demo-report"), "--out", help="Report folder (report.md, results.json, grid.png, images/)."),
    quick: bool = typer.Option(False, "--quick", help="A few prompts only (seconds)."),
    reference: Path = typer.Option(None, "--reference", help="Pipeline folder to use instead of the bundled world model."),
    prompts: int = typer.Option(None, "--prompts", help="Prompts per category (default 4, or 2 with --quick)."),
    seeds: int = typer.Option(None, "--seeds", help="Images per prompt (default 4, or 1 with --quick)."),
    sampler: Sampler = typer.Option(None, "--sampler", help="Default: sde-dpm-solver (what the world model draws best with, docs/world.md)."),
    steps: int = typer.Option(None, "--steps", help="Default: 20 with the default sampler, else the sampler's default."),
    cfg: float = typer.Option(None, "--cfg", help="Classifier-free guidance scale (default 2)."),
    categories: str = typer.Option(None, "--categories", help="Comma-separated suites, e.g. single,color,spatial (default: all six)."),
    size: int = typer.Option(None, "--size", help="Square image side in pixels (default: the model's, 128 for the bundle)."),
    first_seed: int = typer.Option(0, "--first-seed", help="Image k of a category uses seed first-seed + k."),
):
    """Run the whole product offline on the bundled world model: sample → oracle scores with CIs → world-FID → report."""
    from bench.world.demo import REFERENCE, run_demo, select_categories
    from pixart.pipeline import PipelineError

    try:
        chosen = select_categories([c.strip() for c in categories.split(",") if c.strip()] if categories else None)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--categories") from None
    try:
        run_demo(out, quick=quick, reference=reference or REFERENCE, prompts_per_category=prompts, seeds=seeds,
                 sampler=sampler.value if sampler else None, steps=steps, cfg=cfg, categories=chosen,
                 size=size, first_seed=first_seed, log=console.print)
    except (FileNotFoundError, PipelineError) as e:  # e.g. --out holds samples of another model or setting
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"\nReport: {out / 'report.md'} (figures in {out / 'results.json'}, samples in {out / 'grid.png'})")
    console.print("Next: sample a real checkpoint with `pixart-bench sample --ckpt PixArt-alpha/PixArt-XL-2-512x512 ...`; "
                  "T2I-CompBench scoring of a real model will be `pixart-bench compbench --ckpt ...`.")


TRAIN_REFERENCE_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench world train-reference --work runs/world-reference --out bench/world/reference
  pixart-bench world train-reference --work runs/wr --out out/wr --stage2-low-lr-steps 12000   [dim]# a longer low-LR phase (resumes; a stage whose parent or data changed restarts, the old run kept aside)[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --stage2-low-lr-steps 0 --stage3-low-lr-steps 0   [dim]# constant learning rate[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --and-fraction 0.5   [dim]# "X and Y" captions too: stages 1-3 retrain (the old runs kept aside)[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --n-images-64 40000 --batch-size 1024 --lr 6e-4 --stage2-steps 7000   [dim]# on a GPU (3,000 steps at batch 1,024 were not enough: docs/world.md)[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --components bench/world/reference --stage-minutes stage2=3,stage3=1   [dim]# reuse tokenizer/T5/VAE; stop each stage on time[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --prepare-only   [dim]# data, components, feature caches; train later[/dim]
  pixart-bench world train-reference --work runs/gpu --out out/gpu --mixed-precision bf16 --compile stage2,stage2b   [dim]# GPU: bf16, compiled long stages[/dim]
  pixart-bench world train-reference --work runs/wr --out out/wr --latent-scale-128 0.5   [dim]# stage 3 on latents x 0.5 (signal-to-noise ratio / 4 at every step; docs/world.md)[/dim]
  pixart-bench world train-reference --work runs/base --out out/base --stop-after stage2b   [dim]# stages 1-2b only; copy runs/base to try stage 3 several ways[/dim]
  pixart-bench world train-reference --work runs/s3 --out out/s3 --stage3-from pipelines/ctrl-64 --depth 6 --hidden 256 --heads 4   [dim]# only stages 3 and 3b, from a kept 64 px model[/dim]
"""


def _stage_minutes(text: str) -> dict:
    caps = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            caps[name.strip()] = float(value)  # no "=": float("") fails too
        except ValueError:
            console.print(f"[red]--stage-minutes: {part!r} is not stage=minutes (e.g. 'stage2=4,stage3=1.5')[/red]")
            raise typer.Exit(code=2) from None
    return caps


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
                                   "is trained, writing no pipeline: try the later stages several ways from copies of "
                                   "--work (benchmarks/reference_gpu_arms.sh, SHARED_UNTIL)."),
    stage3_from: Path = typer.Option(None, "--stage3-from", help="Skip stages 1-2b: stage 3 starts from this 64 px "
                                     "text model (a pipeline folder, or a transformer / checkpoint ema/ folder)."),
):
    """Reproduce the bundled world model from scratch: tokenizer, T5, VAE, and PixArt through the paper's three stages."""
    from bench.world.reference import STEP_OPTIONS, ReferenceBudget, check_request, train_reference

    budget = ReferenceBudget(n_images_64=n_images_64, n_images_128=n_images_128, vae_steps=vae_steps,
                             stage1_steps=stage1_steps, stage2_steps=stage2_steps, stage3_steps=stage3_steps,
                             stage2_low_lr_steps=stage2_low_lr_steps, stage3_low_lr_steps=stage3_low_lr_steps,
                             lr=lr, low_lr=low_lr, and_fraction=and_fraction,
                             depth=depth, hidden=hidden, patch_size=patch_size, batch_size=batch_size,
                             batch_size_128=batch_size_128, heads=heads, seed=seed, stage3_lr=stage3_lr,
                             mixed_precision=mixed_precision,
                             compile_stages=tuple(filter(None, (n.strip() for n in compile_stages.split(",")))),
                             stage_minutes=_stage_minutes(stage_minutes), latent_scale_128=latent_scale_128)
    try:  # a bad option is a usage error before anything runs; errors of the run itself keep their traceback
        check_request(budget, stop_after, stage3_from)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    record = train_reference(out, work, budget, log=console.print, workers=workers, components=components,
                             prepare_only=prepare_only, stop_after=stop_after, stage3_from=stage3_from)
    if prepare_only:
        console.print(f"prepared {work}; run the same command without --prepare-only to train")
        return
    if stop_after:
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


def main():
    app()


if __name__ == "__main__":
    main()
