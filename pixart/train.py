"""The PixArt-α trainer: one loop for all three stages; a stage is a config (``pixart.train_config``).

Read ``train`` top to bottom: the config checked → accelerator → the checkpoint to resume from, read
(``pixart.train_checkpoints``) → model (fresh, ``init_from`` a previous stage, or ``init_from_dit``)
→ EMA, optimiser, LR schedule → data (``pixart.train_data``: feature cache or raw images + T5/VAE)
→ resume → loop (caption dropout, timesteps, hybrid IDDPM loss, clip, step, EMA; metrics in
``pixart.train_metrics``) → checkpoints. Bad input (``pixart.errors.InputError``) is found before the
run writes anything in ``output_dir``: a refused run leaves an earlier run's files as they were.

Stages (paper §2.2; presets in ``pixart/configs/``):
1. pixel dependency: class-conditional (``class_conditional: true``: a label embedding table feeds
   the cross-attention as a one-token "caption"; the null caption is the dropped label), or start
   from DiT (``init_from_dit``);
2. text-image alignment on dense captions (``init_from`` stage 1);
3. high-aesthetic, higher-resolution, multi-aspect fine-tuning (``data.multi_scale: true``).

Determinism: every random draw of a step (timesteps, noise, caption dropout, the VAE posterior
sample) comes from a generator seeded by (seed, step, micro-step, process), and the batch order
is a function of (seed, epoch). A run stopped and resumed from a checkpoint therefore repeats
the uninterrupted run's losses exactly (on CPU; GPU kernels may add their own nondeterminism).
``max_seconds`` or SIGTERM stop the loop after a step, with a checkpoint (``pixart.train_stop``);
SIGTERM then exits with status 143.

Launch: ``pixart-bench train --config CONFIG`` or
``accelerate launch --num_processes N [--multi_gpu] -m bench train --config CONFIG``;
mixed precision, FSDP / DeepSpeed come from accelerate's config.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pixart.checkpoints import build_from_state_dict, read_state_dict
from pixart.data import DataError, read_items
from pixart.diffusion import GaussianDiffusion
from pixart.model import PixArt
from pixart.train_checkpoints import latest_checkpoint, read_latest, refuse_existing_run, resume_from, save_checkpoint
from pixart.train_config import ConfigError, DataConfig, OptimConfig, TrainConfig, config_yaml, load_config
from pixart.train_data import Batches, to_device
from pixart.train_metrics import MetricsLog, records_upto
from pixart.train_stop import EarlyStop

# the names other code imports from pixart.train; the config classes live in pixart.train_config
__all__ = ["DataConfig", "OptimConfig", "TrainConfig", "load_config", "train", "build_model", "drop_mask",
           "ema_decay_at", "step_generator", "LabelEmbedder", "Batches", "latest_checkpoint"]


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
    """The generator of one micro-step's random draws in one process (see the module's Determinism)."""
    return torch.Generator(device).manual_seed(((seed * 1_000_003 + step) * 97 + micro) * 1009 + rank)


def build_model(cfg: TrainConfig, log) -> PixArt:
    """The float32 model to train: fresh (seeded), from a previous stage (``init_from``) or from DiT."""
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


def make_accelerator(cfg: TrainConfig):
    """The run's ``accelerate.Accelerator`` (mixed precision, gradient accumulation, processes)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps one state per Python process; a second train() call in the same process
    # (a notebook, the tests) may ask for another precision, so forget the previous run's choice.
    AcceleratorState._reset_state()
    # cpu=True on GPU-less machines makes `accelerate launch --num_processes N` run N gloo processes
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                              cpu=not torch.cuda.is_available())
    if cfg.tf32 and accelerator.device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    return accelerator


def make_optimizer(cfg: TrainConfig, params: list, world: int, device: torch.device):
    """AdamW at the config's learning rate (optionally scaled by the global batch) and its warm-up schedule."""
    from diffusers.optimization import get_constant_schedule_with_warmup

    global_batch = cfg.batch_size * world * cfg.grad_accum
    lr = cfg.optim.lr * (math.sqrt(global_batch / 256) if cfg.optim.lr_scaling == "sqrt" else 1.0)
    # fused on CUDA: one kernel for the whole update, which a small model's step time is made of
    optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                                  weight_decay=cfg.optim.weight_decay, fused=True if device.type == "cuda" else None)
    return optimizer, get_constant_schedule_with_warmup(optimizer, cfg.optim.warmup_steps)


def read_training_items(cfg: TrainConfig, accelerator, log) -> list:
    """The run's data items (``pixart.data.read_items``); tar shards are unpacked once, by the main process."""
    shard_dir = Path(cfg.output_dir) / "shards"
    if cfg.data.shards and accelerator.is_main_process:  # before the other processes read the folder
        read_items(shards=cfg.data.shards, shard_dir=shard_dir, skip_bad=True, log=lambda m: None)
    accelerator.wait_for_everyone()
    items = read_items(root=cfg.data.root, manifest=cfg.data.manifest, shards=cfg.data.shards, shard_dir=shard_dir,
                       skip_bad=cfg.data.skip_bad, log=log)
    if cfg.class_conditional and any(it.label is None for it in items):
        raise DataError("class_conditional training needs a 'class' for every manifest item")
    return items


def make_run_folder(out: Path, cfg: TrainConfig):
    """``output_dir`` with the run's config in it (``train_config.yaml``)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # no permission, a name too long, a file on the way
        raise ConfigError(f"config.output_dir: cannot create the folder {str(out)[:200]}: {e.strerror or e}") from None
    (out / "train_config.yaml").write_text(config_yaml(cfg))


def micro_conditions(model: PixArt, bucket: tuple[int, int], batch: int, device) -> dict:
    """The MS models' size and aspect-ratio inputs for a batch of one bucket (none for other models)."""
    if not model.config.micro_conditions:
        return {}
    h, w = bucket
    return {"resolution": to_device([[float(h), float(w)]], device).repeat(batch, 1),
            "aspect_ratio": torch.full((batch, 1), h / w, device=device)}


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train as ``cfg`` says (``resume``: from the latest checkpoint in ``output_dir``).

    Returns ``history`` (one metrics record per step of this call), ``output_dir`` and ``final_checkpoint``."""
    cfg.validate()
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"config.output_dir {out} is a file, not a folder")
    if not resume:
        refuse_existing_run(out)
    accelerator = make_accelerator(cfg)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    main = accelerator.is_main_process
    log = (lambda msg: tqdm.write(msg)) if main else (lambda msg: None)
    saved = read_latest(out) if resume else None  # read whole, before anything in out is written
    start = saved.step if saved is not None else 0
    records_upto(out / "metrics.jsonl", start)  # the metrics a resume keeps must be readable too

    model = build_model(cfg, log)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    label_emb = LabelEmbedder(cfg.num_classes, model.config.caption_channels) if cfg.class_conditional else None
    params = list(model.parameters()) + (list(label_emb.parameters()) if label_emb is not None else [])
    optimizer, lr_sched = make_optimizer(cfg, params, world, device)
    diffusion = GaussianDiffusion(learn_sigma=model.config.pred_sigma)
    batches = Batches(cfg, read_training_items(cfg, accelerator, log), rank, world, device, log)
    if saved is not None:  # weights are loaded before accelerate wraps the model
        resume_from(saved, out, cfg, model, ema, label_emb, optimizer, lr_sched, log=log, warn=main)
    elif resume:
        log(f"--resume: no checkpoint in {out / 'checkpoints'}, starting from scratch")
    if main:
        make_run_folder(out, cfg)

    if label_emb is not None:
        model, label_emb, optimizer = accelerator.prepare(model, label_emb, optimizer)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    # the LR schedule is not prepared: accelerate would step it once per process; ours counts optimiser steps
    ema.to(device)
    ema_params = list(ema.parameters())
    raw_model = accelerator.unwrap_model(model)
    raw_label_emb = accelerator.unwrap_model(label_emb) if label_emb is not None else None
    fwd = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    # CUDA graphs reuse their output memory: each step is marked as a new one, so the graphs of
    # the last step (its outputs and pending backward) are known to be finished
    graphs = cfg.compile and device.type == "cuda" and cfg.compile_mode in ("reduce-overhead", "max-autotune")
    metrics = MetricsLog(out, device, start=start, total=cfg.max_steps, every=cfg.log_every, main=main,
                         tensorboard=cfg.tensorboard, progress=progress)
    stop = EarlyStop(accelerator, cfg.max_seconds)
    step = start
    with stop:
        while step < cfg.max_steps and not stop.due:
            micro_losses = []
            for micro in range(cfg.grad_accum):
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                gen = step_generator(cfg.seed, step, micro, rank)
                # on a GPU, drawing ~10^6 normals per step on the host and copying them set the pace
                on_gpu = cfg.device_rng and device.type == "cuda"
                dgen = step_generator(cfg.seed, step, micro, rank, device) if on_gpu else None
                latents, y, mask, labels, bucket = batches.get(step * cfg.grad_accum + micro, gen, dgen)
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
                conditions = micro_conditions(raw_model, bucket, b, device)
                with accelerator.accumulate(model), accelerator.autocast():
                    losses = diffusion.training_losses(lambda x, tt: fwd(x, tt, y, mask, **conditions), latents, t, noise)
                    accelerator.backward(losses["loss"].mean())
                    synced = accelerator.sync_gradients  # the last micro-step: clip and step the schedule
                    grad_norm = accelerator.clip_grad_norm_(params, cfg.optim.grad_clip) if synced else None
                    optimizer.step()
                    if synced:
                        lr_sched.step()
                    optimizer.zero_grad(set_to_none=True)
                micro_losses.append(torch.stack([v.detach().float().mean() for v in losses.values()]))
            step += 1
            with torch.no_grad():  # EMA of the optimiser step, warmed up so short runs are not dominated by the init
                decay = ema_decay_at(step, cfg.ema_decay)
                torch._foreach_lerp_(ema_params, [p.detach().float() for p in raw_model.parameters()], 1.0 - decay)
            now = time.perf_counter()
            metrics.add(step, losses.keys(), micro_losses, grad_norm, lr_sched.get_last_lr()[0], now)
            if stop.check(now):
                log(f"{stop.reason} at step {step}; saving (resume continues to {cfg.max_steps})")
            if step % cfg.save_every == 0 or step == cfg.max_steps or stop.due:
                metrics.flush()
                accelerator.wait_for_everyone()
                if main:
                    save_checkpoint(out, step, raw_model, ema, raw_label_emb, optimizer, lr_sched, cfg, cfg.keep_checkpoints)
                accelerator.wait_for_everyone()
            if main and cfg.sample_every and step % cfg.sample_every == 0 and cfg.sample_prompts:
                sample_grid(cfg, ema, batches, out / "samples" / f"step-{step:07d}.png")
    metrics.close()
    if stop.sigterm.received:
        raise SystemExit(128 + signal.SIGTERM)  # the checkpoint of the last step is saved
    record_process_checksums(accelerator, raw_model, step, out / "process_checksums.json")
    accelerator.end_training()
    return {"history": metrics.history, "output_dir": str(out), "final_checkpoint": str(latest_checkpoint(out))}


def record_process_checksums(accelerator, model: PixArt, step: int, path: Path):
    """Every process's weight checksums (sum, sum of |w|) into ``path``: data-parallel replicas must be identical."""
    checksum = torch.stack([sum(p.detach().double().sum() for p in model.parameters()),
                            sum(p.detach().double().abs().sum() for p in model.parameters())]).to(accelerator.device)
    sums = accelerator.gather(checksum[None]).cpu().tolist()
    if accelerator.is_main_process:
        path.write_text(json.dumps({"step": step, "processes": sums}) + "\n")
    accelerator.wait_for_everyone()


@torch.no_grad()
def sample_grid(cfg: TrainConfig, ema: PixArt, batches: Batches, path: Path):
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
