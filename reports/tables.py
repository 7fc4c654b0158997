"""Tables as text: a header, rows of already formatted cells."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """GitHub Markdown table lines; every row must have one cell per column."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells for {len(header)} columns: {row}")
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"  # noqa: E731
    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]
