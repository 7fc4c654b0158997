"""CLI: world train-extractor (help, a real tiny run), and world-FID with the extractor it trains through
`fid folder --extractor world-cnn`."""

import json

from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


def test_help_shows_examples():
    result = runner.invoke(app, ["world", "train-extractor", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output
    assert "pixart-bench world train-extractor" in result.output


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
    result = runner.invoke(app, ["fid", "folder", str(tmp_path / "b"), str(tmp_path / "a"),
                                 "--out", str(tmp_path / "fid"), "--extractor", "world-cnn", "--resize", "none",
                                 "--world-weights", str(weights), "--no-cache"])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "fid" / "fid.json").read_text())
    assert figures["fid"] > 0 and figures["n_ref"] == figures["n_gen"] == 6
    from bench.world.fid import weights_digest

    assert figures["extractor"]["weights_sha256"] == weights_digest(weights)  # the extractor asked for was used
