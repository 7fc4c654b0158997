"""compbench audit: a run's per-image scores against official vqa_result.json files written in the
official format from known scores (4-decimal text answers, position vs index numbering with
non-contiguous file numbers, shuffled entries); every statistic checked against numpy / scipy, and
the command end to end."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.audit import AUDIT, FORMAT, NO_OUTPUT, plan_audit, run_audit
from bench.compbench.results import per_image_rows, summarise, write_per_image_csv
from bench.compbench.samples import ImageScore, SampleImage, write_vqa_result
from bench.errors import BenchError

PROMPTS = {"color": ["a red apple and a green leaf", "a blue car and a yellow bus", "a pink rose and a black cat"],
           "shape": ["a round clock and a square table"],
           "spatial": ["a dog on the left of a cat", "a cup on the right of a phone"],
           "non_spatial": ["a man riding a horse", "a woman reading a book"]}
# non-contiguous file numbers: image k of prompt i is 10·i + k, and some images are missing
INDICES = [[0, 1, 2], [10, 12], [20, 23, 24, 29]]
TEXT = "color"  # B-VQA: 4-decimal text answers, numbered by position
PLACES = {"color": ("annotation_blip", "position"), "shape": ("annotation_blip", "position"),
          "spatial": ("labels/annotation_obj_detection_2d", "index"), "non_spatial": ("annotation_clip", "position")}
METRICS = {"color": "B-VQA", "shape": "B-VQA", "spatial": "2D spatial (UniDet)", "non_spatial": "CLIPScore"}


def files_of(category: str) -> list[str]:
    return [f"{p}_{k:06d}.png" for p, ks in zip(PROMPTS[category], INDICES) for k in ks]


def index(file: str) -> int:
    return int(file.rsplit("_", 1)[1].split(".")[0])


def make_run(root, scores: dict[str, dict[str, float]], evaluators: dict | None = None, metrics: dict | None = None):
    """A compbench --out folder (results.json, per_image.csv) made with the run's own writers."""
    run = root / "run"
    categories, rows = {}, []
    metrics = {**METRICS, **(metrics or {})}
    for category, by_file in scores.items():
        files = sorted(by_file, key=index)
        images = [SampleImage(run / category / "samples" / f, f.rsplit("_", 1)[0], index(f)) for f in files]
        scored = [ImageScore(by_file[f]) for f in files]
        categories[category] = {**summarise(category, metrics[category], images, scored), "folder": str(run / category)}
        rows += per_image_rows(category, metrics[category], images, scored)
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({
        "format": "pixart-bench compbench", "version": 1, "model": {"ckpt": "models/tiny"},
        "protocol": {"images_per_prompt": 10, "official": False}, "evaluators": evaluators or {},
        "categories": categories}))
    write_per_image_csv(run / "per_image.csv", rows)
    return run


def write_official(folder, category: str, theirs: dict[str, float], *, shuffle: int = 0):
    """Their vqa_result.json for ``category`` in its official place, numbered as that script numbers,
    answers as 4-decimal text for B-VQA, in a shuffled order."""
    place, numbering = PLACES[category]
    ordered = sorted(theirs, key=index)
    rows = [{"question_id": i if numbering == "position" else index(f),
             "answer": f"{theirs[f]:.4f}" if category in (TEXT, "shape") else theirs[f]} for i, f in enumerate(ordered)]
    random.Random(shuffle).shuffle(rows)
    path = folder / category / place / "vqa_result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture
def case(tmp_path):
    """Our scores for color, shape, spatial, non_spatial; their outputs for all but shape."""
    rng = np.random.default_rng(0)
    ours, theirs = {}, {}
    for category in PROMPTS:
        files = files_of(category) if category != "shape" else [f"{PROMPTS['shape'][0]}_{k:06d}.png" for k in (0, 1)]
        values = np.round(rng.uniform(0.1, 0.9, len(files)), 6)
        if category == TEXT:
            values = np.round(values, 4)  # our B-VQA is rounded to 4 decimals, as the official one
        ours[category] = dict(zip(files, values.tolist()))
        # differences from none to well above the tolerance, one per image
        noise = rng.choice([0.0, 3e-6, 2e-5, 3e-4, 0.02], len(files)) * rng.choice([-1, 1], len(files))
        theirs[category] = dict(zip(files, np.clip(values + noise, 0, 1).tolist()))
    run = make_run(tmp_path, ours)
    official = tmp_path / "official"
    for i, category in enumerate(("color", "spatial", "non_spatial")):
        write_official(official, category, theirs[category], shuffle=i)
    return run, official, ours, theirs


def expected(ours: dict[str, float], theirs: dict[str, float], text: bool) -> dict:
    files = sorted(ours, key=index)
    a = np.array([ours[f] for f in files])
    b = np.array([float(f"{theirs[f]:.4f}") if text else theirs[f] for f in files])
    d = np.abs(a - b)
    return {"images": len(a), "ours": a.mean(), "theirs": b.mean(), "max_abs_diff": d.max(), "mean_abs_diff": d.mean(),
            "pearson_r": sps.pearsonr(a, b).statistic, "over_tolerance": int((d > 1e-4 + 1e-9).sum())}


def test_every_statistic_against_numpy_and_scipy(case, tmp_path):
    run, official, ours, theirs = case
    record, path = run_audit(run, official)
    assert path == run / "audit" / AUDIT and json.loads(path.read_text()) == record
    assert record["format"] == FORMAT
    for category in ("color", "spatial", "non_spatial"):
        got, want = record["categories"][category], expected(ours[category], theirs[category], category == TEXT)
        assert got["status"] == "compared" and got["images"] == want["images"]
        for key in ("ours", "theirs", "max_abs_diff", "mean_abs_diff", "pearson_r"):
            assert got[key] == pytest.approx(want[key], abs=1e-12), (category, key)
        assert got["over_tolerance"] == want["over_tolerance"] > 0, category
        assert got["question_id"] == PLACES[category][1] and got["metric"] == METRICS[category]
        # ours is the run's category score (per_image.csv holds 6 decimals)
        assert got["ours"] == pytest.approx(got["results_score"], abs=1e-6)
        worst = got["largest"][0]
        assert abs(worst["diff"]) == pytest.approx(want["max_abs_diff"], abs=1e-12)
        assert worst["ours"] == pytest.approx(ours[category][worst["file"]], abs=1e-12)
    assert record["categories"]["color"]["answers"] == "text"
    assert record["categories"]["spatial"]["answers"] == "numbers"
    assert record["categories"]["shape"]["status"] == NO_OUTPUT
    assert record["categories"]["shape"]["looked_for"].endswith("shape/annotation_blip/vqa_result.json")
    # provenance: the run's files and every official file read, by SHA-256
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert record["run"]["results_sha256"] == sha(run / "results.json")
    assert record["files"][str(run / "per_image.csv")] == sha(run / "per_image.csv")
    spatial_file = official / "spatial" / "labels" / "annotation_obj_detection_2d" / "vqa_result.json"
    assert record["categories"]["spatial"]["official_sha256"] == sha(spatial_file) == record["files"][str(spatial_file)]


def test_position_and_index_numbering_are_not_swapped(tmp_path):
    """The same answers numbered the other way match other images (or none): the audit must follow each
    script's own numbering."""
    files = files_of("spatial")
    ours = {f: round(0.1 * (i + 1), 6) for i, f in enumerate(files)}
    run = make_run(tmp_path, {"spatial": ours})
    path = write_official(tmp_path / "official", "spatial", ours)
    assert run_audit(run, tmp_path / "official")[0]["categories"]["spatial"]["max_abs_diff"] < 1e-12
    rows = [{"question_id": i, "answer": ours[f]} for i, f in enumerate(sorted(files, key=index))]
    path.write_text(json.dumps(rows))  # numbered by position, as BLIP would: ids 2, 3, ... are no file's number
    with pytest.raises(BenchError, match=r"question_id 3, 4 \(2 of 5\) match none of our 5 images of spatial "
                                         r"\(the number in the file name"):
        plan_audit(run, tmp_path / "official", tmp_path / "o")


def test_one_rounding_step_is_not_counted_and_a_constant_side_has_no_r(tmp_path):
    files = files_of("color")[:4]
    run = make_run(tmp_path, {"color": {f: 0.6901 for f in files}})
    (tmp_path / "official").mkdir()
    write_official(tmp_path / "official", "color", {f: 0.69 for f in files})
    got = run_audit(run, tmp_path / "official")[0]["categories"]["color"]
    assert got["max_abs_diff"] == pytest.approx(1e-4, abs=1e-12) and got["over_tolerance"] == 0
    assert got["pearson_r"] is None and got["expected_rounding"] == 5e-5


def test_samples_folder_names_must_be_ours(case):
    run, official, ours, _ = case
    samples = official / "color" / "samples"
    samples.mkdir()
    for f in ours["color"]:
        (samples / f).write_bytes(b"")
    assert plan_audit(run, official).found["color"].samples == samples
    (samples / files_of("color")[0]).rename(samples / "a red apple and a green leaf_000099.png")
    with pytest.raises(BenchError, match=r"only in .*samples: a red apple and a green leaf_000099\.png; only in our "
                                         r"per_image\.csv: a red apple and a green leaf_000000\.png"):
        plan_audit(run, official)


def test_our_own_copy_of_the_official_files_is_refused(tmp_path):
    files = files_of("color")
    run = make_run(tmp_path, {"color": {f: 0.5 for f in files}})
    images = [SampleImage(run / "color" / "samples" / f, f.rsplit("_", 1)[0], index(f)) for f in files]
    write_vqa_result(run / "color" / "annotation_blip" / "vqa_result.json", images, [ImageScore(0.5)] * len(files),
                     "position", True)  # as compbench writes it
    with pytest.raises(BenchError, match=r"is the vqa_result.json our run wrote for color"):
        plan_audit(run, run)


def test_single_category_folder(tmp_path):
    files = files_of("non_spatial")
    run = make_run(tmp_path, {"non_spatial": {f: 0.3 for f in files}})
    write_official(tmp_path / "official", "non_spatial", {f: 0.3 + 1e-3 for f in files})
    got = run_audit(run, tmp_path / "official" / "non_spatial")[0]["categories"]["non_spatial"]
    assert got["over_tolerance"] == len(files) and got["max_abs_diff"] == pytest.approx(1e-3)


def test_command_end_to_end(case, tmp_path):
    run, official, ours, theirs = case
    runner = CliRunner()
    result = runner.invoke(app, ["compbench", "audit", str(run), "--official", str(official)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    color = expected(ours["color"], theirs["color"], True)
    line = next(line for line in result.output.splitlines() if line.startswith("| color |"))
    assert f"| {color['ours']:.4f} | {color['theirs']:.4f} | {color['max_abs_diff']:.2e} |" in line
    assert line.endswith(f"| {color['over_tolerance']} |")
    assert f"| shape | B-VQA | {NO_OUTPUT} |" in result.output and "4-decimal text" in result.output
    assert (run / "audit" / AUDIT).is_file() and str(run / "audit" / AUDIT) in result.output
    # a rerun of the same audit writes it again, also after the run was rescored; another official folder
    # does not overwrite it
    assert runner.invoke(app, ["compbench", "audit", str(run), "--official", str(official)]).exit_code == 0
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "created": "later"}))
    assert runner.invoke(app, ["compbench", "audit", str(run), "--official", str(official)]).exit_code == 0
    assert json.loads((run / "audit" / AUDIT).read_text())["run"]["results_sha256"] == \
        hashlib.sha256((run / "results.json").read_bytes()).hexdigest()
    other = tmp_path / "other"
    write_official(other, "color", theirs["color"])
    before = (run / "audit" / AUDIT).read_bytes()
    result = runner.invoke(app, ["compbench", "audit", str(run), "--official", str(other)])
    assert result.exit_code == 2 and "already holds audit.json of another run or other official files" in result.output
    assert (run / "audit" / AUDIT).read_bytes() == before
    result = runner.invoke(app, ["compbench", "audit", str(run), "--official", str(other),
                                 "--out", str(tmp_path / "a2")])
    assert result.exit_code == 0 and (tmp_path / "a2" / AUDIT).is_file()


def test_another_detector_is_named_as_another_metric(tmp_path):
    files = files_of("spatial")
    label = "2D spatial (OWLv2, not the official metric)"
    run = make_run(tmp_path, {"spatial": {f: 0.5 for f in files}}, metrics={"spatial": label})
    write_official(tmp_path / "official", "spatial", {f: 0.0 for f in files})
    result = CliRunner().invoke(app, ["compbench", "audit", str(run), "--official", str(tmp_path / "official")])
    assert result.exit_code == 0, result.output
    note = json.loads((run / "audit" / AUDIT).read_text())["categories"]["spatial"]["note"]
    assert note.startswith(f"our metric is {label}") and "agreement with the official output is not expected" in note
    assert f"spatial: {note}" in " ".join(result.output.split())
