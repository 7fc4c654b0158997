"""``pixart-bench compbench audit RUN --official DIR``: our per-image scores against the official
T2I-CompBench scripts' ``vqa_result.json`` files for the same images. It parses and prints; the work
is ``bench.compbench.audit``."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli.app import console
from bench.cli.compbench import compbench_app

AUDIT_EXAMPLES = """[bold]Examples[/bold]

  [dim]# the official scripts ran on copies of out/pixart/<category>/samples/ in official/<category>/samples/[/dim]
  pixart-bench compbench audit out/pixart --official official

  [dim]# audit.json elsewhere; a run of one category against that category's folder[/dim]
  pixart-bench compbench audit out/pixart --official official --out out/pixart-audit
  pixart-bench compbench audit out/sd2-color --official official/color
"""


@compbench_app.command("audit", epilog=AUDIT_EXAMPLES)
def audit(
    run: Path = typer.Argument(..., metavar="RUN", help="A compbench --out folder (results.json, per_image.csv)."),
    official: Path = typer.Option(..., "--official", help="The official scripts' outputs for the same images: "
                                  "DIR/<category>/annotation_blip/vqa_result.json and the others in their official "
                                  "places (or one category's folder for a run of one category)."),
    out: Path = typer.Option(None, "--out", help="Folder for audit.json (default: RUN/audit)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Compare a run's per-image scores with the official scripts' output on the same images."""
    from bench.compbench.audit import run_audit, summary_table

    from bench.errors import check_out

    # an audit of its own is checked by the audit itself (of this run, against these official files)
    check_out(out if out is not None else run / "audit", "compbench audit", overwrite=overwrite)
    record, path = run_audit(run, official, out)
    typer.echo(summary_table(record))
    console.print(f"audit: {path}", soft_wrap=True, markup=False)
