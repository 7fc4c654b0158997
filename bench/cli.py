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


def main():
    app()


if __name__ == "__main__":
    main()
