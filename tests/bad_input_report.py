"""Bad-input cases for ``report`` and ``reports.build.write_report`` (see tests/bad_input.py); every
case fails before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from bad_input import ApiCase, CliCase, escape, write

from bench.errors import BenchError
from reports.build import write_report

DATA = Path(__file__).parent / "data" / "report"


def damaged(f: Path, change) -> Path:
    record = json.loads((DATA / "cb-pixart" / "results.json").read_text())
    change(record)
    return write(f / "run" / "results.json", json.dumps(record))


def no_score_column(f: Path) -> Path:
    """A compbench run folder whose per_image.csv has no score column."""
    write(f / "run" / "per_image.csv", "category,file,prompt,metric\n")
    return damaged(f, lambda r: None).parent


CLI_CASES = [
    CliCase("report: a missing result folder", lambda f, i: ["report", f / "nope", "--out", f / "out"],
            r"result file or folder not found: .*nope"),
    CliCase("report: a folder without result files", lambda f, i: ["report", write(f / "x" / "a.txt", "").parent,
                                                                   "--out", f / "out"],
            r"holds no result file \(results.json, fid.json"),
    CliCase("report: truncated JSON", lambda f, i: ["report", write(f / "results.json", '{"fid": '), "--out", f / "o"],
            r"cannot read result file .*results.json: invalid JSON at line 1"),
    CliCase("report: not a result file", lambda f, i: ["report", write(f / "r.json", '{"a": 1}'), "--out", f / "o"],
            r"r.json is not a result file pixart-bench report reads"),
    CliCase("report: a category without its score",
            lambda f, i: ["report", damaged(f, lambda r: r["categories"]["shape"].pop("score")), "--out", f / "o"],
            r"results.json: a compbench result without categories\['shape'\] 'score'"),
    CliCase("report: an unknown format", lambda f, i: ["report", DATA / "fid-pixart", "--out", f / "o", "--format",
                                                       "docx"], r"--format docx: choose from md, tex, csv, html"),
    CliCase("report: --models names no model", lambda f, i: ["report", DATA / "fid-pixart", "--out", f / "o",
                                                             "--models", "flux"],
            r"--models: no result file has model\(s\) flux"),
    CliCase("report: --variant without =", lambda f, i: ["report", DATA / "ablate-fid", "--out", f / "o",
                                                         "--variant", "block"], r"--variant 'block': give NAME=CONFIG"),
    CliCase("report: --variant names no model", lambda f, i: ["report", DATA / "ablate-fid", "--out", f / "o",
                                                              "--variant", "wide=XL-2-256"],
            r"--variant: no ablate fid model is named wide"),
    CliCase("report: --strict and two FID references",
            lambda f, i: ["report", DATA / "fid-pixart", DATA / "fid-other-ref", "--out", f / "o", "--strict"],
            r"--strict: FID: .*fid-pixart/fid.json and .*fid-other-ref/fid.json differ in reference id"),
    CliCase("report: --out is a file", lambda f, i: ["report", DATA / "fid-pixart", "--out", write(f / "o", "x")],
            r"--out .*o is a file, not a folder"),
]

API_CASES = [
    ApiCase("write_report: NAME= on a study", lambda f, i: ([f"s={DATA / 'study'}"], f / "o"), write_report, BenchError,
            r"a study result holds several models or variants; give it without NAME="),
    ApiCase("write_report: per_image.csv without a score column",
            lambda f, i: ([no_score_column(f)], f / "o"), write_report, BenchError, r"per_image.csv lack the column\(s\) score"),
    ApiCase("write_report: no path", lambda f, i: ([], f / "o"), write_report, BenchError,
            escape("give at least one result file or folder")),
]


# ---- compbench --suite world and compbench audit results ------------------------------------------------------------

WORLD = {"format": "pixart-bench compbench (shapes world)", "version": 1, "model": {"ckpt": "bench/world/reference"},
         "protocol": {"images_per_prompt": 1, "seed": 0, "limit": 1}, "evaluators": {},
         "suites": {"single": {"oracle": {"category": "single", "metric": "oracle", "score": 0.5, "ci95": [0.0, 1.0],
                                          "images": 2, "prompts": 2}}}}
AUDIT = {"format": "pixart-bench compbench audit", "version": 1, "model": {"ckpt": "models/tiny"},
         "run": {"path": "runs/tiny"}, "official": {"path": "official"}, "tolerance": 1e-4,
         "categories": {"color": {"status": "compared", "metric": "B-VQA", "images": 2, "ours": 0.5, "theirs": 0.5,
                                  "max_abs_diff": 0.0, "mean_abs_diff": 0.0, "pearson_r": None, "over_tolerance": 0}}}


WORLD_V2 = {**WORLD, "version": 2, "reader": {"key": "judge", "name": "world judge", "weights_sha256": "ab" * 32,
                                              "agreement": None},
            "suites": {"single": {"judge": {**WORLD["suites"]["single"]["oracle"], "metric": "world judge"}}}}


def world_v2(f: Path, change) -> list:
    """`report` on a version 2 world record (the world judge's) changed by ``change``."""
    record = json.loads(json.dumps(WORLD_V2))
    change(record)
    return ["report", write(f / "world" / "results.json", json.dumps(record)), "--out", f / "o"]


def world_without_score(f: Path) -> Path:
    record = json.loads(json.dumps(WORLD))
    del record["suites"]["single"]["oracle"]["score"]
    return write(f / "world" / "results.json", json.dumps(record))


def audit_without(key: str):
    def setup(f: Path, i) -> list:
        record = json.loads(json.dumps(AUDIT))
        del record["categories"]["color"][key]
        return ["report", write(f / "audit" / "audit.json", json.dumps(record)), "--out", f / "o"]
    return setup


CLI_CASES += [
    CliCase("report: a world suite without its oracle score", lambda f, i: ["report", world_without_score(f),
                                                                           "--out", f / "o"],
            r"world/results.json: a compbench_world result without suites\['single'\]\['oracle'\] 'score'"),
    CliCase("report: a version 2 world suite without its judge score", lambda f, i: world_v2(
        f, lambda r: r["suites"]["single"]["judge"].pop("score")),
        r"world/results.json: a compbench_world result without suites\['single'\]\['judge'\] 'score'"),
    CliCase("report: a version 2 world suite scored under the other reader's key", lambda f, i: world_v2(
        f, lambda r: r["reader"].update(key="oracle")),
        r"world/results.json: suites\['single'\] lacks 'oracle' \(the scores of its reader\)"),
    CliCase("report: a version 2 world result without its reader", lambda f, i: world_v2(f, lambda r: r.pop("reader")),
            r"world/results.json: a compbench_world result without 'reader'"),
    CliCase("report: a world result with an unknown reader", lambda f, i: world_v2(
        f, lambda r: r["reader"].update(key="people")),
        r"world/results.json: reader\['key'\] must be 'judge' or 'oracle', got 'people'"),
    CliCase("report: a world result of a later version", lambda f, i: world_v2(f, lambda r: r.update(version=3)),
            r"world/results.json: a compbench world result of version 3; this pixart-bench reads versions 1 and 2"),
    CliCase("report: a world result without suites", lambda f, i: [
        "report", write(f / "w" / "results.json", json.dumps({**WORLD, "suites": {}})), "--out", f / "o"],
        r"w/results.json: a compbench world result with no suites"),
    CliCase("report: an audit category without its largest difference", audit_without("max_abs_diff"),
            r"audit/audit.json: a audit result without categories\['color'\] 'max_abs_diff'"),
    CliCase("report: an audit category without its status", audit_without("status"),
            r"audit/audit.json: a audit result without categories\['color'\] 'status'"),
    CliCase("report: a folder holding only a damaged audit.json", lambda f, i: [
        "report", write(f / "a" / "audit.json", '{"format": "pixart-bench compbench audit", ').parent,
        "--out", f / "o"],
        r"cannot read result file .*a/audit.json: invalid JSON"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("report: --out holds another command's run", lambda f, i: [
        "report", i.demo_report, "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
]
