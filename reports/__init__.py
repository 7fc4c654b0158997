"""Report tables and figures, made from result files (``results.json``, manifests, ``training.json``).

Benchmarks write their figures as JSON next to their images; this package turns them into what a
user pastes into a paper or reads in a browser, and never recomputes a metric
(``pixart-bench report``):

- ``reports.collect``: result files and folders → entries of a known kind, with their hashes;
- ``reports.build``: the tables of the entries, written as ``report.md``, ``tables/`` and ``report.json``;
- ``reports.tables``: the ``Table`` (Markdown, LaTeX, CSV, HTML) and Markdown table lines; one
  module per kind of table (``compbench_table``, ``paired``, ``audit_table`` (parity with the official
  scripts, from ``compbench audit``), ``world_table`` (``compbench --suite world``), ``fid_table``,
  ``ablate_table``, ``study_table``) and ``provenance`` for their footnotes;
- ``reports.html``: ``report.html``, one self-contained page with the tables, figures and sample grids;
- ``reports.study_figure``: the user-study bar chart (PNG and SVG);
- ``reports.figures``: an image grid (prompt → samples) and loss curves as SVG;
- ``reports.demo``: the demo's tables, ``grid.png`` and ``loss_curves.svg``, and its report.
"""
