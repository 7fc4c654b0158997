"""The ``report`` command: result files of any pixart-bench command → tables with their provenance
(``reports.build``). The command parses and prints; the work is done by ``reports``."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli.app import app, console

REPORT_EXAMPLES = """[bold]Examples[/bold]

  [dim]# two models' T2I-CompBench runs in one table, with the published rows, paired differences and FID[/dim]
  pixart-bench report runs/cb-pixart runs/cb-sdxl runs/fid-pixart --out runs/report

  [dim]# name the models; LaTeX and CSV only; only these two, in this order; no published rows[/dim]
  pixart-bench report pixart=runs/cb-a sdxl=runs/cb-b --out runs/report --format tex,csv --models sdxl,pixart \\
      --no-published

  [dim]# ablations: cost per config joined with FID-N per checkpoint; rows made with other settings fail[/dim]
  pixart-bench report runs/cost runs/ablate-fid --variant block=XL-2-256:adaln=block --variant single=XL-2-256 \\
      --out runs/report-ablate --strict
"""


@app.command("report", epilog=REPORT_EXAMPLES)
def report(
    results: list[str] = typer.Argument(..., metavar="RESULTS...", help="Result files or the folders holding them "
                                        "(compbench, fid, ablate cost / fid / train, study results, demo); NAME=PATH "
                                        "names a single model's result."),
    out: Path = typer.Option(..., "--out", help="Folder for report.md, report.json, tables/ and report.html."),
    formats: str = typer.Option("md,tex,csv,html", "--format", help="Comma-separated: md, tex, csv, html."),
    models: str = typer.Option(None, "--models", help="Comma-separated model names: only these, in this order."),
    strict: bool = typer.Option(False, "--strict", help="Rows made with other settings (prompt lists, detectors, FID "
                                "references, resize) are an error, not a warning."),
    published: bool = typer.Option(True, "--published/--no-published", help="Add the published rows (marked, "
                                   "never bold) to the T2I-CompBench and FID tables."),
    variant: list[str] = typer.Option(None, "--variant", help="NAME=CONFIG: ablate fid's model NAME is ablate cost's "
                                      "config CONFIG in the ablation table (repeat)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Tables of results (Markdown, LaTeX, CSV, HTML), each with the provenance of its numbers."""
    from bench.errors import BenchError, check_out
    from reports.build import parse_formats, write_report

    chosen = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
    if chosen is not None and not chosen:
        raise BenchError("--models: give comma-separated model names, e.g. --models pixart,sdxl")
    variants = {}
    for value in variant or []:
        name, eq, config = value.partition("=")
        if not eq or not name or not config:
            raise BenchError(f"--variant {value!r}: give NAME=CONFIG (ablate fid's model name = ablate cost's --config)")
        if name in variants:
            raise BenchError(f"--variant: {name} is given twice")
        variants[name] = config
    # a report of the same result files is written again (they may have changed); one of others is refused
    check_out(out, "report", same=lambda folder: _same_inputs(folder, results), overwrite=overwrite)
    record = write_report(results, out, parse_formats(formats), chosen, strict=strict, published=published,
                          variants=variants)
    for table in record["tables"]:
        console.print(f"{table['title']}: {table['rows']} rows ({table['key']})", soft_wrap=True, markup=False)
    for warning in record["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    console.print(f"wrote {len(record['files'])} files to {out}: report.md, report.json"
                  + (", tables/" if any(f.startswith("tables") for f in record["files"]) else "")
                  + (", report.html" if "report.html" in record["files"] else ""), soft_wrap=True, markup=False)


def _same_inputs(folder: Path, results: list[str]) -> bool:
    """Whether ``folder/report.json`` was made from result files that ``results`` names (all of them, or some:
    --models leaves some out, and a report may grow)."""
    from bench.errors import BenchError
    from pixart.errors import read_json
    from reports.collect import result_files, split_name

    report = read_json(folder / "report.json", BenchError, "report record")
    recorded = {Path(i["path"]).resolve() for i in report.get("inputs", [])}
    given = {f.resolve() for value in results for f in result_files(split_name(value)[1])}
    return bool(recorded) and recorded <= given
