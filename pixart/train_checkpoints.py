"""The trainer's checkpoints: save one, find the latest, resume from it.

``output_dir/checkpoints/step-NNNNNNN/`` holds ``model/`` and ``ema/`` (native folders that every
command loads), the optimiser and LR-schedule state and the config. It is written under a temporary
name and renamed when complete, so a crash never leaves a half checkpoint.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from pixart.checkpoints import build_from_state_dict, read_native, save_transformer
from pixart.model import PixArt
from pixart.train_config import TrainConfig, config_yaml


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
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
    (tmp / "train_config.yaml").write_text(config_yaml(cfg))
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
    config, sd, _ = read_native(folder)
    loaded = build_from_state_dict(config, sd, source=str(folder))
    module.load_state_dict(loaded.state_dict(), strict=True)


def resume_from_latest(output_dir: Path, cfg: TrainConfig, model, ema, label_emb, optimizer, lr_sched, *,
                       log, warn: bool) -> int:
    """Load the latest checkpoint of ``output_dir`` into the (not yet wrapped) modules and optimiser
    state; the step to go on from (0 without a checkpoint). ``warn``: say so when the ``init_*``
    settings changed since the checkpoint (one process does)."""
    ckpt = latest_checkpoint(output_dir)
    if ckpt is None:
        log(f"--resume: no checkpoint in {output_dir / 'checkpoints'}, starting from scratch")
        return 0
    _load_weights(model, ckpt / "model")
    _load_weights(ema, ckpt / "ema")
    if label_emb is not None:
        label_emb.load_state_dict(load_file(ckpt / "label_embedding.safetensors"))
    state = torch.load(ckpt / "training_state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    lr_sched.load_state_dict(state["lr_scheduler"])
    start = state["step"]
    log(f"resumed from {ckpt} at step {start}")
    changed = _changed_init(ckpt, cfg) if warn else []
    if changed:
        # a warning, not an error: resuming is what was asked, but the new parent is not used
        msg = (f"resuming {output_dir} from its own checkpoint at step {start}; the changed {', '.join(changed)} "
               f"has no effect. To train from the new parent, use a fresh output_dir.")
        warnings.warn(msg, stacklevel=3)  # attributed to train()'s caller
        log(f"warning: {msg}")
    return start
