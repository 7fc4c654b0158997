"""The trainer's configuration: plain dataclasses, loaded from YAML (``yaml.safe_load``, no eval).

A config is a YAML file or a preset shipped with the package (``pixart/configs/NAME.yaml``: the
paper's stages and tiny CPU runs; ``list_presets``) plus ``key.sub=value`` overrides.
``load_config`` checks every key against the dataclasses, so a misspelt key is an error instead of
a silently ignored setting, and ``TrainConfig.validate`` checks every value's type and range once,
before any work (``load_config`` and ``pixart.train.train`` call it). A bad value is a
``ConfigError`` naming the key (``config.optim.lr``) and the file, preset or ``--set`` it came from.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import yaml

from pixart.data import Bucketer
from pixart.errors import InputError, parse_yaml, read_text
from pixart.model import PRESETS, PixArtConfig

MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCALING = ("none", "sqrt")
# torch.compile modes; "reduce-overhead" also captures the step's kernels in CUDA graphs (fixed shapes)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
MAX_RESOLUTION = 8192


class ConfigError(InputError, ValueError):
    """A training config the trainer cannot use (a file, a preset or a ``--set`` override); the
    message names the key (``config.optim.lr``) and where its value came from."""


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
    # torch.compile's mode. "reduce-overhead" replays forward and backward as CUDA graphs: for a small
    # model at a fixed shape the launches, not the arithmetic, set a GPU step's time (on a CPU: as default)
    compile_mode: str = "default"
    # Input scaling (Chen 2023, "On the importance of noise scheduling for diffusion models"): the
    # model learns to denoise latents × latent_scale. With b < 1 every noise level destroys more of
    # the image, as log-SNR shifted by 2·log b; the usual rule for twice the side is b = 0.5 (the
    # same image at twice the pixels keeps more of its layout at equal noise). A pipeline for such
    # a model samples with its VAE's scaling_factor × latent_scale (`pixart.vae.VAE.rescaled`).
    latent_scale: float = 1.0
    seed: int = 0

    def model_config(self) -> PixArtConfig:
        return PixArtConfig.preset(self.model, **self.model_overrides)

    def validate(self, origin=None) -> "TrainConfig":
        """Check every value's type and range; ``ConfigError`` names the first bad key. ``origin(key)``
        says where a key's value came from (``load_config`` passes the file and ``--set`` items)."""
        origin = origin or (lambda key: "")
        _check_types(self, "config", origin)
        _check_values(self, origin)
        return self


def list_presets() -> list[str]:
    """Names of the configs shipped in ``pixart/configs/`` (the paper's stages, and tiny CPU ones)."""
    return sorted(p.name.removesuffix(".yaml") for p in _presets_folder().iterdir() if p.name.endswith(".yaml"))


def config_text(config: str | os.PathLike) -> str:
    """The YAML of ``config``: a file, or else a preset name (``pixart_xl2_stage2_256``, ``.yaml`` optional).
    An existing file wins over a preset of the same name."""
    return _config_source(config)[0]


def _config_source(config: str | os.PathLike) -> tuple[str, str]:
    """(the YAML text of ``config``, what it is: ``config file PATH`` or ``preset NAME``)."""
    path = Path(config)
    if path.is_file():
        return read_text(path, ConfigError, "config file"), f"config file {path}"
    if path.exists():
        raise ConfigError(f"config {path} is a folder, not a YAML file")
    name = str(config).removesuffix(".yaml")
    if os.sep not in name and "/" not in name:
        preset = _presets_folder() / f"{name}.yaml"
        if preset.is_file():
            return preset.read_text(encoding="utf-8"), f"preset {name}"
    raise ConfigError(f"no config file or preset {_show(str(config))}; presets: {', '.join(list_presets())}")


def _presets_folder():
    from importlib.resources import files

    # a folder inside the package (package data), so an installed wheel finds it as a checkout does
    return files("pixart") / "configs"


class _Origins:
    """Where each key's value came from: a ``--set`` item, else the config file or preset (``base``)."""

    def __init__(self, base: str | None = None):
        self.base, self.overrides = base, {}

    def __call__(self, key: str) -> str:
        parts = key.split(".")
        for n in range(len(parts), 1, -1):  # the key, or a section above it, set by --set
            item = self.overrides.get(".".join(parts[:n]))
            if item:
                return f" (from {item})"
        below = [item for k, item in self.overrides.items() if k.startswith(key + ".")]  # a key under it
        return f" (from {below[0]})" if below else f" (in {self.base})" if self.base else ""


def load_config(config: str | os.PathLike | None = None, overrides: list[str] = ()) -> TrainConfig:
    """A YAML file or preset name (optional; see ``config_text``) + ``key.sub=value`` overrides
    (values parsed as YAML scalars) → a validated TrainConfig; ``ConfigError`` names a bad key and its source."""
    origins = _Origins()
    raw = {}
    if config:
        text, origins.base = _config_source(config)
        raw = parse_yaml(text, ConfigError, origins.base)
        if raw is None:
            raise ConfigError(f"{origins.base} is empty: give it key: value lines, or start from a preset "
                              f"({', '.join(list_presets())})")
        if not isinstance(raw, dict):
            raise ConfigError(f"{origins.base} holds a YAML {type(raw).__name__}, not a mapping of config keys "
                              "(key: value lines)")
    for item in overrides:
        _override(raw, item, origins)
    return _from_dict(TrainConfig, raw, "config", origins).validate(origins)


def _override(raw: dict, item: str, origins: _Origins):
    """Apply one ``--set key.sub=value`` item to the raw config."""
    where = f"--set {_show(item, quote=False)}"
    if "=" not in item:
        raise ConfigError(f"{where} is not key=value (e.g. --set optim.lr=1e-4)")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{where}: the key is empty (e.g. --set optim.lr=1e-4)")
    node = raw
    for n, part in enumerate(parts[:-1], 1):
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: config.{'.'.join(parts[:n])} is a value, not a section with keys")
    node[parts[-1]] = parse_yaml(value, ConfigError, where)
    origins.overrides["config." + ".".join(parts)] = where


def config_yaml(cfg: TrainConfig) -> str:
    """The whole config as YAML (written beside a run and into each checkpoint; ``load_config`` reads it back)."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


_SECTIONS = {"data": DataConfig, "optim": OptimConfig}
_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text",
          "list": "a list, e.g. [64]", "dict": "a mapping, e.g. {depth: 2}"}


def _from_dict(cls, d: dict, where: str, origin):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(d) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {where} keys {unknown}{origin(f'{where}.{unknown[0]}')}; known: {sorted(fields)}")
    kwargs = {}
    for k, v in d.items():
        sub = _SECTIONS.get(k) if cls is TrainConfig else None
        if sub is None:
            kwargs[k] = _lenient(v, fields[k].type)
        elif v is None or isinstance(v, dict):
            kwargs[k] = _from_dict(sub, v or {}, f"{where}.{k}", origin)
        else:
            raise ConfigError(f"{where}.{k} must be a section of keys ({k}: {{key: value}}), got {_show(v)}"
                              f"{origin(f'{where}.{k}')}")
    return cls(**kwargs)


def _lenient(value, annotation: str):
    """YAML's readings that mean what they spell: ``1e-4`` (no dot) is a string in YAML 1.1, and a
    float field takes the number; no/off (yes/on) are booleans, and a text field takes the word
    (``mixed_precision=no``), as it takes a number (a folder named 2024). Anything else is checked as is."""
    kind = annotation.removesuffix(" | None")
    if kind == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "str" and isinstance(value, bool):
        return "no" if value is False else "yes"
    if kind == "str" and isinstance(value, (int, float)):
        return str(value)
    return value


def _check_type(value, annotation: str, key: str, origin):
    kind = annotation.removesuffix(" | None")
    if value is None:
        if annotation.endswith(" | None"):
            return
        raise ConfigError(f"{key} needs a value ({_KINDS[kind]}){origin(key)}")
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str),
          "list": isinstance(value, list), "dict": isinstance(value, dict)}[kind]
    if not ok:
        raise ConfigError(f"{key} must be {_KINDS[kind]}, got {_show(value)}{origin(key)}")


def _check_types(obj, prefix: str, origin):
    for f in dataclasses.fields(obj):
        key, value = f"{prefix}.{f.name}", getattr(obj, f.name)
        if f.type in ("DataConfig", "OptimConfig"):
            if not isinstance(value, _SECTIONS[f.name]):
                raise ConfigError(f"{key} must be a {f.type}, got {_show(value)}{origin(key)}")
            _check_types(value, key, origin)
        else:
            _check_type(value, f.type, key, origin)


# integer keys and their least value
_AT_LEAST = {"batch_size": 1, "grad_accum": 1, "max_steps": 1, "save_every": 1, "keep_checkpoints": 1, "log_every": 1,
             "sample_every": 0, "max_length": 1, "num_classes": 1, "data.bucket_multiple": 1, "optim.warmup_steps": 0}


def _check_values(cfg: TrainConfig, origin):
    def value(key: str):
        return reduce(getattr, key.split("."), cfg)

    def need(ok: bool, key: str, rule: str):
        if not ok:
            raise ConfigError(f"config.{key} must be {rule}, got {_show(value(key))}{origin('config.' + key)}")

    def number(v, low=-math.inf, high=math.inf) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high

    for key, low in _AT_LEAST.items():
        need(value(key) >= low, key, f"at least {low}")
    for key in ("optim.lr", "optim.eps", "optim.grad_clip", "latent_scale"):
        need(number(value(key)) and value(key) > 0, key, "positive")
    need(number(cfg.optim.weight_decay, 0), "optim.weight_decay", "0 or more")
    need(number(cfg.caption_dropout, 0, 1), "caption_dropout", "between 0 and 1")
    need(number(cfg.ema_decay, 0, 1), "ema_decay", "between 0 and 1")
    need(cfg.max_seconds is None or number(cfg.max_seconds, 0), "max_seconds", "0 or more (or null: no limit)")
    need(1 <= cfg.data.resolution <= MAX_RESOLUTION, "data.resolution", f"between 1 and {MAX_RESOLUTION} (pixels)")
    need(all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_RESOLUTION for s in cfg.data.scales),
         "data.scales", f"a list of resolutions between 1 and {MAX_RESOLUTION}, e.g. [64]")
    need(len(cfg.optim.betas) == 2 and all(number(b, 0) and b < 1 for b in cfg.optim.betas), "optim.betas",
         "two numbers in [0, 1), e.g. [0.9, 0.999]")
    need(cfg.mixed_precision in MIXED_PRECISION, "mixed_precision", f"one of {', '.join(MIXED_PRECISION)}")
    need(cfg.compile_mode in COMPILE_MODES, "compile_mode", f"one of {', '.join(COMPILE_MODES)}")
    need(cfg.optim.lr_scaling in LR_SCALING, "optim.lr_scaling", f"one of {', '.join(LR_SCALING)}")
    need(bool(cfg.output_dir.strip()), "output_dir", "a folder")
    for key in ("sample_prompts", "init_new_modules"):
        need(all(isinstance(s, str) for s in getattr(cfg, key)), key, "a list of text")
    if cfg.init_from and cfg.init_from_dit:
        raise ConfigError(f"config sets both init_from and init_from_dit{origin('config.init_from_dit')}: "
                          "start from one of them")
    _check_model(cfg, need, origin)


def _check_model(cfg: TrainConfig, need, origin):
    need(cfg.model in PRESETS, "model", f"a model preset: one of {', '.join(PRESETS)}")
    fields = {f.name: f.type for f in dataclasses.fields(PixArtConfig)}
    for name, value in cfg.model_overrides.items():
        key = f"config.model_overrides.{name}"
        if name not in fields:
            raise ConfigError(f"unknown model setting {key}{origin(key)}; known: {sorted(fields)}")
        _check_type(value, fields[name], key, origin)
        if fields[name] in ("int", "float") and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{key} must be positive, got {_show(value)}{origin(key)}")
    try:
        model = cfg.model_config()
    except ValueError as e:  # PixArtConfig's own checks: sizes that do not divide, an unknown adaln
        raise ConfigError(f"config.model {cfg.model} with model_overrides {cfg.model_overrides} is not a valid "
                          f"model: {e}{origin('config.model_overrides')}") from None
    if not cfg.class_conditional and cfg.max_length > model.model_max_length:
        raise ConfigError(f"config.max_length {cfg.max_length} is longer than the model's caption length "
                          f"(model_max_length {model.model_max_length}){origin('config.max_length')}: lower "
                          "max_length or set model_overrides.model_max_length")


def _show(value, quote: bool = True, limit: int = 80) -> str:
    """A value as a message shows it: its repr (or the text, ``quote=False``), cut to ``limit`` characters."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text):,} characters)"
