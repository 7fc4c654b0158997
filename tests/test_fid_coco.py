"""The COCO-30K protocol (bench.fid.coco, bench.fid.protocol, `pixart-bench fid coco` / `fid world`):
caption sampling per policy, deterministic and written out; the reference list; the generation store's
indexed layout (resume, refusal of another run's folder); and the whole protocol on a tiny COCO-format
captions file, tiny images, the tiny random PixArt pipeline and a random-weight Inception-v3 file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_input import snapshot
from PIL import Image
from same_pixels import TOLERANCE, assert_same_image, pixel_difference

from bench.errors import BenchError
from bench.fid.coco import (
    CAPTION_LIST,
    caption_list_sha256,
    clean_caption,
    read_caption_list,
    read_coco_captions,
    reference_files,
    sample_captions,
    write_caption_list,
)
from bench.generate import generate, load_source
from pixart.errors import PipelineError
from pixart.sample_run import MANIFEST, PROGRESS

# captions as COCO writes them: '/', '_', doubled spaces, a trailing newline, upper case
CAPTIONS = ["A man riding a bike  down a street.", "a red/white bus_stop sign\n", "Two dogs on a couch ",
            "A plate of food.", "a cat on a laptop", "A kitchen with a stove", "people at a beach",
            "a train at the station", "a bowl of fruit", "a clock tower", "a boat on a lake", "a pizza on a table"]


def write_tiny_coco(root: Path, n_images: int = 8, captions_per_image: int = 3, size: int = 24) -> tuple[Path, Path]:
    """A COCO-format captions file and its images folder (``val2014/``): ``n_images`` JPEGs of
    different shapes (COCO's are not square), ``captions_per_image`` captions each, listed in an order
    other than by id, as the real file does."""
    images_dir = root / "val2014"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for k in range(n_images):
        image_id = 1000 - 7 * k  # ids not in file order
        name = f"COCO_val2014_{image_id:012d}.jpg"
        w, h = size + 4 * (k % 3), size + 2 * (k % 2)
        base = rng.integers(0, 256, size=(1, 1, 3))
        noise = rng.integers(-40, 40, size=(h, w, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(images_dir / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for c in range(captions_per_image):
            annotations.append({"image_id": image_id, "id": 10 * k + c,
                                "caption": CAPTIONS[(k + c) % len(CAPTIONS)] + (f" {c}" if c else "")})
    rng.shuffle(annotations)
    path = root / "captions_val2014.json"
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}))
    return path, images_dir


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp("coco"))


# -- captions ---------------------------------------------------------------------------------------------


def test_captions_are_cleaned_minimally_and_images_ordered_by_id(coco):
    read = read_coco_captions(coco[0])
    assert [im.image_id for im in read.images] == sorted(im.image_id for im in read.images)
    assert clean_caption(" a  red/white\tbus_stop sign\n") == "a red/white bus_stop sign"
    assert clean_caption("A man riding a bike  down a street.") == "A man riding a bike down a street."
    assert all(c == clean_caption(c) for im in read.images for c in im.captions)
    assert read.n_captions == 24 and read.empty_captions == 0
    assert read.describe()["images"] == 8


@pytest.mark.parametrize("policy", ["random", "first", "all"])
def test_sampling_is_deterministic_for_a_seed_and_follows_the_policy(coco, policy):
    read = read_coco_captions(coco[0])
    rows = sample_captions(read, 5, seed=3, policy=policy)
    assert rows == sample_captions(read_coco_captions(coco[0]), 5, seed=3, policy=policy)
    assert [r["index"] for r in rows] == list(range(len(rows)))
    by_id = {im.image_id: im for im in read.images}
    for r in rows:
        assert r["caption"] == by_id[r["image_id"]].captions[r["caption_index"]]
        assert r["file_name"] == by_id[r["image_id"]].file_name
    images = list(dict.fromkeys(r["image_id"] for r in rows))
    assert len(images) == 5  # n counts distinct images under every policy
    if policy == "first":
        assert all(r["caption_index"] == 0 for r in rows)
    if policy == "all":
        assert len(rows) == 15 and [r["caption_index"] for r in rows[:3]] == [0, 1, 2]
    else:
        assert len(rows) == 5
    other = sample_captions(read, 5, seed=4, policy=policy)
    assert other != rows


def test_random_policy_draws_the_images_then_one_caption_each_from_one_generator(coco):
    read = read_coco_captions(coco[0])
    rows = sample_captions(read, 4, seed=11)
    rng = np.random.default_rng(11)
    chosen = [read.images[int(k)] for k in rng.choice(len(read.images), size=4, replace=False)]
    picks = rng.integers(0, [len(im.captions) for im in chosen])
    assert [(r["image_id"], r["caption_index"]) for r in rows] == [(im.image_id, int(k))
                                                                  for im, k in zip(chosen, picks)]
    # the same images as the first policy: the caption draw comes after the image draw
    assert [r["image_id"] for r in rows] == [r["image_id"] for r in sample_captions(read, 4, 11, "first")]


def test_the_list_is_written_and_read_back_with_its_hash(coco, tmp_path):
    rows = sample_captions(read_coco_captions(coco[0]), 6, seed=0)
    digest = write_caption_list(rows, tmp_path / CAPTION_LIST)
    assert digest == caption_list_sha256(rows)
    import hashlib

    assert digest == hashlib.sha256((tmp_path / CAPTION_LIST).read_bytes()).hexdigest()
    assert read_caption_list(tmp_path / CAPTION_LIST) == rows
    assert set(json.loads((tmp_path / CAPTION_LIST).read_text().splitlines()[0])) == {
        "index", "image_id", "file_name", "caption", "caption_index"}
    assert write_caption_list(rows, tmp_path / CAPTION_LIST) == digest  # the same list again: nothing changes
    before = snapshot(tmp_path)
    with pytest.raises(BenchError, match=r"holds another caption list"):
        write_caption_list(sample_captions(read_coco_captions(coco[0]), 6, seed=1), tmp_path / CAPTION_LIST)
    assert snapshot(tmp_path) == before


def test_reference_files_sampled_or_all_and_a_missing_one_is_named(coco, tmp_path):
    path, images = coco
    read = read_coco_captions(path)
    rows = sample_captions(read, 3, seed=0, policy="all")
    sampled = reference_files(read, rows, images)
    assert [p.name for p in sampled] == list(dict.fromkeys(r["file_name"] for r in rows)) and len(sampled) == 3
    assert [p.name for p in reference_files(read, rows, images, "all")] == [im.file_name for im in read.images]
    partial = tmp_path / "val2014"
    shutil.copytree(images, partial)
    (partial / rows[1]["file_name"]).unlink()
    missing = re.escape(str(partial / rows[1]["file_name"]))
    with pytest.raises(BenchError, match=rf"1 of the 3 reference images are missing \({missing}"):
        reference_files(read, rows, partial)


# -- the generation store's indexed layout -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pixart(tiny_pipeline_dir):
    return load_source(str(tiny_pipeline_dir), steps=2)


def test_indexed_layout_names_seeds_and_records(pixart, tmp_path):
    from test_generate import Recording

    prompts = ["a red/white bus_stop sign", "a cat", "a cat"]  # '/', '_' and a repeated caption
    recording = Recording(pixart)
    manifest = generate(recording, prompts, tmp_path / "run", seed=5, layout="indexed", progress=False)
    assert recording.asked == [(p, 5 + i) for i, p in enumerate(prompts)]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["000000.png", "000001.png",
                                                                                 "000002.png"]
    assert [(e["file"], e["prompt"], e["seed"], e["prompt_index"]) for e in manifest["images"]] == [
        (f"samples/{i:06d}.png", p, 5 + i, i) for i, p in enumerate(prompts)]
    assert manifest["layout"].startswith("samples/<NNNNNN>.png") and manifest["images_per_prompt"] == 1
    assert manifest["seeds"] == {"rule": "image i (prompt i) uses seed base + i", "base": 5}
    # image i is the same image the official layout makes for that prompt and seed: made alone there and
    # in a batch of three here, so equal within 1/255 (tests/same_pixels.py), not bit for bit
    official = generate(pixart, ["a cat"], tmp_path / "official", images_per_prompt=1, seed=6, progress=False)
    made = tmp_path / "run" / "samples"
    assert_same_image(tmp_path / "official" / official["images"][0]["file"], made / "000001.png")
    assert pixel_difference(made / "000001.png", made / "000002.png") > TOLERANCE  # seed 7: another image


def test_indexed_run_resumes_and_refuses_another_runs_folder(pixart, tmp_path):
    from test_generate import Recording

    prompts = [f"caption {i} with a/slash" for i in range(5)]
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        generate(Recording(pixart, stop_after=2), prompts, out, seed=0, layout="indexed", batch_size=2,
                 progress=False)
    assert len(list((out / "samples").iterdir())) == 2 and (out / PROGRESS).is_dir()
    resumed = Recording(pixart)
    manifest = generate(resumed, prompts, out, seed=0, layout="indexed", batch_size=2, progress=False)
    assert resumed.asked == [(prompts[i], i) for i in (2, 3, 4)] and len(manifest["images"]) == 5
    before = snapshot(out)
    for change, names in ((dict(seed=1), "seeds"), (dict(prompts=prompts[:4]), "prompts")):
        with pytest.raises(PipelineError, match=rf"holds a run with different {names}"):
            generate(Recording(pixart), change.get("prompts", prompts), out, seed=change.get("seed", 0),
                     layout="indexed", progress=False)
    with pytest.raises(PipelineError, match=r"holds a run with different layout"):  # an official-layout run
        generate(pixart, [f"caption {i}" for i in range(5)], out, images_per_prompt=1, seed=0, progress=False)
    assert snapshot(out) == before


def test_indexed_layout_bad_input(pixart, tmp_path):
    with pytest.raises(BenchError, match=r"one image per prompt"):
        generate(pixart, ["a cat"], tmp_path / "run", images_per_prompt=2, layout="indexed")
    with pytest.raises(BenchError, match=r"prompt 2: the prompt is empty"):
        generate(pixart, ["a cat", "  "], tmp_path / "run", layout="indexed")
    with pytest.raises(BenchError, match=r"--seed must be a whole number from 0 to 4,294,967,294"):
        generate(pixart, ["a cat", "a dog"], tmp_path / "run", seed=2**32 - 1, layout="indexed")
    with pytest.raises(BenchError, match=r"layout must be one of official, indexed"):
        generate(pixart, ["a cat"], tmp_path / "run", layout="by-name")
    assert not (tmp_path / "run").exists()


# -- the protocol end to end -------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """numpy's BLAS on one thread: on a busy 2-core CPU, a 2048×2048 ``eigvals`` took ~30 s with two
    spin-waiting OpenBLAS threads and ~3 s with one. Speed only: the figures are the same."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    """A random-weight Inception-v3 of torch-fidelity's architecture, saved as its weights file is."""
    from fid_weights import random_inception

    return random_inception(tmp_path_factory.mktemp("inception") / "weights-inception-random.pth")


def coco_args(coco, inception, out, cache, ckpt, *extra) -> list[str]:
    return ["fid", "coco", "--captions", coco[0], "--images", coco[1], "--n", "6", "--seed", "0", "--ckpt", ckpt,
            "--out", out, "--inception-weights", inception, "--cache", cache, "--device", "cpu", "--steps", "2",
            *extra]


def invoke(args):
    from typer.testing import CliRunner

    from bench.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def test_fid_coco_end_to_end_and_a_second_model_reuses_the_reference(coco, inception, tiny_pipeline_dir, tmp_path):
    import hashlib

    from conftest import build_tiny_pipeline

    from bench.fid.images import content_digest, file_sha256

    out, cache = tmp_path / "pixart", tmp_path / "cache"
    printed = invoke(coco_args(coco, inception, out, cache, tiny_pipeline_dir))
    record = json.loads((out / "fid.json").read_text())
    printed = " ".join(printed.split())  # the console wraps long lines
    assert re.search(r"FID \d+\.\d{4}, KID \S+ ± \S+ \(6 generated vs 6 reference images", printed)
    assert record["n_gen"] == record["n_ref"] == 6 and np.isfinite(record["fid"]) and record["fid"] > 0
    rows = read_caption_list(out / CAPTION_LIST)
    assert rows == sample_captions(read_coco_captions(coco[0]), 6, seed=0)
    assert record["caption_list_sha256"] == hashlib.sha256((out / CAPTION_LIST).read_bytes()).hexdigest()
    assert (record["n"], record["seed"], record["caption_policy"], record["reference_policy"]) == (6, 0, "random",
                                                                                                  "sampled")
    assert record["coco"]["images"] == 8
    assert record["coco"]["sha256"] == hashlib.sha256(coco[0].read_bytes()).hexdigest()
    assert record["model"]["kind"] == "pixart" and record["generation"]["settings"]["steps"] == 2
    assert record["extractor"]["name"] == "inception-v3-compat" and record["settings"]["resize"] == "center-crop-256"
    assert record["extractor"]["weights_sha256"] == hashlib.sha256(inception.read_bytes()).hexdigest()
    assert record["reference"]["cached"] is False and record["versions"]["torch-fidelity"].startswith("0.4")
    # labelled from what was computed: 6 images and a random Inception are COCO zero-shot FID-6, not COCO-30K
    protocol = record["protocol"]
    assert (protocol["name"], protocol["command"], protocol["n_gen"]) == ("coco zero-shot", "pixart-bench fid coco", 6)
    assert protocol["checks"] == {"n_gen_is_30000": False, "standard_inception": False}
    assert "6 generated images (--n 6, --caption-policy random), not 30,000" in protocol["not_coco_30k"]
    assert "not inception-v3-compat with torch-fidelity's weights" in protocol["not_coco_30k"]
    # KID by default, and the small-N warning (6 images, 2,048 dimensions) in the file
    assert record["settings"]["kid"] is True and np.isfinite(record["kid_mean"])
    assert len(record["warnings"]) == 1 and "singular" in record["warnings"][0]
    manifest = json.loads((out / MANIFEST).read_text())
    assert [(e["file"], e["prompt"], e["seed"]) for e in manifest["images"]] == [
        (f"samples/{r['index']:06d}.png", r["caption"], r["index"]) for r in rows]
    # the reference is the drawn COCO images, each once; the generated side is this run's images
    drawn = [coco[1] / name for name in dict.fromkeys(r["file_name"] for r in rows)]
    assert record["reference"]["content_sha256"] == content_digest([(p.name, file_sha256(p)) for p in drawn])
    assert record["generated"]["content_sha256"] == content_digest(
        [(Path(e["file"]).name, e["sha256"]) for e in manifest["images"]])

    before = snapshot(out / "samples")
    invoke(coco_args(coco, inception, out, cache, tiny_pipeline_dir))  # a rerun makes nothing, reuses everything
    again = json.loads((out / "fid.json").read_text())
    assert snapshot(out / "samples") == before and again["fid"] == record["fid"] and again["reference"]["cached"]

    build_tiny_pipeline(seed=1).save_pretrained(tmp_path / "other-model")
    invoke(coco_args(coco, inception, tmp_path / "other", cache, tmp_path / "other-model"))
    other = json.loads((tmp_path / "other" / "fid.json").read_text())
    assert other["reference"]["cached"] is True and other["reference"]["id"] == record["reference"]["id"]
    assert other["generated"]["cached"] is False and other["fid"] != record["fid"]
    assert other["model"]["transformer_sha256"] != record["model"]["transformer_sha256"]


def test_caption_policy_all_and_the_full_reference(coco, inception, pixart, tmp_path):
    from bench.fid.protocol import FidSettings, prepare_coco, run_coco

    plan = prepare_coco(tmp_path / "run", captions=coco[0], images=coco[1], n=3, seed=1, caption_policy="all",
                        reference="all", fid=FidSettings(weights=inception, resize="center-crop-256"))
    record = run_coco(plan, pixart, progress=False)
    assert (record["n_gen"], record["n_ref"], record["captions"]) == (9, 8, 9)  # 3 images × 3 captions; all 8 images
    assert record["reference"]["cached"] is False and record["settings"]["cache_dir"] is None


def test_the_coco_30k_label_comes_from_the_computed_result(coco, inception, pixart, tmp_path, monkeypatch):
    """With the label's N and standard weights set to this test's (3 images, the random Inception), a run of
    3 images is labelled COCO-30K: the label is decided on the result ``run_coco`` computed."""
    import hashlib

    import bench.fid.labels as labels
    from bench.fid.protocol import FidSettings, prepare_coco, run_coco

    monkeypatch.setattr(labels, "COCO_30K_N", 3)
    monkeypatch.setattr(labels, "STANDARD_INCEPTION_SHA256", hashlib.sha256(inception.read_bytes()).hexdigest())
    plan = prepare_coco(tmp_path / "run", captions=coco[0], images=coco[1], n=3, seed=0,
                        fid=FidSettings(weights=inception, kid=None))
    record = run_coco(plan, pixart, progress=False)
    assert record["protocol"]["name"] == labels.COCO_30K == labels.protocol_of(record)
    assert record["protocol"]["checks"] == {"n_gen_is_30000": True, "standard_inception": True}
    assert json.loads((tmp_path / "run" / "fid.json").read_text())["protocol"] == record["protocol"]


def test_shares_in_turn_and_only_the_main_process_computes_fid(coco, inception, pixart, tmp_path):
    from bench.fid.protocol import FidSettings, prepare_coco, run_coco

    plan = prepare_coco(tmp_path / "run", captions=coco[0], images=coco[1], n=4, seed=0,
                        fid=FidSettings(weights=inception))
    assert run_coco(plan, pixart, rank=1, world=2, progress=False) is None
    assert not (tmp_path / "run" / "fid.json").exists()
    record = run_coco(plan, pixart, rank=0, world=2, progress=False)
    assert record["n_gen"] == 4 and (tmp_path / "run" / "fid.json").is_file()


def test_clip_score_of_each_image_with_its_caption(coco, inception, pixart, tmp_path):
    from test_compbench_clip import build_tiny_clip

    from bench.compbench.clipscore import ClipScorer
    from bench.compbench.samples import SampleImage
    from bench.fid.protocol import FidSettings, prepare_coco, run_coco

    clip = build_tiny_clip(tmp_path / "clip")
    plan = prepare_coco(tmp_path / "run", captions=coco[0], images=coco[1], n=3, seed=0,
                        fid=FidSettings(weights=inception), clip_model=str(clip["hf"]))
    record = run_coco(plan, pixart, progress=False)
    rows = read_caption_list(tmp_path / "run" / CAPTION_LIST)
    scorer = ClipScorer(str(clip["hf"]))
    expected = [s.score for s in scorer.score([SampleImage(tmp_path / "run" / "samples" / f"{i:06d}.png",
                                                           r["caption"], i) for i, r in enumerate(rows)], False)]
    assert record["clip_score"]["mean"] == pytest.approx(float(np.mean(expected)), abs=1e-6)
    assert record["clip_score"]["n"] == 3 and record["clip_score"]["scorer"]["metric"] == "CLIPScore"


def test_fid_world_on_the_bundled_model(tmp_path):
    import random

    from bench.world.dataset import load_suite, scene_from_spec
    from bench.world.demo import SUITES
    from bench.world.render import render

    out = tmp_path / "world"
    printed = invoke(["fid", "world", "--out", out, "--categories", "single", "--prompts", "2", "--steps", "2",
                      "--no-cache", "--device", "cpu"])
    record = json.loads((out / "fid.json").read_text())
    assert "FID" in printed and record["n_gen"] == record["n_ref"] == 2 and np.isfinite(record["fid"])
    assert record["extractor"]["name"] == "world-cnn" and record["settings"]["resize"] == "none"
    assert record["generation"]["settings"]["sampler"] == "sde-dpm-solver" and record["categories"] == ["single"]
    assert (record["protocol"]["name"], record["protocol"]["command"]) == ("world", "pixart-bench fid world")
    assert record["settings"]["kid"] is True and "kid_mean" in record and record["warnings"]  # KID by default; N = 2
    specs = load_suite(SUITES, "single")[:2]
    manifest = json.loads((out / MANIFEST).read_text())
    for i, (spec, entry) in enumerate(zip(specs, manifest["images"])):
        assert (entry["prompt"], entry["seed"]) == (spec["prompt"], i)
        truth = render(scene_from_spec(spec, random.Random(i)), (entry["height"], entry["width"]), seed=i)
        assert np.array_equal(np.asarray(Image.open(out / "reference" / f"{i:06d}.png")), np.asarray(truth))


@pytest.mark.parametrize("command", ["coco", "world"])
def test_help_has_examples(command):
    output = invoke(["fid", command, "--help"])
    assert "Examples" in output and f"pixart-bench fid {command}" in output


@pytest.mark.slow
def test_accelerate_launch_shares_the_generation_and_the_main_process_scores(coco, inception, tiny_pipeline_dir,
                                                                              tmp_path):
    """Slow (12 s of the 2-core suite): two processes start torch, then each its share and a barrier. The default
    tests keep the parts: tests/test_generate.py launches the store's shares under accelerate, and
    test_shares_in_turn_and_only_the_main_process_computes_fid runs both ranks' shares in turn."""
    import os
    import subprocess
    import sys

    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "bench",
           *map(str, coco_args(coco, inception, tmp_path / "run", tmp_path / "cache", tiny_pipeline_dir)),
           "--n", "4", "--batch-size", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1],
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})  # see one_blas_thread
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert sorted(re.findall(r"rank (\d) of 2: made (\d+) image", output)) == [("0", "2"), ("1", "2")]
    assert len(re.findall(r"FID \d+\.\d{4}, KID \S+ ± \S+ \(4 generated vs 4 reference images",
                          " ".join(output.split()))) == 1  # the main process
    record = json.loads((tmp_path / "run" / "fid.json").read_text())
    assert record["n_gen"] == 4 and len(json.loads((tmp_path / "run" / MANIFEST).read_text())["images"]) == 4
