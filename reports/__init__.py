"""Report tables and figures, made from result files (``results.json``, manifests, ``training.json``).

Benchmarks write their figures as JSON next to their images; this package turns them into what a
user pastes into a paper or reads in a browser, and never recomputes a metric:

- ``reports.tables``: Markdown tables (LaTeX / CSV / HTML come with ``pixart-bench report``);
- ``reports.figures``: an image grid (prompt → samples) and loss curves as SVG;
- ``reports.demo``: the demo's ``report.md``, ``grid.png`` and ``loss_curves.svg`` from a demo folder.
"""
