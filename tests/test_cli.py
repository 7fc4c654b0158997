"""The pixart-bench command line: help texts, params, convert and its errors."""

import json

import pytest
import torch
from conftest import randomize_, tiny_model
from typer.testing import CliRunner

from bench.cli import app
from pixart.checkpoints import load_transformer, save_transformer

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["params"], ["convert"], ["sample"], ["export-diffusers"]])
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    if command:
        assert "Examples" in result.output and f"pixart-bench {command[0]}" in result.output
    else:
        assert "params" in result.output and "convert" in result.output


def test_params_json(tmp_path):
    result = runner.invoke(app, ["params", "--json", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert "610,856,096" in result.output and "674,834,720" in result.output
    data = json.loads((tmp_path / "p.json").read_text())
    assert {r["total"] for r in data["models"]} >= {610_856_096, 825_840_032, 611_349_152, 674_834_720}


def test_convert_round_trip(tmp_path):
    model = tiny_model()
    save_transformer(model, tmp_path / "m.pth", "official")
    r = runner.invoke(app, ["convert", str(tmp_path / "m.pth"), str(tmp_path / "dif"), "--to", "diffusers", "--config", "tiny"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["convert", str(tmp_path / "dif"), str(tmp_path / "nat")])
    assert r.exit_code == 0, r.output
    loaded = load_transformer(tmp_path / "nat")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_convert_errors_are_clear(tmp_path):
    r = runner.invoke(app, ["convert", str(tmp_path / "missing.pth"), str(tmp_path / "out")])
    assert r.exit_code == 2 and "checkpoint not found" in r.output
    save_transformer(tiny_model(), tmp_path / "nat", "native")
    r = runner.invoke(app, ["convert", str(tmp_path / "nat"), str(tmp_path / "o"), "--from", "diffusers"])
    assert r.exit_code == 2 and "is a native checkpoint, not diffusers" in r.output
    r = runner.invoke(app, ["convert", str(tmp_path / "nat"), str(tmp_path / "x.pth"), "--to", "official", "--config", "XL-3"])
    assert r.exit_code == 2 and "unknown preset" in r.output


def test_convert_from_dit(tmp_path):
    from diffusers import DiTTransformer2DModel

    dit = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, num_layers=1, sample_size=8,
                                out_channels=8, num_embeds_ada_norm=10, norm_eps=1e-6)
    randomize_(dit).save_pretrained(tmp_path / "dit")
    r = runner.invoke(app, ["convert", str(tmp_path / "dit"), str(tmp_path / "px"), "--from", "dit",
                            "--caption-channels", "16", "--model-max-length", "4"])
    assert r.exit_code == 0, r.output
    model = load_transformer(tmp_path / "px")
    assert model.config.caption_channels == 16 and model.config.depth == 1
