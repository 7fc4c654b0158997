"""Shared helpers for the tests: tiny random models of the real architectures, seeded."""

from __future__ import annotations

import pytest
import torch

from pixart.model import PixArt, PixArtConfig


def randomize_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter so zero-initialised layers (cross-attn proj, final layer) matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * scale)
    return module


def tiny_model(preset: str = "tiny", seed: int = 0, **overrides) -> PixArt:
    torch.manual_seed(seed)
    return randomize_(PixArt(PixArtConfig.preset(preset, **overrides)), seed).eval()


def text_inputs(batch: int, length: int, channels: int, seed: int = 1):
    """Random caption features and a padding mask with a different length per sample."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(batch, length, channels, generator=g)
    lengths = [length - (i * 2) % length for i in range(batch)]
    mask = torch.tensor([[1] * n + [0] * (length - n) for n in lengths])
    return y, mask


@pytest.fixture
def tiny() -> PixArt:
    return tiny_model("tiny")



def build_tiny_pipeline(seed: int = 0):
    from pixart.random_components import random_pipeline

    return random_pipeline(PixArtConfig.preset("tiny", model_max_length=120), seed=seed)  # 16x16 images


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline") / "tiny-pixart"
    build_tiny_pipeline().save_pretrained(folder)
    return folder


def load_script(name: str):
    """A ``benchmarks/`` script (not a package) imported as a module, to test its functions."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
