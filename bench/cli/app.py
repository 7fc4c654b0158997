"""The typer app every command module registers on, and the option types several commands share.

Bad input is reported once, here: an ``InputError`` (``pixart.errors``) raised by any command is
printed as ``error: MESSAGE`` on stderr, plain text, and the command exits with status 2; a usage
error (unknown option or command, missing argument, bad choice or number) is the same one line, with
``(see COMMAND --help)`` after it. Commands catch nothing themselves; any other exception is a bug and
keeps its traceback. Help is plain text that never cuts a word (``bench.cli.plain_help``).

This module and the option types import no torch, transformers, diffusers or gradio: commands
import them when they run, so ``--help`` is quick.
"""

from __future__ import annotations

import sys
from enum import Enum

import typer
from rich.console import Console
from typer.core import TyperGroup

from bench.cli.plain_help import UsageError, plain_tree, usage_error_line
from pixart.errors import InputError
from pixart.names import DTYPES, NULL_CAPTIONS, SAMPLERS


def _close_progress_bars() -> None:
    """End any progress bar a failed command left open, so its error starts a line of its own."""
    tqdm = sys.modules.get("tqdm.std")  # loaded only if the command drew one
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


def _usage_error(e: UsageError):
    if type(e).__name__ == "NoArgsIsHelpError":  # a group named without a command: its help, as before
        typer.echo(e.ctx.get_help())
    else:
        typer.echo(usage_error_line(e), err=True)
    raise typer.Exit(code=2) from None


class Commands(TyperGroup):
    """The command group: an ``InputError`` or usage error from any command becomes one line and exit
    status 2; every command under it writes plain help."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plain_tree(self)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as e:  # the group's own options: `pixart-bench --bogus`
            _usage_error(e)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            _close_progress_bars()
            typer.echo(f"error: {e}", err=True)  # plain text: paths and key lists must not be re-wrapped
            raise typer.Exit(code=2) from None
        except UsageError as e:
            _usage_error(e)


app = typer.Typer(
    cls=Commands,
    name="pixart-bench",
    help="Reproduce and measure PixArt-α: reference transformer, checkpoints, and benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},  # help wraps at the terminal's width, at most 100
)
world_app = typer.Typer(help="The shapes world: datasets, prompt suites, oracle, bundled reference model.",
                        no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(world_app, name="world")
console = Console()

# the sampler, null-caption and dtype choices are the library's own tables (torch-free: help stays fast)
Sampler = Enum("Sampler", {name.replace("-", "_"): name for name in SAMPLERS}, type=str)
NullCaption = Enum("NullCaption", {name.replace("-", "_"): name for name in NULL_CAPTIONS}, type=str)
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
