"""pixart-bench demo: the report machinery on a random pipeline, and the bundled world model."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import load_script

from bench.world.demo import REFERENCE, run_demo
from pixart.model import PixArtConfig
from pixart.random_components import random_pipeline
from reports.build import write_demo_report


def test_demo_report_on_a_random_pipeline(tmp_path):
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120)).export_diffusers(tmp_path / "ref")
    report = run_demo(tmp_path / "report", quick=True, reference=tmp_path / "ref", steps=3, log=lambda *a: None)
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    # the measurements are the core's; the report is written a layer up, from results.json alone
    assert results == json.loads(json.dumps(report)) and not (tmp_path / "report" / "report.md").exists()
    assert write_demo_report(tmp_path / "report") == tmp_path / "report" / "report.md"
    assert set(results["scores"]) == {"single", "color", "shape", "texture", "spatial", "complex"}
    for v in results["scores"].values():
        assert 0.0 <= v["ci95"][0] <= v["score"] <= v["ci95"][1] <= 1.0 and v["images"] == 2
        assert 0.0 <= v["vae_ceiling"] <= 1.0
        assert v["objects_per_image"] >= 0 and 0 <= v["images_with_extra_objects"] <= v["images"]
    assert np.isfinite(report["world_fid"])
    md = (tmp_path / "report" / "report.md").read_text()
    assert re.search(r"^\| spatial +\|", md, re.MULTILINE) and "World-FID" in md and "VAE ceiling" in md
    assert "![Demo samples](grid.png)" in md  # the sample grid, linked from report.md
    # written by the report machinery: report.json lists the demo's results.json as its input
    record = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [(i["kind"], Path(i["path"]).name) for i in record["inputs"]] == [("demo", "results.json")]
    assert 'alt="demo sample grid"' in (tmp_path / "report" / "report.html").read_text()  # the grid, embedded
    # the report is made from the folder's result files alone: written again, it is the same
    (tmp_path / "report" / "report.md").unlink()
    assert write_demo_report(tmp_path / "report").read_text() == md
    assert (tmp_path / "report" / "grid.png").is_file()
    assert (tmp_path / "report" / "images" / "color" / "manifest.json").is_file()


def test_demo_subset_of_categories_size_and_first_seed(tmp_path):
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120)).export_diffusers(tmp_path / "ref")
    report = run_demo(tmp_path / "r", reference=tmp_path / "ref", prompts_per_category=1, seeds=2, steps=2,
                      categories=["spatial", "single"], size=32, first_seed=7, log=lambda *a: None)
    write_demo_report(tmp_path / "r")
    assert list(report["scores"]) == ["single", "spatial"]  # the suites' order
    assert report["size"] == 32 and report["first_seed"] == 7
    manifest = json.loads((tmp_path / "r" / "images" / "single" / "manifest.json").read_text())
    assert [e["seed"] for e in manifest["images"]] == [7, 8]
    assert {(e["width"], e["height"]) for e in manifest["images"]} == {(32, 32)}
    assert "32×32 px" in (tmp_path / "r" / "report.md").read_text()
    # benchmarks/oracle_failures.py reads such a folder: one row per image
    rows = load_script("oracle_failures").failures(tmp_path / "r")
    assert sum(rows.values()) == 2 and rows["accepted"] == round(2 * report["scores"]["single"]["score"])
    with pytest.raises(ValueError, match="unknown categories"):
        run_demo(tmp_path / "r2", reference=tmp_path / "ref", categories=["colour"], log=lambda *a: None)


def _sample_ours_and_diffusers(folder):
    """One 5-step latent of "a red circle" (seed 3) from ``folder`` through our pipeline and diffusers'."""
    from diffusers import PixArtAlphaPipeline

    from pixart.pipeline import PixArtPipeline, SampleSettings

    ours = PixArtPipeline.from_pretrained(folder)
    theirs = PixArtAlphaPipeline.from_pretrained(folder)
    theirs.set_progress_bar_config(disable=True)
    base = ours.transformer.config.input_size * ours.vae.downsample
    a = ours(["a red circle"], [3], SampleSettings(steps=5, null_caption="empty-string", height=base, width=base),
             output_type="latent", progress=False)
    b = theirs(["a red circle"], generator=[torch.Generator().manual_seed(3)], num_inference_steps=5, height=base,
               width=base, use_resolution_binning=False, max_sequence_length=ours.text_encoder.max_length,
               output_type="latent").images
    return ours, theirs, a, b


def test_bundled_reference_loads_in_ours_and_diffusers_and_matches():
    assert (REFERENCE / "model_index.json").is_file(), "the bundled world model is missing"
    _, _, a, b = _sample_ours_and_diffusers(REFERENCE)
    assert (a - b).abs().max() <= 1e-4 * max(1.0, b.abs().max().item())
    size = sum(f.stat().st_size for f in REFERENCE.rglob("*") if f.is_file())
    assert size <= 25 * 2**20, f"bundled model is {size / 2**20:.1f} MB"


def test_a_half_precision_transformer_file_loads_as_fp32_in_ours_and_diffusers(tmp_path):
    """A wider world model fits the 25 MB bundle only with its transformer stored in fp16
    (docs/world.md, "Width and depth side by side"): both loaders must give fp32 models that agree."""
    import shutil

    from safetensors.torch import load_file, save_file

    # the bundle's own weights came back from a GPU in fp16 (fp16-exact): move them off that grid first,
    # so that storing them in fp16 rounds them
    shutil.copytree(REFERENCE, tmp_path / "fp32")
    weights = tmp_path / "fp32" / "transformer" / "diffusion_pytorch_model.safetensors"
    g = torch.Generator().manual_seed(0)
    save_file({k: v * (1 + 1e-3 * torch.randn(v.shape, generator=g)) for k, v in load_file(str(weights)).items()},
              str(weights))
    shutil.copytree(tmp_path / "fp32", tmp_path / "ref")
    weights = tmp_path / "ref" / "transformer" / "diffusion_pytorch_model.safetensors"
    save_file({k: v.half() for k, v in load_file(str(weights)).items()}, str(weights))
    ours, theirs, a, b = _sample_ours_and_diffusers(tmp_path / "ref")
    assert ours.dtype == torch.float32 and theirs.transformer.dtype == torch.float32
    assert (a - b).abs().max() <= 1e-4 * max(1.0, b.abs().max().item())
    _, _, c, _ = _sample_ours_and_diffusers(tmp_path / "fp32")
    rel = ((a - c).abs().mean() / c.abs().mean()).item()
    assert 0 < rel <= 0.03  # fp16 rounding of the weights moves a 5-step sample by about 1% (wrong weights: ~100%)


def test_bundled_vae_keeps_what_the_oracle_checks():
    """The bundled VAE's reconstructions of ground-truth renderings still score (nearly) 1 with the
    oracle, so the demo's scores measure the transformer, not the autoencoder."""
    import random

    from bench.world.dataset import load_suite, scene_from_spec
    from bench.world.demo import SUITES, vae_round_trip
    from bench.world.oracle import score
    from bench.world.render import render
    from pixart.vae import VAE

    vae = VAE.from_pretrained(REFERENCE)
    for category in ("single", "color", "spatial"):
        specs = load_suite(SUITES, category)[:8]
        scores = [score(vae_round_trip(vae, render(scene_from_spec(s, random.Random(i)), 128, seed=i)), s)["score"]
                  for i, s in enumerate(specs)]
        assert np.mean(scores) >= 0.85, (category, scores)


def test_cli_demo_quick_writes_the_report_and_refuses_to_mix_models(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "report.md" in result.output and "pixart-bench sample" in result.output  # where the report is, what next
    assert "compbench" not in result.output  # only commands that exist are advertised
    training = json.loads((REFERENCE / "training.json").read_text())
    svg = (tmp_path / "report" / "loss_curves.svg").read_text()
    assert len(training["loss_curves"]) >= 5 and all(f">{name}</text>" in svg for name in training["loss_curves"])
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert all(v["images"] == 2 for v in results["scores"].values())
    assert (results["sampler"], results["steps"], results["cfg"]) == ("sde-dpm-solver", 20, 2.0)  # the demo's defaults
    assert "sde-dpm-solver 20 steps, cfg 2.0" in (tmp_path / "report" / "report.md").read_text()
    # the world judge scored the images, and its measured agreement with people stands beside each score
    from bench.world.judge import JUDGE_NAME

    assert results["judge"]["name"] == JUDGE_NAME and results["judge"]["split"] == "heldout"
    single = results["scores"]["single"]
    assert single["judge_agreement"] == results["judge"]["categories"]["single"]
    assert 0.0 <= single["exact_oracle_score"] <= 1.0
    assert "judge vs people: precision" in result.output
    assert "Demo: world judge scores per category" in (tmp_path / "report" / "report.md").read_text()
    manifest = json.loads((tmp_path / "report" / "images" / "single" / "manifest.json").read_text())
    assert set(single["per_image"]) == {e["file"] for e in manifest["images"]}
    assert single["score"] == pytest.approx(np.mean(list(single["per_image"].values())))
    # the grid marks every image with its score: green for a pass, red for a fail
    grid = np.asarray(Image.open(tmp_path / "report" / "grid.png").convert("RGB")).reshape(-1, 3)
    assert any(((grid == c).all(1)).any() for c in ((0, 110, 0), (170, 0, 0)))
    # the sampler options reach the sampler and the record
    result = runner.invoke(app, ["demo", "--quick", "--prompts", "2", "--categories", "single", "--out",
                                 str(tmp_path / "ode"), "--sampler", "dpm-solver", "--cfg", "4.5"])
    assert result.exit_code == 0, result.output
    ode = json.loads((tmp_path / "ode" / "results.json").read_text())
    assert (ode["sampler"], ode["steps"], ode["cfg"]) == ("dpm-solver", 20, 4.5)
    manifest = json.loads((tmp_path / "ode" / "images" / "single" / "manifest.json").read_text())
    assert manifest["settings"]["sampler"] == "dpm-solver" and manifest["settings"]["guidance_scale"] == 4.5
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "bad"), "--categories", "single,colour"])
    assert result.exit_code == 2 and "unknown categories ['colour']" in result.output
    assert not (tmp_path / "bad").exists()  # refused before anything was sampled
    # the same --out with another model: a clear error naming the folder, no traceback, nothing overwritten
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120)).export_diffusers(tmp_path / "other")
    before = (tmp_path / "report" / "images" / "single" / "manifest.json").read_text()
    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path / "report"), "--reference", str(tmp_path / "other")])
    assert result.exit_code == 2 and "different" in result.output and "Traceback" not in result.output
    assert (tmp_path / "report" / "images" / "single" / "manifest.json").read_text() == before
