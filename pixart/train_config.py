"""The trainer's configuration: plain dataclasses, loaded from YAML (``yaml.safe_load``, no eval).

A config is a YAML file or a preset shipped with the package (``pixart/configs/NAME.yaml``: the
paper's stages and tiny CPU runs; ``list_presets``) plus ``key.sub=value`` overrides.
``load_config`` checks every key against the dataclasses, so a misspelt key is an error instead of
a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pixart.data import Bucketer
from pixart.model import PixArtConfig


@dataclass
class DataConfig:
    root: str | None = None  # folder of images + same-name .txt captions
    manifest: str | None = None  # JSONL: path, caption, [width, height, class]
    shards: str | None = None  # glob of webdataset-style .tar shards (unpacked once into output_dir/shards)
    features: str | None = None  # feature cache from `pixart-bench extract-features` (used instead of T5/VAE)
    resolution: int = 256
    multi_scale: bool = False  # aspect-ratio buckets (stage 3)
    bucket_multiple: int = 16  # bucket sides are multiples of this (VAE factor x patch) for non-standard resolutions
    # more base resolutions trained beside `resolution`: each image at the one nearest its own size
    # (e.g. [64] in a 128 px stage keeps 64 px images at 64 px; pixart.data.Bucketer)
    scales: list = field(default_factory=list)
    skip_bad: bool = False  # skip (and log) unreadable images / missing captions instead of failing
    preload_features: bool = False  # read the whole feature cache into memory once (fast big batches on a GPU)

    def bucketer(self) -> Bucketer:
        return Bucketer([self.resolution, *self.scales], self.multi_scale, self.bucket_multiple)


@dataclass
class OptimConfig:
    lr: float = 2e-5
    weight_decay: float = 0.03
    eps: float = 1e-10
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 0.01
    warmup_steps: int = 1000
    lr_scaling: str = "none"  # "sqrt": lr · sqrt(global_batch / 256), the official configs' auto_lr


@dataclass
class TrainConfig:
    output_dir: str = "runs/pixart"
    model: str = "XL-2-256"  # PixArtConfig preset
    model_overrides: dict = field(default_factory=dict)
    init_from: str | None = None  # previous stage's checkpoint (any format pixart.checkpoints reads)
    init_from_dit: str | None = None  # DiT .pt / diffusers folder, re-parameterised (stage 1)
    init_new_modules: list = field(default_factory=list)  # with init_from: prefixes the source may lack (kept at init)
    t5: str | None = None  # T5 folder (not needed with data.features)
    vae: str | None = None  # VAE folder (not needed with data.features)
    max_length: int = 120
    class_conditional: bool = False
    num_classes: int = 1000
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 8  # per process and micro-step
    grad_accum: int = 1
    max_steps: int = 1000  # optimiser steps
    caption_dropout: float = 0.1
    mixed_precision: str = "no"  # no | bf16 | fp16
    grad_checkpointing: bool = False
    ema_decay: float = 0.9999  # with a warm-up: min(ema_decay, (1 + step) / (10 + step))
    save_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10  # metrics are read back from the device (on a GPU, one sync) and written every this many steps
    sample_every: int = 0  # 0: no sample grids
    sample_prompts: list = field(default_factory=list)
    tensorboard: bool = True
    max_seconds: float | None = None  # stop (with a checkpoint) after this much wall time in one call; resume goes on
    tf32: bool = True  # on CUDA: float32 matrix products in TF32 (torch.set_float32_matmul_precision("high"))
    device_rng: bool = True  # on CUDA: the step's noise, timesteps and caption drops are drawn there; CPU runs unchanged
    compile: bool = False  # the training forward through torch.compile (a GPU's per-step launch overhead)
    # Input scaling (Chen 2023, "On the importance of noise scheduling for diffusion models"): the
    # model learns to denoise latents × latent_scale. With b < 1 every noise level destroys more of
    # the image, as log-SNR shifted by 2·log b; the usual rule for twice the side is b = 0.5 (the
    # same image at twice the pixels keeps more of its layout at equal noise). A pipeline for such
    # a model samples with its VAE's scaling_factor × latent_scale (`pixart.vae.VAE.rescaled`).
    latent_scale: float = 1.0
    seed: int = 0

    def model_config(self) -> PixArtConfig:
        return PixArtConfig.preset(self.model, **self.model_overrides)


def list_presets() -> list[str]:
    """Names of the configs shipped in ``pixart/configs/`` (the paper's stages, and tiny CPU ones)."""
    return sorted(p.name.removesuffix(".yaml") for p in _presets_folder().iterdir() if p.name.endswith(".yaml"))


def config_text(config: str | os.PathLike) -> str:
    """The YAML of ``config``: a file, or else a preset name (``pixart_xl2_stage2_256``, ``.yaml`` optional).
    An existing file wins over a preset of the same name."""
    path = Path(config)
    if path.is_file():
        return path.read_text()
    name = str(config).removesuffix(".yaml")
    if os.sep not in name and "/" not in name:
        preset = _presets_folder() / f"{name}.yaml"
        if preset.is_file():
            return preset.read_text()
    raise FileNotFoundError(f"no config file or preset {str(config)!r}; presets: {', '.join(list_presets())}")


def _presets_folder():
    from importlib.resources import files

    # a folder inside the package (package data), so an installed wheel finds it as a checkout does
    return files("pixart") / "configs"


def load_config(config: str | os.PathLike | None = None, overrides: list[str] = ()) -> TrainConfig:
    """A YAML file or preset name (optional; see ``config_text``) + ``key.sub=value`` overrides
    (values parsed as YAML scalars) → TrainConfig."""
    raw = yaml.safe_load(config_text(config)) if config else {}
    raw = raw or {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return _from_dict(TrainConfig, raw, "config")


def config_yaml(cfg: TrainConfig) -> str:
    """The whole config as YAML (written beside a run and into each checkpoint; ``load_config`` reads it back)."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def _from_dict(cls, d: dict, where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"unknown {where} keys {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for k, v in d.items():
        sub = {"data": DataConfig, "optim": OptimConfig}.get(k) if cls is TrainConfig else None
        kwargs[k] = _from_dict(sub, v or {}, f"{where}.{k}") if sub else _typed(v, fields[k].type, f"{where}.{k}")
    return cls(**kwargs)


def _typed(value, annotation: str, where: str):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a float field takes it as the number it spells."""
    if annotation == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    if annotation == "list" and not isinstance(value, list):
        raise ValueError(f"{where} must be a list, e.g. [64], got {value!r}")
    if annotation in ("float", "int") and isinstance(value, bool):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if annotation in ("str", "str | None") and isinstance(value, bool):
        # YAML 1.1 also reads no/off (yes/on) as booleans: `mixed_precision=no` means the word
        return "no" if value is False else "yes"
    return value
