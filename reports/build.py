"""``pixart-bench report``: result files → tables (Markdown, LaTeX, CSV, HTML) with their provenance.

``build_tables(results)`` makes one ``Table`` per kind of result present, in this order: T2I-CompBench
(``reports.compbench_table``), its paired differences (``reports.paired``), the parity with the
official scripts (``compbench audit``: ``reports.audit_table``), T2I-CompBench on the shapes world
(``reports.world_table``), zero-shot FID
(``reports.fid_table``), the ablations (``reports.ablate_table``), the user studies
(``reports.study_table``) and the demo. ``write_report`` writes them under ``OUT``:

- ``report.md``: every table with its footnotes, and the warnings;
- ``tables/<key>.md``, ``.tex``, ``.csv``: each table alone, in the formats asked for;
- ``report.html`` (format "html"): one self-contained page (``reports.html``);
- ``user_study.png`` / ``.svg`` per study (``reports.study_figure``; ``<key>_user_study`` beyond the first);
- ``report.json``: the files read (kind, model, SHA-256), the tables written, and the warnings.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from bench.errors import BenchError, check_out_folder
from pixart.files import package_versions, write_json_atomic, write_text_atomic
from reports.collect import Results, collect

FORMATS = ("md", "tex", "csv", "html")


def build_tables(results: Results, *, published: bool = True, strict: bool = False,
                 variants: dict[str, str] | None = None) -> list:
    """The report's tables from collected results (see the module docstring). ``strict``: rows made
    with other settings are a BenchError naming both files, not a warning in the footnote."""
    from reports.ablate_table import ablate_train_table, ablation_table
    from reports.compbench_table import compbench_table
    from reports.demo import demo_table, demo_tables
    from reports.fid_table import fid_table
    from reports.paired import paired_table
    from reports.study_table import study_table

    tables = []
    compbench = results.of_kind("compbench")
    if compbench:
        tables.append(compbench_table(compbench, published=published, strict=strict))
        paired = paired_table(compbench)
        if paired is not None:
            tables.append(paired)
    if results.of_kind("audit"):
        from reports.audit_table import audit_table

        tables.append(audit_table(results.of_kind("audit"), strict=strict))
    if results.of_kind("compbench_world"):
        from reports.world_table import world_table

        tables.append(world_table(results.of_kind("compbench_world"), strict=strict))
    if results.of_kind("fid"):
        tables += fid_table(results.of_kind("fid"), published=published, strict=strict)  # COCO-30K, image folders
    if results.of_kind("ablate_cost") or results.of_kind("ablate_fid"):
        tables.append(ablation_table(results.of_kind("ablate_cost"), results.of_kind("ablate_fid"),
                                     variants=variants, strict=strict))
    elif variants:
        raise BenchError("--variant names ablate fid models, and no ablate cost or ablate fid result was given")
    for i, entry in enumerate(results.of_kind("ablate_train")):
        table = ablate_train_table(entry)
        table.key += f"_{i + 1}" if i else ""
        tables.append(table)
    for i, entry in enumerate(results.of_kind("study")):
        tables.append(study_table(entry, results.models, "study" if i == 0 else f"study_{i + 1}"))
    demos = results.of_kind("demo")
    if len(demos) > 1:  # several demo runs side by side; then each run's own tables
        tables.append(demo_table(demos))
    for i, entry in enumerate(demos):
        tables += demo_tables(entry, f"_{i + 1}" if len(demos) > 1 else "")
    return tables


def parse_formats(formats) -> tuple[str, ...]:
    """("md", "csv", ...) from a sequence or a comma-separated string; BenchError naming an unknown one."""
    names = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise BenchError(f"--format {','.join(unknown) or '(empty)'}: choose from {', '.join(FORMATS)} "
                         "(comma-separated, e.g. md,tex)")
    return tuple(dict.fromkeys(names))


def report_markdown(tables: list, warnings: list[str], figures: list[tuple[str, str]] = ()) -> str:
    """Every table with its footnotes, then the figures (title, path relative to report.md), then the warnings."""
    parts = ["# pixart-bench report", ""]
    for table in tables:
        parts += [f"## {table.title}", "", table.to_markdown()]
    for title, path in figures:
        parts += [f"## {title}", "", f"![{title}]({Path(path).as_posix()})", ""]
    if warnings:
        parts += ["## Warnings", "", *(f"- {w}" for w in warnings), ""]
    return "\n".join(parts)


def write_report(paths: list[str | os.PathLike], out: str | os.PathLike, formats=FORMATS,
                 models: list[str] | None = None, strict: bool = False, published: bool = True,
                 variants: dict[str, str] | None = None) -> dict:
    """Read ``paths`` (``reports.collect.collect``), build the tables and write them under ``out`` (see
    the module docstring); returns the ``report.json`` record. Bad input is a BenchError naming the file,
    option or setting, raised before anything is written."""
    formats = parse_formats(formats)
    out = check_out_folder(out, "--out")
    results = collect(paths, models)
    tables = build_tables(results, published=published, strict=strict, variants=variants)
    if not tables:
        raise BenchError("the result files give no table")
    warnings = [n.removeprefix("Warning: ") for t in tables for n in t.notes if n.startswith("Warning: ")]
    out.mkdir(parents=True, exist_ok=True)
    written, figures = [], []
    for i, entry in enumerate(results.of_kind("study")):
        from reports.study_figure import write_study_figure

        paths = write_study_figure(entry.data, out if i == 0 else out / f"study_{i + 1}")
        written += paths
        figures += [(f"User study{f' {i + 1}' if i else ''}: first-place share", os.path.relpath(p, out))
                    for p in paths if p.suffix == ".png"]
    for entry in results.of_kind("demo"):  # the demo folder's own figures, where report.md can link them
        for name, title in (("grid.png", "Demo samples"), ("loss_curves.svg", "Reference training loss")):
            if (entry.path.parent / name).is_file():
                figures.append((title, os.path.relpath(entry.path.parent / name, out)))
    written.insert(0, write_text_atomic(out / "report.md", report_markdown(tables, warnings, figures)))
    if any(f in ("md", "tex", "csv") for f in formats):
        (out / "tables").mkdir(exist_ok=True)
    writers = {"md": lambda t: t.to_markdown(), "tex": lambda t: t.to_latex(), "csv": lambda t: t.to_csv()}
    for table in tables:
        for fmt in (f for f in formats if f in writers):
            written.append(write_text_atomic(out / "tables" / f"{table.key}.{fmt}", writers[fmt](table)))
    if "html" in formats:
        from reports.html import write_html

        written.append(write_html(results, tables, out))
    record = {"format": "pixart-bench report", "version": 1,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "inputs": [{"path": str(e.path), "kind": e.kind, "model": e.model, "sha256": e.sha256,
                          "per_image": e.per_image is not None} for e in results.entries],
              "models": results.models, "published": published, "strict": strict, "variants": variants or {},
              "tables": [{"key": t.key, "title": t.title, "rows": len(t.frame), "notes": t.notes} for t in tables],
              "warnings": warnings, "files": [str(Path(p).relative_to(out)) for p in written] + ["report.json"],
              "versions": package_versions(("pixart-bench", "pandas"))}
    write_json_atomic(out / "report.json", record)
    return record


def write_demo_report(folder: str | Path, formats: tuple[str, ...] = ("md", "html")) -> Path:
    """A demo folder's figures, then its ``report.md`` (and ``report.html``) written by ``write_report``
    from the ``results.json`` that ``bench.world.demo.run_demo`` wrote there; returns ``report.md``'s path."""
    from reports.demo import RESULTS, write_demo_figures

    folder = Path(folder)
    write_demo_figures(folder)
    write_report([folder / RESULTS], folder, formats=formats)
    return folder / "report.md"
