"""The typer app every command module registers on, and the option types several commands share.

Bad input is reported once, here: an ``InputError`` (``pixart.errors``) raised by any command is
printed as ``error: MESSAGE`` on stderr, plain text, and the command exits with status 2, as click
does for a bad option. Commands catch nothing themselves; any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

from enum import Enum

import typer
from rich.console import Console
from typer.core import TyperGroup

from pixart.errors import InputError
from pixart.pipeline import NULL_CAPTIONS, SAMPLERS


class Commands(TyperGroup):
    """The command group: an ``InputError`` from any command becomes one line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            typer.echo(f"error: {e}", err=True)  # plain text: paths and key lists must not be re-wrapped
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=Commands,
    name="pixart-bench",
    help="Reproduce and measure PixArt-α: reference transformer, checkpoints, and benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
world_app = typer.Typer(help="The shapes world: datasets, prompt suites, oracle, bundled reference model.",
                        no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(world_app, name="world")
console = Console()

# the sampler and null-caption choices are the pipeline's own tables
Sampler = Enum("Sampler", {name.replace("-", "_"): name for name in SAMPLERS}, type=str)
NullCaption = Enum("NullCaption", {name.replace("-", "_"): name for name in NULL_CAPTIONS}, type=str)
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DType = Enum("DType", {name: name for name in DTYPES}, type=str)


def torch_dtype(dtype: DType):
    import torch

    return getattr(torch, DTYPES[dtype.value])


# generation settings shared by `generate` and `compbench` (typer reads each option's metadata; the
# objects can serve several commands)
STEPS_OPTION = typer.Option(None, "--steps", help="Default: the sampler's (PixArt) or the pipeline's own.")
CFG_OPTION = typer.Option(None, "--cfg", help="Guidance scale. Default: 4.5 (PixArt) or the pipeline's own.")
HEIGHT_OPTION = typer.Option(None, "--height", help="Default: the model's own size.")
WIDTH_OPTION = typer.Option(None, "--width")
DTYPE_OPTION = typer.Option(DType.fp32, "--dtype")
SCHEDULER_OPTION = typer.Option(None, "--scheduler", help="Diffusers pipelines: a diffusers scheduler class on the "
                                "pipeline's scheduler config, e.g. DDIMScheduler (default: the pipeline's own).")
SAMPLER_OPTION = typer.Option(None, "--sampler", help="PixArt only (default dpm-solver).")
