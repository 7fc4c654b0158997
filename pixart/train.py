"""The PixArt-α trainer: one loop for all three stages; a stage is a config.

Read top to bottom: config → accelerator → model (fresh, ``init_from`` a previous stage, or
``init_from_dit``) → EMA, optimiser, LR schedule → data (feature cache or raw images + T5/VAE)
→ resume → loop (caption dropout, timesteps, hybrid IDDPM loss, clip, step, EMA) → checkpoints.

Stages (paper §2.2; configs in ``configs/``):
1. pixel dependency: class-conditional (``class_conditional: true``: a label embedding table feeds
   the cross-attention as a one-token "caption"; the null caption is the dropped label), or start
   from DiT (``init_from_dit``);
2. text-image alignment on dense captions (``init_from`` stage 1);
3. high-aesthetic, higher-resolution, multi-aspect fine-tuning (``data.multi_scale: true``).

Determinism: every random draw of a step (timesteps, noise, caption dropout, the VAE posterior
sample) comes from a generator seeded by (seed, step, micro-step, process), and the batch order
is a function of (seed, epoch). A run stopped and resumed from a checkpoint therefore repeats
the uninterrupted run's losses exactly (on CPU; GPU kernels may add their own nondeterminism).
``max_seconds`` or SIGTERM (``timeout``, schedulers) stop the loop after a step, with a checkpoint;
SIGTERM then exits with status 143.

Launch: ``pixart-bench train --config CONFIG.yaml`` or
``accelerate launch --num_processes N [--multi_gpu] -m bench train --config CONFIG.yaml``;
mixed precision, FSDP / DeepSpeed come from accelerate's config.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from pixart.checkpoints import build_from_state_dict, read_native, read_state_dict, save_transformer
from pixart.data import BucketBatches, Bucketer, DataError, load_image, read_items, to_tensor
from pixart.diffusion import GaussianDiffusion
from pixart.features import FeatureStore, posterior
from pixart.model import PixArt, PixArtConfig, trim_text_padding

# ------------------------------------------------------------------------------------------
# Config: plain dataclasses, loaded from YAML (no eval)
# ------------------------------------------------------------------------------------------


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
    # same image at twice the pixels keeps more of its layout at equal noise). For the world model's
    # 128 px stage 3 it made no difference (docs/world.md). A pipeline for such a model samples
    # with its VAE's scaling_factor × latent_scale (`pixart.vae.VAE.rescaled`).
    latent_scale: float = 1.0
    seed: int = 0

    def model_config(self) -> PixArtConfig:
        return PixArtConfig.preset(self.model, **self.model_overrides)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] = ()) -> TrainConfig:
    """YAML file (optional) + ``key.sub=value`` overrides (values parsed as YAML scalars) → TrainConfig."""
    raw = yaml.safe_load(Path(path).read_text()) if path else {}
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


# ------------------------------------------------------------------------------------------
# Pieces of the loop
# ------------------------------------------------------------------------------------------


class LabelEmbedder(torch.nn.Module):
    """Stage 1: class label → one "caption" token of T5 width, fed through the caption path."""

    def __init__(self, num_classes: int, channels: int):
        super().__init__()
        self.table = torch.nn.Embedding(num_classes, channels)
        torch.nn.init.normal_(self.table.weight, std=channels**-0.5)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.table(labels)[:, None]  # [B, 1, C]


def drop_mask(batch: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """Which captions of the batch become the null caption (probability ``p`` each), on ``gen``'s device."""
    return torch.rand(batch, generator=gen, device=gen.device) < p


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay after ``step`` optimiser steps: min(decay, (1 + step) / (10 + step)).

    The official trainer uses the constant decay from step 1 (after 1,000 steps at 0.9999 the EMA
    is still 90% initialisation, harmless at 300K steps); the warm-up makes short runs and
    stage hand-overs (``init_from: .../ema``) use trained weights.
    """
    return min(decay, (1 + step) / (10 + step))


def step_generator(seed: int, step: int, micro: int, rank: int, device="cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(((seed * 1_000_003 + step) * 97 + micro) * 1009 + rank)


def build_model(cfg: TrainConfig, log) -> PixArt:
    config = cfg.model_config()
    if cfg.init_from_dit:
        from pixart.dit_init import pixart_from_dit

        model = pixart_from_dit(cfg.init_from_dit, caption_channels=config.caption_channels,
                                model_max_length=config.model_max_length, seed=cfg.seed)
        log(f"initialised from DiT {cfg.init_from_dit} (re-parameterised at t=500)")
    elif cfg.init_from:
        # The positional embedding is derived from the *new* config (resolution may change between
        # stages); any other difference must be named in init_new_modules, or loading fails.
        torch.manual_seed(cfg.seed)
        _, _, sd = read_state_dict(Path(cfg.init_from), config)
        sd = {k: v.float() for k, v in sd.items() if k != "pos_embed"}
        model = build_from_state_dict(config, sd, source=cfg.init_from, new_modules=tuple(cfg.init_new_modules))
        log(f"initialised from {cfg.init_from}" + (f" (new: {cfg.init_new_modules})" if cfg.init_new_modules else ""))
    else:
        torch.manual_seed(cfg.seed)
        model = PixArt(config)
    if cfg.grad_checkpointing:
        model.enable_gradient_checkpointing()
    return model.float()


class Batches:
    """Yields this process's (latents-or-images, y, mask, labels, bucket) for a step; raw or cached."""

    def __init__(self, cfg: TrainConfig, items, rank: int, world: int, device, log):
        self.cfg, self.items, self.rank, self.world, self.device, self.log = cfg, items, rank, world, device, log
        d = cfg.data
        bucketer = d.bucketer()
        self.store = FeatureStore(d.features) if d.features else None
        if self.store is not None:
            missing = [it.key for it in items if it.key not in self.store]
            if missing:
                raise DataError(f"{len(missing)} items are not in the feature cache {d.features} (e.g. {missing[0]}); "
                                "run `pixart-bench extract-features` first")
            self.text_encoder = self.vae = None
            self.table = _PreloadedFeatures(self.store, items, cfg.max_length, device) if d.preload_features else None
        else:
            self.text_encoder, self.vae = _encoders(cfg, device)
        bucket_of = [bucketer(it) for it in items]
        self.order = BucketBatches(bucket_of, cfg.batch_size * world, cfg.seed)

    def get(self, step: int, gen: torch.Generator, device_gen: torch.Generator | None = None):
        """``device_gen`` (on the training device) draws the latents' noise instead of ``gen``.

        Captions come trimmed of the padding slots no caption of the batch uses (``trim_text_padding``),
        here rather than in the loop: for the preloaded cache the trim is worked out on the host."""
        bucket, idx = self.order.batch(step, self.rank, self.world)
        items = [self.items[i] for i in idx]
        labels = to_device([int(it.label or 0) for it in items], self.device)
        if self.store is not None and self.table is not None:
            mean, std, y, mask = self.table.get(idx)
        elif self.store is not None:
            parts = [self.store.get(it.key, self.cfg.max_length) for it in items]
            mean, std = torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])
            y, mask = trim_text_padding(torch.stack([p[2] for p in parts]), torch.stack([p[3] for p in parts]))
        else:
            images, kept = [], []
            for it in items:
                try:
                    images.append(to_tensor(load_image(it.path), bucket))
                    kept.append(it)
                except DataError as e:
                    if not self.cfg.data.skip_bad:
                        raise
                    self.log(f"skipping: {e}")
            if not images:
                raise DataError(f"every image of step {step}'s batch was unreadable")
            labels = to_device([int(it.label or 0) for it in kept], self.device)
            items = kept
            mean, std = posterior(self.vae, torch.stack(images))
            y, mask = (trim_text_padding(*self.text_encoder.encode([it.caption for it in items]))
                       if not self.cfg.class_conditional else (None, None))
            mean, std = mean.float().cpu(), std.float().cpu()
        if device_gen is not None:
            mean, std = mean.to(self.device), std.to(self.device)
            eps = torch.randn(mean.shape, generator=device_gen, device=self.device)
        else:
            eps = torch.randn(mean.shape, generator=gen).to(mean.device)
        latents = (mean + std * eps) * self.cfg.latent_scale
        if y is not None:
            y, mask = y.float().to(self.device), mask.to(self.device)
        return latents.to(self.device), y, mask, labels, bucket


def to_device(values, device) -> torch.Tensor:
    """A host list as a tensor on ``device``. To a GPU through pinned memory without waiting: a plain
    ``torch.tensor(..., device="cuda")`` copy synchronises the stream, so the host could not queue
    the next step's kernels while the GPU works."""
    t = torch.tensor(values)
    if torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


class _PreloadedFeatures:
    """The feature cache of ``items``, read once into one stacked tensor per latent shape, so a batch
    is an index into memory instead of 4 × batch reads from the safetensors shards (at batch 1,024
    those reads, not the GPU, set the pace). Same tensors as ``FeatureStore.get`` item by item, and
    trimmed as ``trim_text_padding`` trims them, from text lengths kept on the host."""

    def __init__(self, store: FeatureStore, items, max_length: int, device="cpu"):
        rows: dict[tuple, list] = {}
        self.where = []  # item index -> (latent shape, row)
        self.text_len = []  # item index -> 1 + its last real text slot (0: no real token)
        for it in tqdm(items, desc="loading feature cache", leave=False):
            part = store.get(it.key, max_length)
            group = rows.setdefault(tuple(part[0].shape), [])
            self.where.append((tuple(part[0].shape), len(group)))
            real = part[3].bool().nonzero()
            self.text_len.append(int(real.max()) + 1 if len(real) else 0)
            group.append(part)
        # kept on the training device: a batch is then an index there, with no host-to-device copy
        self.tables = {shape: [torch.stack([p[k] for p in group]).to(device) for k in range(4)]
                       for shape, group in rows.items()}

    def get(self, idx):
        shapes = {self.where[i][0] for i in idx}
        if len(shapes) != 1:  # a batch is one aspect bucket, so one latent shape
            raise DataError(f"a batch mixes latent shapes {sorted(shapes)}; the feature cache does not match the buckets")
        tables = self.tables[shapes.pop()]
        rows = to_device([self.where[i][1] for i in idx], tables[0].device)
        mean, std, y, mask = [t.index_select(0, rows) for t in tables]
        lengths = [self.text_len[i] for i in idx]
        if min(lengths) > 0:  # trim_text_padding's rule, without reading the mask back from the GPU
            y, mask = y[:, : max(lengths)], mask[:, : max(lengths)]
        return mean, std, y, mask


def _encoders(cfg: TrainConfig, device):
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    if not cfg.vae:
        raise DataError("training from raw images needs a VAE folder (vae: PATH) or a feature cache (data.features)")
    vae = VAE.from_pretrained(cfg.vae, device=device)
    if cfg.class_conditional:
        return None, vae
    if not cfg.t5:
        raise DataError("training on captions needs a T5 folder (t5: PATH) or a feature cache (data.features)")
    return TextEncoder.from_pretrained(cfg.t5, max_length=cfg.max_length, device=device), vae


# ------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------


def latest_checkpoint(output_dir: Path) -> Path | None:
    ckpts = sorted((output_dir / "checkpoints").glob("step-*"))
    return ckpts[-1] if ckpts else None


def save_checkpoint(output_dir: Path, step: int, model, ema, label_emb, optimizer, lr_sched, cfg: TrainConfig, keep: int):
    """checkpoints/step-NNNNNNN/{model, ema}/ (native) + training_state.pt, renamed into place when complete."""
    root = output_dir / "checkpoints"
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_transformer(model, tmp / "model", "native")
    save_transformer(ema, tmp / "ema", "native")
    if label_emb is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in label_emb.state_dict().items()}, tmp / "label_embedding.safetensors")
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "lr_scheduler": lr_sched.state_dict()},
               tmp / "training_state.pt")
    (tmp / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old)
    return final


_INIT_FIELDS = ("init_from", "init_from_dit", "init_new_modules")


def _changed_init(ckpt: Path, cfg: TrainConfig) -> list[str]:
    """Which ``init_*`` settings differ from those the checkpoint was trained with (``key (old -> new)``).

    A resumed run continues from the checkpoint's own weights, so a parent changed since (a longer
    stage 1, another DiT) would otherwise be ignored without a word. Paths compare resolved."""
    saved_file = ckpt / "train_config.yaml"
    if not saved_file.is_file():
        return []
    saved = yaml.safe_load(saved_file.read_text()) or {}

    def norm(key, value):
        return str(Path(value).resolve()) if key != "init_new_modules" and value else (value or None)

    return [f"{k} ({saved.get(k)!r} -> {getattr(cfg, k)!r})" for k in _INIT_FIELDS
            if norm(k, saved.get(k)) != norm(k, getattr(cfg, k))]


def _load_weights(module: PixArt, folder: Path):
    config, sd, meta = read_native(folder)
    loaded = build_from_state_dict(config, sd, source=str(folder))
    module.load_state_dict(loaded.state_dict(), strict=True)


# ------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------


class SigtermStop:
    """While active, SIGTERM only sets ``received`` (the loop then saves and stops); the previous handler
    is restored on exit. Inactive (``active=False``), or outside the main thread (Python lets only the
    main thread set handlers), it does nothing and ``received`` stays False."""

    def __init__(self, active: bool = True):
        self.active, self.received, self._previous = active, False, None

    def _handle(self, signum, frame):
        self.received = True

    def __enter__(self):
        if self.active and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    from accelerate import Accelerator
    from diffusers.optimization import get_constant_schedule_with_warmup

    from accelerate.state import AcceleratorState

    # accelerate keeps one state per Python process; a second train() call in the same process
    # (a notebook, the tests) may ask for another precision, so forget the previous run's choice.
    AcceleratorState._reset_state()
    if not cfg.latent_scale > 0:
        raise ValueError(f"latent_scale must be positive, got {cfg.latent_scale}")
    # cpu=True on GPU-less machines makes `accelerate launch --num_processes N` run N gloo processes
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                              cpu=not torch.cuda.is_available())
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    if cfg.tf32 and device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    main = accelerator.is_main_process
    out = Path(cfg.output_dir)
    log = (lambda msg: tqdm.write(msg)) if main else (lambda msg: None)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))

    # model, EMA, optimiser, schedule
    model = build_model(cfg, log)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    label_emb = LabelEmbedder(cfg.num_classes, model.config.caption_channels) if cfg.class_conditional else None
    params = list(model.parameters()) + (list(label_emb.parameters()) if label_emb is not None else [])
    global_batch = cfg.batch_size * world * cfg.grad_accum
    lr = cfg.optim.lr * (math.sqrt(global_batch / 256) if cfg.optim.lr_scaling == "sqrt" else 1.0)
    # fused on CUDA: one kernel for the whole update, which a small model's step time is made of
    optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                                  weight_decay=cfg.optim.weight_decay, fused=True if device.type == "cuda" else None)
    lr_sched = get_constant_schedule_with_warmup(optimizer, cfg.optim.warmup_steps)
    diffusion = GaussianDiffusion(learn_sigma=model.config.pred_sigma)

    # data
    if cfg.data.shards and main:  # unpack once, before the other processes read the folder
        read_items(shards=cfg.data.shards, shard_dir=out / "shards", skip_bad=True, log=lambda m: None)
    accelerator.wait_for_everyone()
    items = read_items(root=cfg.data.root, manifest=cfg.data.manifest, shards=cfg.data.shards, shard_dir=out / "shards",
                       skip_bad=cfg.data.skip_bad, log=log)
    if cfg.class_conditional and any(it.label is None for it in items):
        raise DataError("class_conditional training needs a 'class' for every manifest item")
    batches = Batches(cfg, items, rank, world, device, log)

    # resume (weights are loaded before accelerate wraps the model)
    start = 0
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt is not None:
        _load_weights(model, ckpt / "model")
        _load_weights(ema, ckpt / "ema")
        if label_emb is not None:
            label_emb.load_state_dict(load_file(ckpt / "label_embedding.safetensors"))
        state = torch.load(ckpt / "training_state.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        start = state["step"]
        log(f"resumed from {ckpt} at step {start}")
        changed = _changed_init(ckpt, cfg) if main else []  # only the main process warns
        if changed:
            # a warning, not an error: resuming is what was asked, but the new parent is not used
            msg = (f"resuming {out} from its own checkpoint at step {start}; the changed {', '.join(changed)} "
                   f"has no effect. To train from the new parent, use a fresh output_dir.")
            warnings.warn(msg, stacklevel=2)
            log(f"warning: {msg}")
    elif resume:
        log(f"--resume: no checkpoint in {out / 'checkpoints'}, starting from scratch")
    metrics_path = out / "metrics.jsonl"
    if main:
        _truncate_metrics(metrics_path, start)

    if label_emb is not None:
        model, label_emb, optimizer = accelerator.prepare(model, label_emb, optimizer)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    # the LR schedule is not prepared: accelerate would step it once per process; ours counts optimiser steps
    ema.to(device)
    ema_params = list(ema.parameters())
    raw_model = accelerator.unwrap_model(model)
    writer = _tensorboard(out / "tensorboard") if (cfg.tensorboard and main) else None

    bar = tqdm(total=cfg.max_steps, initial=start, desc="train", disable=not (progress and main), unit="step")
    history = []
    # On a GPU every read of a value back to the host (`.item()`) waits for the queued kernels, so
    # the host could not run ahead and queue the next step. The step's metrics stay on the device
    # and are read (one sync) every log_every steps, and before a checkpoint (on a CPU too: same files).
    on_cuda = device.type == "cuda"
    read_every = max(1, cfg.log_every)
    pending: list[tuple[dict, torch.Tensor]] = []  # (host part of a record, its device values)
    loss_keys: list[str] = []

    def flush():
        if not pending:
            return
        values = torch.stack([v for _, v in pending]).cpu().tolist()
        for (host, _), row in zip(pending, values):
            record = {"step": host["step"], **dict(zip(loss_keys, row)), "lr": host["lr"],
                      "grad_norm": row[-1] if host["clipped"] else None, "sec_per_step": host["sec_per_step"]}
            history.append(record)
            if main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                if writer is not None:
                    for k in ("loss", "mse", "vb", "lr"):
                        if record.get(k) is not None:
                            writer.add_scalar(f"train/{k}", record[k], record["step"])
        if main:
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", refresh=False)  # shown at tqdm's own pace
        pending.clear()

    fwd = torch.compile(model) if cfg.compile else model
    t_last = t_start = time.perf_counter()
    step = start
    out_of_time = False
    # SIGTERM (sent by `timeout`, SLURM and most schedulers before they kill) stops like max_seconds:
    # after the current step, with a checkpoint, then SystemExit(143), so that a caller running several
    # stages does not go on to the next one. Every process must see it at the same step, so it is only
    # caught where the stop flag is already shared: one process, or several with max_seconds.
    sigterm = SigtermStop(active=world == 1 or cfg.max_seconds is not None)
    with sigterm:
        while step < cfg.max_steps and not out_of_time:
            micro_losses = []
            for micro in range(cfg.grad_accum):
                gen = step_generator(cfg.seed, step, micro, rank)
                # on a GPU, drawing ~10^6 normals per step on the host and copying them set the pace
                dgen = step_generator(cfg.seed, step, micro, rank, device) if cfg.device_rng and on_cuda else None
                data_step = step * cfg.grad_accum + micro
                latents, y, mask, labels, bucket = batches.get(data_step, gen, dgen)
                b = latents.shape[0]
                if cfg.class_conditional:
                    y = label_emb(labels)
                    mask = torch.ones(b, 1, dtype=torch.long, device=device)
                # with a device generator nothing of the step's randomness is copied from the host (each copy syncs)
                rng = dgen if dgen is not None else gen
                drop = drop_mask(b, cfg.caption_dropout, rng).to(device)
                t = diffusion.sample_timesteps(b, rng.device, generator=rng).to(device)
                null = raw_model.y_embedder.y_embedding[: y.shape[1]].to(y.dtype)
                y = torch.where(drop[:, None, None], null[None], y)  # official: the prompt's mask is kept
                noise = (torch.randn(latents.shape, generator=dgen, device=device) if dgen is not None
                         else torch.randn(latents.shape, generator=gen).to(device))
                micro_kwargs = {}
                if raw_model.config.micro_conditions:
                    h, w = bucket
                    micro_kwargs = {"resolution": to_device([[float(h), float(w)]], device).repeat(b, 1),
                                    "aspect_ratio": torch.full((b, 1), h / w, device=device)}
                with accelerator.accumulate(model), accelerator.autocast():
                    losses = diffusion.training_losses(lambda xt, tt: fwd(xt, tt, y, mask, **micro_kwargs), latents, t, noise)
                    loss = losses["loss"].mean()
                    accelerator.backward(loss)
                    grad_norm = accelerator.clip_grad_norm_(params, cfg.optim.grad_clip) if accelerator.sync_gradients else None
                    optimizer.step()
                    if accelerator.sync_gradients:
                        lr_sched.step()
                    optimizer.zero_grad(set_to_none=True)
                loss_keys = list(losses)
                micro_losses.append(torch.stack([v.detach().float().mean() for v in losses.values()]))
            step += 1
            with torch.no_grad():  # EMA of the optimiser step, warmed up so short runs are not dominated by the init
                decay = ema_decay_at(step, cfg.ema_decay)
                torch._foreach_lerp_(ema_params, [p.detach().float() for p in raw_model.parameters()], 1.0 - decay)
            clipped = grad_norm is not None
            norm = torch.as_tensor(grad_norm, device=device) if clipped else torch.zeros((), device=device)
            values = torch.cat([torch.stack(micro_losses).mean(0), norm.detach().float().reshape(1)])
            now = time.perf_counter()
            pending.append(({"step": step, "lr": lr_sched.get_last_lr()[0], "clipped": clipped,
                             "sec_per_step": now - t_last}, values))
            t_last = now
            if main:
                bar.update(1)
            if len(pending) >= read_every:  # and before each checkpoint, below
                flush()
            stopping = sigterm.received
            if cfg.max_seconds is not None or stopping:  # every process must agree, or one would wait for the others
                out_of_time = stopping or now - t_start >= cfg.max_seconds
                if world > 1:
                    flag = torch.tensor([float(out_of_time)], device=device)
                    out_of_time = bool(accelerator.gather(flag).max().item())
                if out_of_time:
                    why = "SIGTERM received" if stopping else f"max_seconds={cfg.max_seconds:g} reached"
                    log(f"{why} at step {step}; saving (resume continues to {cfg.max_steps})")
            if step % cfg.save_every == 0 or step == cfg.max_steps or out_of_time:
                flush()
                accelerator.wait_for_everyone()
                if main:
                    save_checkpoint(out, step, raw_model, ema, accelerator.unwrap_model(label_emb) if label_emb is not None else None,
                                    optimizer, lr_sched, cfg, cfg.keep_checkpoints)
                accelerator.wait_for_everyone()
            if main and cfg.sample_every and step % cfg.sample_every == 0 and cfg.sample_prompts:
                _sample_grid(cfg, ema, batches, out / "samples" / f"step-{step:07d}.png")
    flush()
    bar.close()
    if writer is not None:
        writer.close()
    if sigterm.received:
        raise SystemExit(128 + signal.SIGTERM)  # the checkpoint of the last step is saved
    # record a checksum of every process's weights: data-parallel replicas must be identical
    checksum = torch.stack([sum(p.detach().double().sum() for p in raw_model.parameters()),
                            sum(p.detach().double().abs().sum() for p in raw_model.parameters())]).to(device)
    sums = accelerator.gather(checksum[None]).cpu().tolist()
    if main:
        (out / "process_checksums.json").write_text(json.dumps({"step": step, "processes": sums}) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"history": history, "output_dir": str(out), "final_checkpoint": str(latest_checkpoint(out))}


def _truncate_metrics(path: Path, start: int):
    """On resume, drop records of steps after the checkpoint (they will be recomputed)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= start]
    path.write_text("".join(line + "\n" for line in keep))


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))


@torch.no_grad()
def _sample_grid(cfg: TrainConfig, ema: PixArt, batches: Batches, path: Path):
    """A grid of the EMA model's samples for the fixed prompts (needs T5 and VAE folders)."""
    if batches.text_encoder is None or batches.vae is None:
        return
    from PIL import Image

    from pixart.pipeline import PixArtPipeline, SampleSettings

    pipe = PixArtPipeline(copy.deepcopy(ema), batches.text_encoder, batches.vae.rescaled(cfg.latent_scale))
    size = cfg.data.resolution
    images = pipe(cfg.sample_prompts, list(range(len(cfg.sample_prompts))),
                  SampleSettings(steps=20, height=size, width=size, resolution_binning=False), progress=False)
    grid = Image.new("RGB", (size * len(images), size))
    for i, im in enumerate(images):
        grid.paste(im, (i * size, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)

