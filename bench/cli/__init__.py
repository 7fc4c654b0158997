"""The ``pixart-bench`` command line: one typer app, a subcommand per job.

Commands parse arguments and print; the work is done by library functions (``pixart``, ``bench``)
that never read argv. Each module registers its commands on ``bench.cli.app.app``:
``models`` (params, convert, sample, export-diffusers), ``training`` (train, extract-features,
caption, vocab), ``generate`` (the generation store), ``compbench`` (T2I-CompBench),
``compbench_audit`` (``compbench audit``), ``fid`` (the ``fid`` group), ``study`` (the human study), ``world`` (demo and the ``world`` group), ``ablate`` (the ``ablate`` group), ``report`` (tables of results).
"""

# importing a command module registers its commands
from bench.cli import (ablate, ablate_train, compbench, compbench_audit, fid, generate, models,  # noqa: F401
                       report, study, training, world)
from bench.cli.app import app

__all__ = ["app", "main"]


def main():
    app()
