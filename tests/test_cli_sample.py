"""pixart-bench sample / export-diffusers: files, manifest, resume, errors."""

import json

import torch
from diffusers import PixArtAlphaPipeline
from typer.testing import CliRunner

from bench.cli import app
from pixart.checkpoints import save_transformer
from pixart.pipeline import PixArtPipeline, SampleSettings

runner = CliRunner()


def test_sample_writes_images_and_manifest_and_resumes(tiny_pipeline_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n\na blue square\n")
    args = ["sample", "--ckpt", str(tiny_pipeline_dir), "--prompts", str(prompts), "--out", str(tmp_path / "run"),
            "--steps", "4", "--images-per-prompt", "2", "--batch-size", "3", "--seed", "7"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [e["file"] for e in manifest["images"]] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert [e["seed"] for e in manifest["images"]] == [7, 8, 9, 10]
    assert manifest["images"][2]["prompt"] == "a blue square"
    assert manifest["settings"] == {"sampler": "dpm-solver", "steps": 4, "guidance_scale": 4.5, "height": 16,
                                    "width": 16, "null_caption": "trained", "resolution_binning": True}
    assert len(manifest["checkpoint_sha256"]) == 64 and manifest["versions"]["torch"]

    # resume: finished images are kept, a missing one is regenerated identically
    kept = (tmp_path / "run" / "00000.png").stat().st_mtime_ns
    lost = (tmp_path / "run" / "00003.png").read_bytes()
    (tmp_path / "run" / "00003.png").unlink()
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "00000.png").stat().st_mtime_ns == kept
    assert (tmp_path / "run" / "00003.png").read_bytes() == lost

    r = runner.invoke(app, args[:-2] + ["--seed", "8"])
    assert r.exit_code == 2 and "different seed" in r.output


def test_sample_errors(tiny_pipeline_dir, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    base = ["sample", "--ckpt", str(tiny_pipeline_dir), "--out", str(tmp_path / "o")]
    r = runner.invoke(app, base + ["--prompts", str(empty)])
    assert r.exit_code == 2 and "has no prompts" in r.output
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and "exactly one of --prompt" in r.output
    r = runner.invoke(app, base + ["--prompt", "x", "--sampler", "euler"])
    assert r.exit_code != 0 and "euler" in r.output
    r = runner.invoke(app, ["sample", "--ckpt", str(tiny_pipeline_dir / "transformer"), "--prompt", "x", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--t5 PATH" in r.output


def test_official_pth_with_t5_and_vae_then_export(tiny_pipeline_dir, tmp_path):
    pipe = PixArtPipeline.from_pretrained(tiny_pipeline_dir)
    save_transformer(pipe.transformer, tmp_path / "model.pth", "official")
    r = runner.invoke(app, ["export-diffusers", str(tmp_path / "model.pth"), str(tmp_path / "dif"), "--t5",
                            str(tiny_pipeline_dir), "--vae", str(tiny_pipeline_dir / "vae"), "--config",
                            str(tiny_pipeline_dir / "transformer" / "config.json")])
    assert r.exit_code == 0, r.output
    dp = PixArtAlphaPipeline.from_pretrained(tmp_path / "dif")
    dp.set_progress_bar_config(disable=True)
    theirs = dp(["a cat"], generator=[torch.Generator().manual_seed(1)], num_inference_steps=5,
                use_resolution_binning=False, output_type="latent").images
    ours = pipe(["a cat"], [1], SampleSettings(steps=5, null_caption="empty-string"), output_type="latent", progress=False)
    assert (ours - theirs).abs().max() <= 1e-4 * max(1.0, theirs.abs().max().item())
