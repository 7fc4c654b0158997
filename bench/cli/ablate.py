"""The ``ablate`` command group: the paper's ablations measured for any user's variants.

``ablate cost`` (parameters, peak training memory, step time, FLOPs and MFU per model config;
``bench.ablate.cost``), ``ablate fid`` (the FID-N protocol for several checkpoints against one cached
reference; ``bench.ablate.fid``) and ``ablate train`` (training ablations on the shapes world; its own
module registers it on ``ablate_app``). Commands parse and print; the work is done by ``bench.ablate``.
"""

from __future__ import annotations

import typer

from bench.cli.app import app

ablate_app = typer.Typer(help="The paper's ablations measured: cost per config, FID-N per checkpoint, training "
                              "ablations on the shapes world.", no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(ablate_app, name="ablate")
