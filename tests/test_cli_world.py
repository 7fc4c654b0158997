"""CLI: world train-extractor and world fid (help, a real tiny run, bad input)."""

import json

from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


def test_help_shows_examples():
    for command in ("train-extractor", "fid"):
        result = runner.invoke(app, ["world", command, "--help"])
        assert result.exit_code == 0 and "Examples" in result.output and f"pixart-bench world {command}" in result.output


def test_train_extractor_then_fid_with_it(tmp_path):
    weights = tmp_path / "x.safetensors"
    result = runner.invoke(app, ["world", "train-extractor", "--out", str(weights), "--n-images", "64", "--steps", "3"])
    assert result.exit_code == 0, result.output
    config = json.loads(weights.with_suffix(".json").read_text())
    assert config["training"]["command"] == "pixart-bench world train-extractor" and config["training"]["steps"] == 3
    assert "held-out accuracy" in result.output

    from bench.world.dataset import make_dataset

    make_dataset(tmp_path / "a", 6, 64, seed=0)
    make_dataset(tmp_path / "b", 6, 64, seed=1)
    result = runner.invoke(app, ["world", "fid", str(tmp_path / "a"), str(tmp_path / "b"), "--weights", str(weights),
                                 "--json", str(tmp_path / "fid.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "fid.json").read_text())
    assert figures["fid"] > 0 and figures["n_real"] == figures["n_generated"] == 6
    from bench.world.fid import weights_digest

    assert figures["weights_sha256"] == weights_digest(weights)  # the extractor asked for was used


def test_fid_of_a_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["world", "fid", str(tmp_path / "empty"), str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no .png/.jpg/.jpeg images in" in result.output
