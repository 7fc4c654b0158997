"""CLI: train, extract-features, caption, vocab (help texts and a real run of each)."""

import json

import pytest
from test_captions import build_tiny_llava
from test_captions import make_images as make_caption_images
from test_train import make_images
from test_vocab import train_tiny_pipeline
from typer.testing import CliRunner

from bench.cli import app
from pixart.random_components import random_pipeline

runner = CliRunner()


@pytest.mark.parametrize("command", ["train", "extract-features", "caption", "vocab"])
def test_help_has_examples(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0 and "Examples" in r.output and f"pixart-bench {command}" in r.output


def test_extract_then_train_then_resume(tmp_path):
    random_pipeline().save_pretrained(tmp_path / "comp")
    make_images(tmp_path / "data", n=8)
    sets = ["--set", f"data.root={tmp_path / 'data'}", "--set", f"t5={tmp_path / 'comp'}", "--set", f"vae={tmp_path / 'comp'}"]
    config = ["--config", "tiny_stage2"]  # a preset, by name
    r = runner.invoke(app, ["extract-features", *config, *sets, "--out", str(tmp_path / "cache")])
    assert r.exit_code == 0 and "encoded 8 new items" in r.output, r.output
    train = ["train", *config, *sets, "--set", f"data.features={tmp_path / 'cache'}", "--output-dir", str(tmp_path / "run")]
    r = runner.invoke(app, [*train, "--set", "max_steps=3"])
    assert r.exit_code == 0 and "done: 3 steps" in r.output, r.output
    r = runner.invoke(app, [*train, "--set", "max_steps=5", "--resume"])
    assert r.exit_code == 0 and "done: 2 steps" in r.output, r.output
    r = runner.invoke(app, ["train", *config, "--set", "data.root=/nonexistent", "--output-dir", str(tmp_path / "x")])
    assert r.exit_code == 2 and "image folder not found: /nonexistent" in r.output
    r = runner.invoke(app, ["train", "--config", "tiny_stage9", "--output-dir", str(tmp_path / "y")])
    assert r.exit_code == 2 and "no config file or preset 'tiny_stage9'" in r.output and "tiny_stage2" in r.output


def test_caption_and_vocab_commands(tmp_path):
    model = build_tiny_llava(tmp_path / "llava")
    make_caption_images(tmp_path / "imgs", 3)
    r = runner.invoke(app, ["caption", str(tmp_path / "imgs"), "--out", str(tmp_path / "c.jsonl"), "--model", str(model),
                            "--max-new-tokens", "3"])
    assert r.exit_code == 0 and "captioned 3 new images" in r.output, r.output
    nlp = train_tiny_pipeline(tmp_path / "nlp")
    caps = tmp_path / "caps.txt"
    caps.write_text("the cat sits on the sofa\nthe dog sees the cat\n")
    r = runner.invoke(app, ["vocab", str(caps), "--spacy-model", str(nlp), "--min-count", "2", "--json", str(tmp_path / "v.json")])
    assert r.exit_code == 0, r.output
    stats = json.loads((tmp_path / "v.json").read_text())
    assert stats["images"] == 2 and stats["total_noun_occurrences"] >= 3
    r = runner.invoke(app, ["vocab", str(caps), "--spacy-model", "no_such_spacy_model"])
    assert r.exit_code == 2 and "no_such_spacy_model" in r.output
