"""Commands on one model: ``params``, ``convert``, ``sample``, ``export-diffusers``.

They parse arguments and print; the work is done by ``pixart.checkpoints``, ``pixart.dit_init``,
``pixart.pipeline`` / ``pixart.sample_run`` and ``bench.ablate.params``, which never read argv.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import DType, NullCaption, Sampler, app, console, torch_dtype
from pixart.files import write_json_atomic


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
    from bench.ablate.params import parameter_table

    if json_out is not None and (json_out.is_dir() or any(p.exists() and not p.is_dir() for p in json_out.parents)):
        raise typer.BadParameter(f"{json_out} is a folder or lies under a file", param_hint="--json")
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
        write_json_atomic(json_out, {"models": rows})
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
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Convert a PixArt transformer between official, diffusers and native formats, or initialise one from DiT.

    Keys are checked strictly: a checkpoint that does not fit fails with the missing, unexpected
    and mis-shaped keys. Conversions copy values, so round trips are bit-exact.
    """
    from pixart import checkpoints

    target = (to or Target.native).value
    _check_dst(dst, "convert", overwrite, one_file=target == "official")
    if from_ is Source.dit:
        from pixart.dit_init import pixart_from_dit

        model = pixart_from_dit(src, t_star=t_star, caption_channels=caption_channels, model_max_length=model_max_length, seed=seed)
    else:
        if from_ is not Source.auto and checkpoints.detect_format(src) != from_.value:
            raise checkpoints.CheckpointError(f"{src} is a {checkpoints.detect_format(src)} checkpoint, not {from_.value}")
        model = checkpoints.load_transformer(src, config)
    checkpoints.save_transformer(model, dst, target)
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
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Generate images from prompts with a PixArt checkpoint (diffusers schedulers, per-image seeds)."""
    from bench.errors import check_out
    from bench.generate.sources import check_bare_checkpoint
    from pixart.pipeline import PipelineError, PixArtPipeline, SampleSettings, check_prompts
    from pixart.sample_run import check_run, read_prompts, run_sampling

    # everything that can be checked without the model is checked before it loads
    if (prompt is None) == (prompts is None):
        raise PipelineError("give exactly one of --prompt TEXT or --prompts FILE")
    texts = [prompt] if prompt is not None else read_prompts(prompts)
    check_prompts(texts, "--prompt")
    settings = SampleSettings(sampler.value, steps, cfg, height, width, null_caption.value if null_caption else None)
    settings.check()
    check_run(out, images_per_prompt, batch_size)
    check_out(out, "sample", overwrite=overwrite)  # its own run resumes: checked once the model is known
    check_bare_checkpoint(ckpt, t5, vae, config)  # a file that is no checkpoint is named as such
    pipe = PixArtPipeline.from_pretrained(ckpt, t5=t5, vae=vae, transformer_config=config, device=device,
                                          dtype=torch_dtype(dtype))
    manifest = run_sampling(pipe, texts, out, settings, seed=seed, images_per_prompt=images_per_prompt,
                            batch_size=batch_size, checkpoint=ckpt)
    console.print(f"wrote {len(manifest['images'])} images and manifest.json to {out}")


@app.command("export-diffusers", epilog=EXPORT_EXAMPLES)
def export_diffusers(
    src: str = typer.Argument(..., help="Pipeline folder, hub id in the HF cache, or transformer checkpoint (with --t5/--vae)."),
    dst: Path = typer.Argument(..., help="Output folder for diffusers.PixArtAlphaPipeline.from_pretrained."),
    t5: Path = typer.Option(None, "--t5"),
    vae: Path = typer.Option(None, "--vae"),
    config: str = typer.Option(None, "--config"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Write a diffusers PixArtAlphaPipeline folder that generates the same images as our pipeline."""
    from bench.generate.sources import check_bare_checkpoint
    from pixart.pipeline import PixArtPipeline

    _check_dst(dst, "export-diffusers", overwrite)
    check_bare_checkpoint(src, t5, vae, config, option="SRC")
    PixArtPipeline.from_pretrained(src, t5=t5, vae=vae, transformer_config=config).export_diffusers(dst)
    console.print(f"wrote a diffusers PixArtAlphaPipeline folder to {dst}")


def _check_dst(dst: Path, command: str, overwrite: bool, one_file: bool = False) -> None:
    """The --out rule for DST (``one_file``: a checkpoint file, else a folder): a folder holding anything
    (even this command's output, whose source is not recorded) or an existing file is refused unless
    --overwrite; a file where a folder goes (and the reverse) is the writer's own error."""
    from bench.errors import check_new_file, check_out

    if dst.is_dir() and not one_file:
        check_out(dst, command, same=False, overwrite=overwrite, option="DST")
    elif dst.is_file() and one_file:
        check_new_file(dst, "DST", overwrite=overwrite)
