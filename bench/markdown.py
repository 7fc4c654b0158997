"""Markdown tables as text: ``markdown_table(header, rows)``, for the tables the benchmarks print with
their results (T2I-CompBench's scores, its audit, the world suites). ``reports.tables`` offers the same
function beside the report's own ``Table``.
"""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """GitHub Markdown table lines; every row must have one cell per column."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells for {len(header)} columns: {row}")
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"
    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]
