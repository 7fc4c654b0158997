"""The typer app every command module registers on, and the option types several commands share."""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum

import typer
from rich.console import Console

from pixart.pipeline import NULL_CAPTIONS, SAMPLERS

app = typer.Typer(
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


@contextmanager
def user_errors(*errors: type[BaseException]):
    """Report ``errors`` raised inside as ``error: MESSAGE`` on stderr and exit with status 2.

    Plain text, not rich: paths and key lists in the message must not be re-wrapped."""
    try:
        yield
    except errors as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
