"""report reads every result file the CLI writes: a real ``compbench --suite world`` run (the bundled
world model, scored by the world judge) and a real ``compbench audit``, each as its own kind with its own
table; world results of either reader (version 2) and of version 1 (the exact oracle's) render; and every
result format the code writes is one ``report`` reads (or is on the list of files that are not results)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from test_compbench_audit import files_of, make_run, write_official
from typer.testing import CliRunner

from bench.cli import app
from bench.world.demo import REFERENCE
from bench.world.judge import JUDGE_NAME
from reports.build import build_tables, write_report
from reports.collect import collect, detect_kind

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    """``pixart-bench compbench`` on the bundled world model: 1 prompt × 1 image of two suites (~6 s on 2 cores)."""
    out = tmp_path_factory.mktemp("world") / "world-run"
    invoke("compbench", "--ckpt", REFERENCE, "--out", out, "--limit", "1", "--images-per-prompt", "1",
           "--categories", "single,spatial")
    return out


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory):
    """``pixart-bench compbench audit`` of a small run against official files: color compared, shape not."""
    root = tmp_path_factory.mktemp("audit")
    ours = {f: round(0.2 + 0.05 * i, 4) for i, f in enumerate(files_of("color"))}
    run = make_run(root, {"color": ours, "shape": {f"{'a round clock and a square table'}_000000.png": 0.5}})
    write_official(root / "official", "color", {f: v + (3e-4 if i % 3 == 0 else 0.0)
                                                for i, (f, v) in enumerate(ours.items())})
    invoke("compbench", "audit", run, "--official", root / "official")
    return run / "audit"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_real_world_run_is_its_own_kind_with_its_table(world_run):
    record = json.loads((world_run / "results.json").read_text())
    results = collect([world_run])
    (entry,) = results.entries
    assert entry.kind == "compbench_world" and entry.model == "reference"
    (table,) = build_tables(results)
    assert table.key == "compbench_world" and table.title == "T2I-CompBench on the shapes world"
    assert record["version"] == 2 and record["reader"]["key"] == "judge" and record["reader"]["name"] == JUDGE_NAME
    # no evaluator: no learned column
    assert list(table.frame.columns) == ["model", "single (world judge)", "spatial (world judge)"]
    row = table.frame.iloc[0]
    for suite in ("single", "spatial"):
        judged = record["suites"][suite]["judge"]
        half = (judged["ci95"][1] - judged["ci95"][0]) / 2
        assert row[f"{suite} (world judge)"] == f"{judged['score']:.3f} ± {half:.3f}"
        assert table.data.iloc[0][f"{suite}_judge"] == judged["score"] and table.data.iloc[0][f"{suite}_images"] == 1
    assert table.data.iloc[0]["reader"] == JUDGE_NAME
    notes = "\n".join(table.notes)
    assert f"world-run/results.json sha256 {sha(world_run / 'results.json')[:12]}" in notes
    assert f"transformer sha256 {record['model']['transformer_sha256'][:12]}" in notes
    assert "images per prompt 1" in notes and "prompts per suite 1" in notes and "not T2I-CompBench's prompts" in notes
    assert f"reader {JUDGE_NAME}" in notes
    assert f"judge weights sha256 {record['reader']['weights_sha256'][:12]}" in notes
    assert "scored per image by the world judge" in notes and "docs/world.md" in notes
    if record["reader"]["agreement"] is None:
        assert "its agreement with people was not measured for these weights" in notes


def as_oracle(record: dict, version: int) -> dict:
    """``record`` as the exact oracle's: version 2 with reader "oracle", or version 1 (no reader)."""
    record = copy.deepcopy(record)
    for result in record["suites"].values():
        result["oracle"] = {**result.pop("judge"), "metric": "oracle"}
    record["version"] = version
    if version == 1:
        del record["reader"]
    else:
        record["reader"] = {"key": "oracle", "name": "exact oracle (bench.world.oracle)"}
    return record


def test_oracle_and_version_1_results_render_in_report(world_run, tmp_path):
    """A version 2 run of the exact oracle and a version 1 results.json (key "oracle", no reader: the exact
    oracle's) both render in `pixart-bench report`, with "(oracle)" columns; beside a judge run their columns
    are their own and the settings differ (a warning: the rows do not compare)."""
    record = json.loads((world_run / "results.json").read_text())
    for version in (1, 2):
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(as_oracle(record, version)))
        invoke("report", f"m={folder}", "--out", tmp_path / f"r{version}", "--format", "md,csv")
        md = (tmp_path / f"r{version}" / "tables" / "compbench_world.md").read_text()
        assert "single (oracle)" in md and "world judge)" not in md, md
        assert "scored per image by the exact oracle" in md and "reader exact oracle (bench.world.oracle)" in md
    (table,) = build_tables(collect([f"judged={world_run}", f"old={tmp_path / 'v1'}"]))
    assert list(table.frame.columns) == ["model", "single (world judge)", "single (oracle)", "spatial (world judge)",
                                         "spatial (oracle)"]
    assert table.frame["single (oracle)"].tolist()[0] == "-" and table.frame["single (world judge)"].tolist()[1] == "-"
    notes = "\n".join(table.notes)
    assert "the world judge's do not compare with the oracle's" in notes and "differ in reader" in notes


def test_the_judge_agreement_with_people_in_the_lead(world_run, tmp_path):
    record = json.loads((world_run / "results.json").read_text())
    stats = {"images": 12, "human_accepts": 0, "judge_accepts": 1, "precision": 0.0, "precision_ci95": [0.0, 0.0],
             "recall": None, "recall_ci95": None}
    record["reader"]["agreement"] = {"name": JUDGE_NAME, "weights_sha256": record["reader"]["weights_sha256"],
                                     "split": "test", "images": 12, "categories": {"single": stats}, "all": stats}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "results.json").write_text(json.dumps(record))
    (table,) = build_tables(collect([tmp_path / "m"]))
    notes = "\n".join(table.notes)
    assert "(test split), precision / recall of its accept [95% CI]: single 0.00 [0.00, 0.00] / n/a (12 images); " \
           "spatial not measured" in notes


def test_the_learned_metric_and_its_correlation(world_run, tmp_path):
    """A run with B-VQA beside the reader (its record as run_world writes it: the real run's, with the learned
    result added) gets a learned column per suite with r; a second model is a second row, best score bold."""
    record = json.loads((world_run / "results.json").read_text())
    record["suites"]["single"]["learned"] = {"category": "world-single", "metric": "B-VQA", "score": 0.61,
                                             "ci95": [0.5, 0.7], "images": 1, "prompts": 1,
                                             "agreement_with_oracle": {"oracle_mean": 0.0, "learned_mean": 0.61,
                                                                       "pearson_r": 0.4237}}
    other = copy.deepcopy(record)
    record["suites"]["single"]["judge"].update(score=0.5, ci95=[0.0, 1.0])
    other["suites"]["single"]["judge"].update(score=0.75, ci95=[0.5, 1.0])
    other["suites"]["single"]["learned"]["agreement_with_oracle"]["pearson_r"] = None
    for name, r in (("a", record), ("b", other)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(r))
    (table,) = build_tables(collect([f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}"]))
    assert list(table.frame.columns) == ["model", "single (world judge)", "single (B-VQA)", "spatial (world judge)"]
    assert table.frame["single (B-VQA)"].tolist() == ["0.610 ± 0.100 (r = 0.42)", "0.610 ± 0.100 (r = -)"]
    assert table.bold == {(1, "single (world judge)"), (0, "spatial (world judge)"),
                          (1, "spatial (world judge)")}  # ties: both
    assert table.data.iloc[0]["single_pearson_r"] == 0.4237 and pd.isna(table.data.iloc[1]["single_pearson_r"])
    assert "learned metric (single) B-VQA" in "\n".join(table.notes)


def test_an_audit_is_its_own_kind_with_its_parity_table(audit_run):
    record = json.loads((audit_run / "audit.json").read_text())
    color = record["categories"]["color"]
    results = collect([audit_run])
    (entry,) = results.entries
    assert entry.kind == "audit" and entry.model == "tiny"  # the audited run's --ckpt
    (table,) = build_tables(results)
    assert table.key == "compbench_audit" and len(table.frame) == 1  # shape had no official output
    row = table.frame.iloc[0]
    assert row["category"] == "color" and row["our metric"] == "B-VQA" and row["images"] == "9"
    assert row["ours"] == f"{color['ours']:.4f}" and row["theirs"] == f"{color['theirs']:.4f}"
    assert row["max abs diff"] == f"{color['max_abs_diff']:.2e}" and row["over tolerance"] == "3"
    assert table.data.iloc[0]["over_tolerance"] == 3 and table.data.iloc[0]["pearson_r"] == color["pearson_r"]
    notes = "\n".join(table.notes)
    official = Path(color["official_file"])
    assert f"color/annotation_blip/vqa_result.json sha256 {sha(official)[:12]}" in notes
    assert f"results.json sha256 {record['run']['results_sha256'][:12]}" in notes
    assert "No official output (not compared): tiny: shape." in notes and "4-decimal text" in notes
    assert "does not check which code wrote them" in notes
    assert f"audit/audit.json sha256 {sha(audit_run / 'audit.json')[:12]}" in notes


def test_report_writes_both_in_every_format(world_run, audit_run, tmp_path):
    record = write_report([world_run, audit_run], tmp_path / "r")
    assert [(i["kind"], i["model"]) for i in record["inputs"]] == [("compbench_world", "reference"), ("audit", "tiny")]
    assert [t["key"] for t in record["tables"]] == ["compbench_audit", "compbench_world"]
    for key in ("compbench_audit", "compbench_world"):
        for fmt in ("md", "tex", "csv"):
            assert (tmp_path / "r" / "tables" / f"{key}.{fmt}").is_file()
    page = (tmp_path / "r" / "report.html").read_text()
    assert "T2I-CompBench: parity with the official scripts" in page and "T2I-CompBench on the shapes world" in page
    for key in ("compbench_audit", "compbench_world"):  # pdflatex-safe: no Greek letter or '|' left unescaped
        tex = (tmp_path / "r" / "tables" / f"{key}.tex").read_text()
        assert "Δ" not in tex and "|" not in tex and "±" not in tex, key


# every "format" a result writer stamps, and the kind report reads it as (None: not a result file)
FORMATS = {"pixart-bench compbench": "compbench", "pixart-bench compbench (shapes world)": "compbench_world",
           "pixart-bench compbench audit": "audit", "pixart-bench ablate cost": "ablate_cost",
           "pixart-bench ablate fid": "ablate_fid",
           "pixart-bench generation": None,  # a generation manifest
           "pixart-bench report": None,  # report.json, report's own record
           "pixart-bench study": None,  # a study design (its results have models and criteria)
           "pixart-bench-pipeline": None, "pixart-bench-fid-statistics/1": None}


def test_every_format_the_code_writes_is_read_or_listed():
    found = set()
    for package in ("bench", "human_study", "pixart", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            found |= set(re.findall(r'"format": "(pixart-bench[^"]*)"', text))
            found |= set(re.findall(r'^FORMAT = "(pixart-bench[^"]*)"', text, re.M))
    assert found <= set(FORMATS), f"formats report does not know: {sorted(found - set(FORMATS))}"
    for fmt, kind in FORMATS.items():
        assert detect_kind({"format": fmt}) == kind, fmt
