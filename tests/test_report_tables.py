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
# fid.json files of every protocol, beside fid-pixart and fid-sdxl (COCO-30K zero-shot)
FID_FOLDERS = ["fid-folder-a", "fid-folder-b", "fid-coco-5k", "fid-world", "fid-legacy"]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with UPDATE_GOLDEN=1 once; the tests check its numbers"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.fixture(scope="module")
def tables() -> dict[str, Table]:
    results = collect([DATA / p for p in ALL + FID_FOLDERS])
    return {t.key: t for t in build_tables(results, published=True, strict=False, variants=VARIANTS)}


# then the demo's own tables (reports.demo)
KEYS = ["compbench", "compbench_paired", "fid", "fid_folders", "ablation", "study"]


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


# ---- FID: rows labelled by the protocol that made them; bold only among rows that compare --------------------------

STANDARD_INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"  # torch-fidelity's


def fid_files(folders) -> dict[str, dict]:
    """Model name → its fid.json, read here (not through reports)."""
    import json

    files = {}
    for folder in folders:
        data = json.loads((DATA / folder / "fid.json").read_text())
        files[data["model"]["name"]] = data
    return files


def is_coco_30k(d: dict) -> bool:
    p = d.get("protocol")
    return (isinstance(p, dict) and p.get("name") == "coco-30k zero-shot" and d["n_gen"] == 30_000
            and d["extractor"]["name"] == "inception-v3-compat"
            and d["extractor"]["weights_sha256"] == STANDARD_INCEPTION_SHA256)


def compare_key(d: dict):
    p = d.get("protocol")
    if not isinstance(p, dict):
        return None  # protocol unknown: compares with nothing
    return (p["name"], d["extractor"]["name"], d["extractor"]["weights_sha256"], d["reference"]["id"],
            d["settings"]["resize"], d["n_gen"])


def expected_bold(models: list[str], files: dict) -> set:
    """(row, "FID") of the lowest FID of every set of two or more rows with one compare_key."""
    keys = [compare_key(files[m]) for m in models]
    bold = set()
    for key in set(keys) - {None}:
        rows = [i for i, k in enumerate(keys) if k == key]
        if len(rows) > 1:
            low = min(files[models[i]]["fid"] for i in rows)
            bold |= {(i, "FID") for i in rows if files[models[i]]["fid"] == low}
    return bold


def measured_models(t: Table) -> list[str]:
    return [t.frame["model"].iloc[i] for i in range(len(t.frame)) if i not in t.published]


def test_fid_rows_go_to_the_table_of_their_protocol(tables):
    from bench.fid.published import FID_30K

    files = fid_files(["fid-pixart", "fid-sdxl", *FID_FOLDERS])
    coco, folders = tables["fid"], tables["fid_folders"]
    assert coco.title == "COCO-30K zero-shot FID" and folders.title == "FID (image folders)"
    assert set(measured_models(coco)) == {m for m, d in files.items() if is_coco_30k(d)} == {"pixart", "sdxl"}
    assert sorted(folders.frame["model"]) == sorted(m for m, d in files.items() if not is_coco_30k(d))
    # published FID-30K rows only in the COCO-30K table, every one of them, marked
    published = [r["model"] for r in FID_30K]
    assert [coco.frame["model"].iloc[i] for i in sorted(coco.published)] == published
    assert not folders.published and not set(published) & set(folders.frame["model"])
    for text in (folders.to_markdown(), folders.to_latex(), folders.to_csv(), folders.to_html()):
        assert PUBLISHED not in text
    # each folder row names its protocol, N, reference and extractor as its file records them
    for i, model in enumerate(folders.frame["model"]):
        d, row = files[model], folders.frame.iloc[i]
        protocol = d["protocol"]["name"] if isinstance(d.get("protocol"), dict) else "unknown"
        assert (row["protocol"], row["N"], row["extractor"], row["resize"]) == (
            protocol, f"{d['n_gen']:,}", d["extractor"]["name"], d["settings"]["resize"])
        assert row["reference id"] == d["reference"]["id"][:12] and row["reference N"] == f"{d['n_ref']:,}"


def test_fid_bold_is_the_lowest_among_rows_that_compare(tables):
    files = fid_files(["fid-pixart", "fid-sdxl", *FID_FOLDERS])
    for key in ("fid", "fid_folders"):
        t = tables[key]
        models = measured_models(t)
        expected = expected_bold(models, files)
        assert expected and t.bold == expected, key
        # rows that share a group letter are exactly those that compare
        keys = [compare_key(files[m]) for m in models]
        for i, j in ((i, j) for i in range(len(models)) for j in range(len(models)) if i != j):
            same = keys[i] is not None and keys[i] == keys[j]
            assert (t.frame["group"].iloc[i] == t.frame["group"].iloc[j] != "-") == same, (key, i, j)
    # the lowest FID of the folder table (a file without a protocol record) compares with nothing: not bold
    folders = tables["fid_folders"]
    lowest = int(np.argmin([files[m]["fid"] for m in measured_models(folders)]))
    assert folders.frame["protocol"].iloc[lowest] == "unknown" and (lowest, "FID") not in folders.bold
    # published rows beat the measured ones and are never bold
    coco = tables["fid"]
    assert min(float(coco.frame["FID"].iloc[i]) for i in coco.published) < min(files[m]["fid"] for m in ("pixart",
                                                                                                           "sdxl"))
    assert not any(r in coco.published for r, _ in coco.bold)


def test_fid_tables_show_kid_where_recorded(tables):
    files = fid_files(["fid-pixart", "fid-sdxl", *FID_FOLDERS])
    shown = 0
    for key in ("fid", "fid_folders"):
        t = tables[key]
        for i, model in enumerate(measured_models(t)):
            d = files[model]
            want = f"{d['kid_mean']:.4f} ± {d['kid_std']:.4f}" if "kid_mean" in d else "-"
            assert t.frame["KID"].iloc[i] == want
            number = t.data["KID"].iloc[i]
            assert number == d["kid_mean"] if "kid_mean" in d else pd.isna(number)
            shown += want != "-"
    assert shown >= 3 and " ± " in tables["fid"].to_latex().replace(r"\ensuremath{\pm}", " ± ")


def test_a_folder_fid_of_20_images_is_not_shown_as_a_coco_30k_row():
    """The finding: a folder FID of 20 images beside a COCO-30K run (and the published rows) was one "zero-shot
    FID" table, the lower bold. Now each has its own table; neither row compares with anything, so none is bold."""
    t = {t.key: t for t in build_tables(collect([DATA / "fid-folder-a", DATA / "fid-pixart"]), published=True)}
    assert list(t) == ["fid", "fid_folders"]
    assert measured_models(t["fid"]) == ["pixart"] and list(t["fid_folders"].frame["model"]) == ["small-a"]
    assert not t["fid"].bold and not t["fid_folders"].bold
    small_n = [n for n in t["fid_folders"].notes if n.startswith("Small N:")]
    assert len(small_n) == 1 and "small-a (N = 20, at most the 2,048 feature dimensions: singular covariance)" in (
        small_n[0])
    assert not any(n.startswith("Small N:") for n in t["fid"].notes)
    # folder FIDs alone: no COCO-30K table, so no published rows either
    only = build_tables(collect([DATA / "fid-folder-a", DATA / "fid-folder-b"]), published=True)
    assert [x.key for x in only] == ["fid_folders"] and not only[0].published


def test_a_coco_30k_claim_the_figures_do_not_bear_out_is_a_coco_n_row(tmp_path):
    import json
    import shutil

    copy = shutil.copytree(DATA / "fid-sdxl", tmp_path / "fid-random-inception")
    record = json.loads((copy / "fid.json").read_text())
    assert record["protocol"]["name"] == "coco-30k zero-shot"
    record["extractor"]["weights_sha256"] = "6726825d" + "0" * 56  # not torch-fidelity's file, whatever its name
    (copy / "fid.json").write_text(json.dumps(record))
    t = {t.key: t for t in build_tables(collect([DATA / "fid-pixart", copy]), published=True)}
    assert measured_models(t["fid"]) == ["pixart"]
    assert list(t["fid_folders"].frame["protocol"]) == ["coco zero-shot"] and not t["fid_folders"].bold


def test_image_folder_rows_of_one_protocol_warn_when_their_settings_differ(tmp_path):
    import json
    import shutil

    from bench.errors import BenchError

    # rows of different protocols stand side by side, labelled: no warning
    t = build_tables(collect([DATA / "fid-folder-a", DATA / "fid-world", DATA / "fid-legacy"]), strict=True)[0]
    assert t.key == "fid_folders" and not any(n.startswith("Warning: ") for n in t.notes)
    # two folder FIDs against other references: a warning, and with --strict an error naming both files
    copy = shutil.copytree(DATA / "fid-folder-b", tmp_path / "fid-folder-c")
    record = json.loads((copy / "fid.json").read_text())
    record["reference"]["id"] = "88" * 32
    record["model"]["name"] = "small-c"
    (copy / "fid.json").write_text(json.dumps(record))
    t = build_tables(collect([DATA / "fid-folder-a", copy]))[0]
    warnings = [n for n in t.notes if n.startswith("Warning: ")]
    assert len(warnings) == 1 and "FID (image folders), folder rows:" in warnings[0] and "reference id" in warnings[0]
    assert not t.bold and set(t.frame["group"]) == {"-"}
    with pytest.raises(BenchError, match=r"--strict: FID \(image folders\), folder rows: .*fid-folder-a.*fid-folder-c"):
        build_tables(collect([DATA / "fid-folder-a", copy]), strict=True)
