"""Tables as text: a header and rows of formatted cells (``markdown_table``, from ``bench.markdown``),
and the report's ``Table``: one pandas frame written as GitHub Markdown, LaTeX (booktabs), CSV or an
HTML fragment, with its best cells in bold, published rows marked, and footnotes saying where its
numbers come from.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from bench.markdown import markdown_table  # noqa: F401  (here too: the report's text tables)

PUBLISHED = "published, not measured here"
MEASURED = "measured"


# characters LaTeX reads as commands, and the symbols of these tables that need math mode under pdflatex
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "<": r"\textless{}", ">": r"\textgreater{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"\ensuremath{\pm}",
          "α": r"\ensuremath{\alpha}", "Σ": r"\ensuremath{\Sigma}", "×": r"\ensuremath{\times}",
          "−": "-", "–": "--", "·": r"\ensuremath{\cdot}", "≤": r"\ensuremath{\leq}", "↓": r"\ensuremath{\downarrow}",
          "↑": r"\ensuremath{\uparrow}"}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX))


def latex_escape(text) -> str:
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], str(text))


@dataclass
class Table:
    """One table of the report.

    ``frame``: the cells as shown (strings); ``bold``: the (row position, column) cells in bold (best
    measured values); ``published``: the row positions of published numbers, which a column or label
    marks and which are never bold; ``notes``: footnote lines (provenance, warnings); ``data``: the
    numbers behind the cells for CSV (default: ``frame``)."""

    key: str
    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    bold: set[tuple[int, str]] = field(default_factory=set)
    published: set[int] = field(default_factory=set)
    data: pd.DataFrame | None = None

    def _cells(self, mark) -> pd.DataFrame:
        shown = self.frame.astype(str).copy()
        for row, column in self.bold:
            shown.iloc[row, shown.columns.get_loc(column)] = mark(shown.iloc[row, shown.columns.get_loc(column)])
        return shown

    def to_markdown(self) -> str:
        """A GitHub Markdown table (``|`` in cells escaped), then each note as a paragraph."""
        esc = lambda s: str(s).replace("|", "\\|")
        shown = self._cells(lambda s: f"**{s}**").map(esc)
        shown.columns = [esc(c) for c in shown.columns]
        text = shown.to_markdown(index=False, tablefmt="github", disable_numparse=True)
        return text + "\n" + "".join(f"\n{esc(n)}\n" for n in self.notes)

    def to_latex(self) -> str:
        """A ``table`` float (booktabs rules; ``\\usepackage{booktabs}``) with the title as caption and
        the notes below the tabular in small type."""
        shown = self.frame.astype(str)
        bold = {(r, shown.columns.get_loc(c)) for r, c in self.bold}

        def css(frame: pd.DataFrame) -> pd.DataFrame:
            out = pd.DataFrame("", index=frame.index, columns=frame.columns)
            for r, c in bold:
                out.iloc[r, c] = "font-weight: bold;"
            return out

        styler = (shown.reset_index(drop=True).style.hide(axis="index").apply(css, axis=None)
                  .format(latex_escape).format_index(latex_escape, axis=1))
        text = styler.to_latex(hrules=True, convert_css=True, caption=latex_escape(self.title),
                               label=f"tab:{self.key}", position_float="centering",
                               column_format="l" * shown.shape[1])
        if self.notes:
            notes = "\n".join(f"\\par {latex_escape(n)}" for n in self.notes)
            text = text.replace("\\end{table}", f"{{\\footnotesize\n{notes}\n}}\n\\end{{table}}")
        return text

    def to_csv(self) -> str:
        """The numbers (``data``, else the cells) as CSV, one header line; notes are in report.json."""
        return (self.data if self.data is not None else self.frame).to_csv(index=False, lineterminator="\n")

    def to_html(self) -> str:
        """A ``<table>`` (bold cells in ``<strong>``, published rows with class "published"), then a
        ``<p class="footnote">`` per note; every text escaped."""
        e = lambda s: html.escape(str(s), quote=True)
        head = "".join(f"<th>{e(c)}</th>" for c in self.frame.columns)
        rows = []
        for i, (_, row) in enumerate(self.frame.astype(str).iterrows()):
            cells = "".join(f"<td><strong>{e(v)}</strong></td>" if (i, c) in self.bold else f"<td>{e(v)}</td>"
                            for c, v in row.items())
            rows.append(f'<tr class="published">{cells}</tr>' if i in self.published else f"<tr>{cells}</tr>")
        notes = "".join(f'<p class="footnote">{e(n)}</p>' for n in self.notes)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{notes}"


def best_cells(values: pd.DataFrame, higher: dict[str, bool], measured: list[int]) -> set[tuple[int, str]]:
    """The (row position, column) cells holding each column's best value among the ``measured`` rows
    (``higher[column]``: whether more is better); ties are all bold. A column with fewer than two
    measured values has no best."""
    cells = set()
    for column, more in higher.items():
        series = pd.to_numeric(values[column], errors="coerce").iloc[measured].dropna()
        if len(series) < 2:
            continue
        best = series.max() if more else series.min()
        cells |= {(int(values.index.get_loc(i)), column) for i in series.index[series == best]}
    return cells
