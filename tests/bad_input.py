"""The harness of tests/test_bad_input.py: bad input gets a clear error and loses nothing.

A case builds damaged or wrong input in its own folder, runs one command (``CliCase``) or one
library call (``ApiCase``), and states the message it must give. Every case checks that

- a command exits with status 2 and prints one ``error: ...`` message on stderr (a usage error too:
  no usage box), no traceback; a library call raises the documented exception;
- the message matches ``match`` (a regular expression naming the file, key or option);
- every file that was in the case's folder before the call is still there, byte for byte: finished
  images, checkpoints, manifests and caches are never changed or lost.

Case tables live in the modules named ``bad_input_*.py`` (one per part of the product); the shared
inputs they copy and damage come from ``Inputs``. A new command adds its cases there.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import pytest


@dataclass
class CliCase:
    id: str
    setup: Callable[[Path, "Inputs"], list[str]]  # builds the input under the folder; returns the arguments
    match: str  # what the message must say (a regular expression)


@dataclass
class ApiCase:
    id: str
    setup: Callable[[Path, "Inputs"], tuple]  # builds the input under the folder; returns the call's arguments
    call: Callable[..., object]  # the library function, called with those arguments
    error: type[BaseException]
    match: str


class Inputs:
    """Good inputs, built once per test session in ``root``, for cases to copy and damage."""

    def __init__(self, root: Path):
        self.root = root

    @cached_property
    def pipeline(self) -> Path:
        """A tiny random pipeline folder (ours: native transformer + T5 + VAE + scheduler)."""
        from conftest import build_tiny_pipeline

        build_tiny_pipeline().save_pretrained(self.root / "pipeline")
        return self.root / "pipeline"

    @cached_property
    def diffusers_pipeline(self) -> Path:
        from conftest import build_tiny_pipeline

        build_tiny_pipeline().export_diffusers(self.root / "diffusers-pipeline")
        return self.root / "diffusers-pipeline"

    @cached_property
    def native(self) -> Path:
        """A native transformer folder (config.json + model.safetensors)."""
        from conftest import tiny_model
        from pixart.checkpoints import save_transformer

        return save_transformer(tiny_model(), self.root / "native", "native")

    @cached_property
    def official(self) -> Path:
        from conftest import tiny_model
        from pixart.checkpoints import save_transformer

        return save_transformer(tiny_model(), self.root / "official.pth", "official")

    @cached_property
    def train_images(self) -> Path:
        """8 tiny images with .txt captions and a manifest (train.jsonl, with classes)."""
        from test_train import make_images

        return make_images(self.root / "train-images", n=8, manifest=True)

    @cached_property
    def feature_cache(self) -> Path:
        """The feature cache of ``train_images`` for the tiny_stage2 preset."""
        from pixart.extract import run_extract

        # the tiny pipeline's T5 (width 16) and VAE (/2) are those the tiny training presets need
        run_extract(self.root / "feature-cache", "tiny_stage2", [f"data.root={self.train_images}",
                    f"t5={self.pipeline}", f"vae={self.pipeline}"], progress=False)
        return self.root / "feature-cache"

    @cached_property
    def train_run(self) -> Path:
        """A tiny_stage2 run (from ``feature_cache``) of two steps with a checkpoint after each."""
        from pixart.train import load_config, train

        train(load_config("tiny_stage2", [f"data.root={self.train_images}", f"data.features={self.feature_cache}",
                                          f"output_dir={self.root / 'train-run'}", "max_steps=2", "save_every=1",
                                          "log_every=1"]), progress=False)
        return self.root / "train-run"

    @cached_property
    def llava(self) -> Path:
        """A tiny random LLaVA folder (model + processor) for ``caption``."""
        from test_captions import build_tiny_llava

        return build_tiny_llava(self.root / "llava")

    @cached_property
    def world_images(self) -> Path:
        """A small world dataset at 32 px (6 images, captions, manifest.jsonl): an image folder for world-FID."""
        from bench.world.dataset import make_dataset

        return make_dataset(self.root / "world-images", 6, 32, seed=0, progress=False)

    @cached_property
    def extractor(self) -> Path:
        """A folder with a copy of the bundled world-FID extractor (feature_extractor.safetensors + .json)."""
        from bench.world.fid import DEFAULT_WEIGHTS, config_path_for

        (self.root / "extractor").mkdir()
        for src in (DEFAULT_WEIGHTS, config_path_for(DEFAULT_WEIGHTS)):
            shutil.copy2(src, self.root / "extractor" / src.name)
        return self.root / "extractor"

    @cached_property
    def inception(self) -> Path:
        """A random-weight Inception-v3 of torch-fidelity's architecture, saved as its weights file is."""
        from fid_weights import random_inception

        return random_inception(self.root / "inception" / "weights-inception-random.pth")

    @cached_property
    def demo_report(self) -> Path:
        """A finished quick demo report (2 "single" prompts) sampled from ``diffusers_pipeline``."""
        from bench.world.demo import run_demo
        from reports.build import write_demo_report

        run_demo(self.root / "demo-report", quick=True, reference=self.diffusers_pipeline, categories=["single"],
                 log=lambda *a: None)
        write_demo_report(self.root / "demo-report")
        return self.root / "demo-report"

    def copy(self, name: str, folder: Path, damage: Callable[[Path], object] | None = None) -> Path:
        """A copy of the input ``name`` (an attribute above) in ``folder``, free to damage (``damage(copy)``
        does so, if given)."""
        src = getattr(self, name)
        dst = folder / src.name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        if damage is not None:
            damage(dst)
        return dst


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write(path: Path, data: str | bytes) -> Path:
    """``data`` (text or bytes) into ``path``, its folder made; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_nothing_lost(before: dict[str, str], folder: Path):
    after = snapshot(folder)
    lost = sorted(k for k in before if k not in after)
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    assert not lost and not changed, f"lost {lost}, changed {changed}"


def run_cli_case(case: CliCase, folder: Path, inputs: Inputs):
    from typer.testing import CliRunner

    from bench.cli import app

    args = case.setup(folder, inputs)
    before = snapshot(folder)
    result = CliRunner().invoke(app, [str(a) for a in args])
    output = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output, output
    lines = re.split(r"[\r\n]", result.stderr)  # a progress bar's last state ends with \r, not a new line
    assert [line.startswith("error: ") for line in lines].count(True) == 1, output
    assert "Usage:" not in output and "╭" not in output, output
    assert re.search(case.match, output, re.S), f"{case.match!r} not in:\n{output}"
    assert_nothing_lost(before, folder)


def run_api_case(case: ApiCase, folder: Path, inputs: Inputs):
    args = case.setup(folder, inputs)
    before = snapshot(folder)
    with pytest.raises(case.error, match=case.match):
        case.call(*args)
    assert_nothing_lost(before, folder)


def params(cases: list) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


def ids_are_unique(cases: list) -> bool:
    return len({c.id for c in cases}) == len(cases)


def escape(path) -> str:
    """A path as it must appear in a message (for ``match``)."""
    return re.escape(str(path))
