"""``pixart-bench ablate train``: the paper's training claims tested on the shapes world (``bench.ablate.train``).

Registered on the ``ablate`` group (``bench.cli.ablate`` imports this module). The command parses
and prints; the library does the work and checks every option before any of it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bench.cli.ablate import ablate_app
from bench.cli.app import console

TRAIN_EXAMPLES = """[bold]Examples[/bold]

  [dim]# all three claims on a 2-core CPU in about an hour (resumable: run it again after an interruption)[/dim]
  pixart-bench ablate train --out runs/ablate-train --budget small --threads 1

  [dim]# a tiny end-to-end check (about a minute), and one claim with more seeds[/dim]
  pixart-bench ablate train --out runs/ablate-quick --budget quick
  pixart-bench ablate train --out runs/ablate-train --budget small --claims 1 --seeds 5

  [dim]# one GPU (bf16, larger steps and batch), oracle scoring in 8 processes[/dim]
  pixart-bench ablate train --out runs/ablate-gpu --budget gpu --workers 8
"""


@ablate_app.command("train", epilog=TRAIN_EXAMPLES)
def ablate_train(
    out: Path = typer.Option(..., "--out", help="Folder for data, runs, ablate_train.json/.csv and plots/ "
                             "(re-running resumes; finished runs are skipped)."),
    budget: str = typer.Option("small", "--budget", help="quick (tests), small (a CPU, about an hour) or gpu "
                               "(one H100, about 10 minutes)."),
    claims: str = typer.Option("1,2,3", "--claims", help="Which claims: 1 adaLN-single vs per-block, 2 stage-1 "
                               "initialisation and re-parameterisation, 3 dense vs sparse captions."),
    seeds: int = typer.Option(None, "--seeds", help="Seeds per arm (default: the budget's; more seeds add runs)."),
    steps: int = typer.Option(None, "--steps", help="Training steps per arm (default: the budget's)."),
    components: Path = typer.Option(None, "--components", help="Pipeline folder whose tokenizer, T5 and VAE are "
                                    "used (default: the bundled reference model)."),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (on a busy CPU, 1 is often faster)."),
    workers: int = typer.Option(None, "--workers", help="Processes that render the dataset and score images with "
                                "the oracle (default: the budget's)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Train every arm of the chosen claims for several seeds at equal budgets on the world (64 px), evaluate
    them at a few checkpoints, and write each claim's difference between arms, its CI and a verdict."""
    from bench.ablate.train import RESULTS, run_train_ablation
    from bench.ablate.train_budget import make_budget, parse_claims
    from bench.errors import check_out
    from bench.world.demo import REFERENCE

    chosen = parse_claims(claims)
    b = make_budget(budget, steps=steps, seeds=seeds, workers=workers)
    check_out(out, "ablate train", overwrite=overwrite)  # its own run resumes when its settings are the same
    result = run_train_ablation(out, b, chosen, components=components or REFERENCE, threads=threads,
                                log=lambda message: typer.echo(message, err=True))
    print_claims(result)
    console.print(f"wrote {out / RESULTS}, {out / 'ablate_train.csv'} and {out / 'plots'}/", soft_wrap=True)


def print_claims(result: dict) -> None:
    table = Table(title="Training ablations on the world: decisive metrics, difference a − b across seeds")
    for column in ("claim", "comparison", "metric", "a", "b", "a − b", "bootstrap 95% CI", "t 95% CI", "verdict"):
        table.add_column(column)

    def interval(ci):
        return "-" if ci is None else f"[{ci[0]:+.3g}, {ci[1]:+.3g}]"

    def number(x, fmt):
        return "-" if x is None else format(x, fmt)

    for n, claim in result["claims"].items():
        for comp in claim["comparisons"]:
            for metric, m in comp["metrics"].items():
                if m.get("decisive"):
                    table.add_row(n, comp["name"], metric, number(m["a_mean"], ".4g"), number(m["b_mean"], ".4g"),
                                  number(m.get("difference"), "+.4g"), interval(m.get("ci95")),
                                  interval(m.get("t_ci95")), m["verdict"])
            table.add_row(n, comp["name"], "[bold]verdict[/bold]", *[""] * 5, f"[bold]{comp['verdict']}[/bold]")
    console.print(table)
