"""The report's tables (``reports``) on small result files written as the commands write them
(tests/data/report/, made by its make_fixtures.py): golden Markdown / LaTeX / CSV (``UPDATE_GOLDEN=1``
rewrites tests/data/report/golden/; test_report_paired.py recomputes the paired table's numbers with
scipy), and the rules behind them: bold on the best measured value and never on a published row,
published rows marked in every format, escaping, the paired bootstrap over prompts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.stats import paired_bootstrap, paired_bootstrap_by_group
from reports.build import build_tables
from reports.collect import collect, detect_kind
from reports.tables import PUBLISHED, Table

DATA = Path(__file__).parent / "data" / "report"
GOLDEN = DATA / "golden"
ALL = ["cb-pixart", "cb-sdxl", "cb-tuned", "cb-base", "fid-pixart", "fid-sdxl", "ablate-cost", "ablate-fid", "study",
       "demo"]
VARIANTS = {"single": "XL-2-256", "block": "XL-2-256:adaln=block"}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with UPDATE_GOLDEN=1 once and check it by eye"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.fixture(scope="module")
def tables() -> dict[str, Table]:
    results = collect([DATA / p for p in ALL])
    return {t.key: t for t in build_tables(results, published=True, strict=False, variants=VARIANTS)}


KEYS = ["compbench", "compbench_paired", "fid", "ablation", "study"]  # then the demo's own tables (reports.demo)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("fmt", ["md", "tex", "csv"])
def test_golden(tables, key, fmt):
    table = tables[key]
    check_golden(f"{key}.{fmt}", {"md": table.to_markdown, "tex": table.to_latex, "csv": table.to_csv}[fmt]())


def test_the_tables_are_those_of_the_files(tables):
    assert list(tables)[:len(KEYS)] == KEYS and all(k.startswith("demo") for k in list(tables)[len(KEYS):])


def test_bold_lands_on_the_best_measured_value_never_a_published_one(tables):
    t = tables["compbench"]
    measured = [i for i in range(len(t.frame)) if i not in t.published]
    assert measured == [0, 1, 2, 3] and t.published == set(range(4, len(t.frame)))
    for column in ("Color", "Shape", "Spatial"):
        scores = [float(t.frame[column].iloc[i].split(" ± ")[0]) for i in measured]
        best = measured[int(np.argmax(scores))]
        assert {(r, c) for r, c in t.bold if c == column} == {(best, column)}
    # a published color score (DALL-E 3, 0.7785) beats every measured one, and is not bold
    assert max(t.data["color"].iloc[list(t.published)]) > max(t.data["color"].iloc[measured])
    assert not any(r in t.published for r, _ in t.bold)
    # FID: lower is better
    f = tables["fid"]
    assert f.bold == {(int(np.argmin(f.data["FID"].iloc[:2])), "FID")}


def test_published_rows_are_marked_in_every_format(tables):
    t = tables["compbench"]
    assert all(t.frame["source"].iloc[i] == PUBLISHED for i in t.published)
    for text in (t.to_markdown(), t.to_latex(), t.to_csv(), t.to_html()):
        assert text.count(PUBLISHED) >= len(t.published)
    assert t.to_html().count('<tr class="published">') == len(t.published)


def test_no_published_rows_when_not_asked():
    results = collect([DATA / "cb-pixart", DATA / "fid-pixart"])
    for t in build_tables(results, published=False, strict=False):
        assert not t.published and PUBLISHED not in t.to_csv()


def test_first_release_rows_join_when_a_run_used_those_settings():
    t = build_tables(collect([DATA / "cb-old"]), published=True, strict=False)[0]
    assert any("first released" in m for m in t.frame["model"])
    t = build_tables(collect([DATA / "cb-pixart"]), published=True, strict=False)[0]
    assert not any("first released" in m for m in t.frame["model"])


def test_extra_categories_only_when_a_measured_row_has_them(tables):
    assert "3D-Spatial" not in tables["compbench"].frame.columns  # the published ++ rows have it; no run does


def test_cells_are_escaped():
    t = Table("x", "a & b", pd.DataFrame({"model": ["<b>m|1</b>", "α_2 & 100%"], "score": ["1", "2"]}),
              notes=["<script>", "50% of {x}"], bold={(0, "score")})
    html = t.to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;m|1&lt;/b&gt;" in html
    assert "<td><strong>1</strong></td>" in html
    md = t.to_markdown()
    assert "m\\|1" in md and "**1**" in md
    tex = t.to_latex()
    assert r"\ensuremath{\alpha}\_2 \& 100\%" in tex and r"50\% of \{x\}" in tex and r"\bfseries 1" in tex
    assert r"\caption{a \& b}" in tex


def test_paired_ci_of_groups_brackets_the_true_difference():
    """Per-image scores with a shared prompt effect and a true gap of 0.05: the CI over prompts
    brackets 0.05 and excludes 0, and is tighter than the unpaired spread suggests."""
    rng = np.random.default_rng(0)
    prompts = np.repeat(np.arange(200), 4)
    difficulty = rng.normal(0.5, 0.2, 200)[prompts]
    a = difficulty + 0.05 + rng.normal(0, 0.05, len(prompts))
    b = difficulty + rng.normal(0, 0.05, len(prompts))
    result = paired_bootstrap_by_group(a, b, prompts)
    assert result.n == 200
    assert result.ci[0] < 0.05 < result.ci[1] and result.ci[0] > 0
    assert result.difference == pytest.approx(a.mean() - b.mean())
    # the same as the paired bootstrap of the per-prompt means
    means = lambda x: pd.Series(x).groupby(prompts).mean().to_numpy()
    direct = paired_bootstrap(means(a), means(b))
    assert result.ci == pytest.approx(direct.ci) and result.difference == pytest.approx(direct.difference)


def test_kinds_are_told_apart_by_content():
    import json

    kinds = {p: detect_kind(json.loads(f.read_text())) for p in ALL for f in collect([DATA / p]).entries[0:1]
             for f in [f.path]}
    assert kinds == {"cb-pixart": "compbench", "cb-sdxl": "compbench", "cb-tuned": "compbench", "cb-base": "compbench",
                     "fid-pixart": "fid", "fid-sdxl": "fid",
                     "ablate-cost": "ablate_cost", "ablate-fid": "ablate_fid", "study": "study", "demo": "demo"}
    assert detect_kind({"models": [], "scores": {}}) is None


def test_ablation_join_puts_each_fid_on_its_config(tables):
    t = tables["ablation"].data
    assert t.set_index("variant").loc["XL-2-256", "FID"] == 24.7
    assert t.set_index("variant").loc["XL-2-256:adaln=block", "FID"] == 23.9
    assert pd.isna(t.set_index("variant").loc["XL-2-256:depth=56", "FID"])
