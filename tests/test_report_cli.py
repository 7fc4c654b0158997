"""``pixart-bench report`` end to end through the real command line (typer's CliRunner, in process),
on the result files of tests/data/report/: what it writes, --models, --strict, and the errors for a
missing, malformed or unknown result file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bench.cli import app
from reports.collect import collect
from reports.paired import paired_table

DATA = Path(__file__).parent / "data" / "report"
runner = CliRunner()


def report(*args) -> tuple[int, str]:
    result = runner.invoke(app, ["report", *map(str, args)])
    return result.exit_code, result.output


def test_report_writes_every_format(tmp_path):
    code, output = report(DATA / "cb-pixart", DATA / "cb-sdxl", DATA / "fid-pixart", DATA / "study",
                          "--out", tmp_path / "r", "--format", "md,tex,csv")
    assert code == 0, output
    out = tmp_path / "r"
    record = json.loads((out / "report.json").read_text())
    assert [t["key"] for t in record["tables"]] == ["compbench", "compbench_paired", "fid", "study"]
    for key in ("compbench", "compbench_paired", "fid", "study"):
        for fmt in ("md", "tex", "csv"):
            assert (out / "tables" / f"{key}.{fmt}").is_file()
    assert (out / "user_study.png").is_file() and not (out / "report.html").exists()
    md = (out / "report.md").read_text()
    assert "![User study: first-place share](user_study.png)" in md  # the figure, linked from report.md
    assert md.index("## T2I-CompBench") < md.index("## User study: first-place share")
    assert {i["kind"] for i in record["inputs"]} == {"compbench", "fid", "study"}
    assert all(len(i["sha256"]) == 64 for i in record["inputs"])
    text = (out / "report.md").read_text()
    assert "## T2I-CompBench" in text and "## User study" in text and record["warnings"] == []
    frame = pd.read_csv(out / "tables" / "compbench.csv")
    assert list(frame["source"][:2]) == ["measured", "measured"]
    assert f"wrote {len(record['files'])} files" in output


def test_models_select_and_order(tmp_path):
    code, output = report(f"pixart={DATA / 'cb-pixart'}", f"sdxl={DATA / 'cb-sdxl'}", DATA / "study",
                          "--out", tmp_path / "r", "--format", "csv", "--models", "sdxl,pixart", "--no-published")
    assert code == 0, output
    assert list(pd.read_csv(tmp_path / "r" / "tables" / "compbench.csv")["model"]) == ["sdxl", "pixart"]
    assert list(pd.read_csv(tmp_path / "r" / "tables" / "study.csv")["model"]) == ["sdxl", "pixart"]
    code, output = report(f"pixart={DATA / 'cb-pixart'}", "--out", tmp_path / "r2", "--models", "flux")
    assert code == 2 and "--models: no result file has model(s) flux; the files have pixart" in output


def test_strict_names_both_files_and_the_setting(tmp_path):
    code, output = report(DATA / "cb-pixart", DATA / "cb-old", "--out", tmp_path / "r", "--strict")
    assert code == 2
    assert "error: --strict: T2I-CompBench:" in output and "prompt list (color)" in output
    assert str(DATA / "cb-pixart" / "results.json") in output and str(DATA / "cb-old" / "results.json") in output
    assert not (tmp_path / "r").exists()
    # without --strict: a warning, in the footnote and on stderr
    code, output = report(DATA / "fid-pixart", DATA / "fid-other-ref", "--out", tmp_path / "w", "--format", "md")
    assert code == 0 and "warning: FID:" in output and "differ in reference id" in output
    assert "Warning: FID:" in (tmp_path / "w" / "tables" / "fid.md").read_text()


def test_bad_result_files_are_named(tmp_path):
    code, output = report(tmp_path / "nothing", "--out", tmp_path / "r")
    assert code == 2 and f"result file or folder not found: {tmp_path / 'nothing'}" in output
    bad = tmp_path / "bad" / "results.json"
    bad.parent.mkdir()
    bad.write_text('{"format": "pixart-bench compbench", "categories": ')
    code, output = report(bad.parent, "--out", tmp_path / "r")
    assert code == 2 and f"cannot read result file {bad}: invalid JSON at line 1" in output
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"loss": 0.1, "step": 3}))
    code, output = report(other, "--out", tmp_path / "r")
    assert code == 2 and f"{other} is not a result file pixart-bench report reads" in output
    damaged = tmp_path / "damaged"
    shutil.copytree(DATA / "cb-pixart", damaged)
    record = json.loads((damaged / "results.json").read_text())
    del record["categories"]["color"]["ci95"]
    (damaged / "results.json").write_text(json.dumps(record))
    code, output = report(damaged, "--out", tmp_path / "r")
    assert code == 2 and "categories['color'] 'ci95'" in output and str(damaged / "results.json") in output
    code, output = report(DATA / "cb-pixart", "--out", tmp_path / "r", "--format", "md,pdf")
    assert code == 2 and "--format pdf: choose from md, tex, csv, html" in output
    assert not (tmp_path / "r").exists()


def test_one_model_twice_needs_names(tmp_path):
    copy = tmp_path / "again"
    shutil.copytree(DATA / "cb-pixart", copy)
    record = json.loads((copy / "results.json").read_text())
    record["created"] = "2026-12-01T00:00:00+00:00"
    (copy / "results.json").write_text(json.dumps(record))
    code, output = report(DATA / "cb-pixart", copy, "--out", tmp_path / "r")
    assert code == 2 and "model 'PixArt-XL-2-512x512' has two compbench results" in output
    assert report(DATA / "cb-pixart", f"second={copy}", "--out", tmp_path / "r", "--format", "md")[0] == 0


def synthetic_run(folder: Path, model: str, gap: float, difficulty: np.ndarray, rng) -> Path:
    """A compbench run folder whose per-image scores are a prompt's difficulty + ``gap`` + noise."""
    shutil.copytree(DATA / "cb-pixart", folder)
    rows = [{"category": "color", "file": f"p{p}_{4 * p + k:06d}.png", "prompt": f"p{p}",
             "score": float(difficulty[p] + gap + rng.normal(0, 0.05)), "metric": "B-VQA"}
            for p in range(len(difficulty)) for k in range(4)]
    pd.DataFrame(rows).to_csv(folder / "per_image.csv", index=False)
    record = json.loads((folder / "results.json").read_text())
    record["model"]["ckpt"] = model
    (folder / "results.json").write_text(json.dumps(record))
    return folder


def test_paired_comparison_brackets_the_true_difference(tmp_path):
    rng = np.random.default_rng(1)
    difficulty = rng.uniform(0.2, 0.8, 150)
    a = synthetic_run(tmp_path / "a", "a", 0.04, difficulty, rng)
    b = synthetic_run(tmp_path / "b", "b", 0.0, difficulty, rng)
    c = synthetic_run(tmp_path / "c", "c", 0.04, difficulty, rng)
    table = paired_table(collect([a, b, c]).entries)
    rows = table.data.set_index(["model_a", "model_b"])
    ab, ac = rows.loc[("a", "b")], rows.loc[("a", "c")]
    assert ab["ci_low"] < 0.04 < ab["ci_high"] and ab["ci_low"] > 0
    assert ac["ci_low"] < 0 < ac["ci_high"]
    verdicts = dict(zip(zip(table.frame["A"], table.frame["B"]), table.frame["verdict"]))
    assert verdicts[("a", "b")] == "a higher" and verdicts[("a", "c")] == "no clear difference"
    assert verdicts[("b", "c")] == "c higher"


def test_bold_lands_on_the_best_measured_value(tmp_path):
    code, output = report(DATA / "cb-pixart", DATA / "cb-sdxl", "--out", tmp_path / "r", "--format", "md")
    assert code == 0, output
    lines = (tmp_path / "r" / "tables" / "compbench.md").read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:15])}
    results = {e.model: e.data["categories"] for e in collect([DATA / "cb-pixart", DATA / "cb-sdxl"]).entries}
    for category, column in (("color", "Color"), ("shape", "Shape"), ("spatial", "Spatial")):
        best = max(results, key=lambda m: results[m][category]["score"])
        i = header.index(column)
        assert rows[best][i].startswith("**") and all(not r[i].startswith("**") for m, r in rows.items() if m != best)
