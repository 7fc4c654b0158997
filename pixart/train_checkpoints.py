"""The trainer's checkpoints: save one, find the latest, resume from it.

``output_dir/checkpoints/step-NNNNNNN/`` holds ``model/`` and ``ema/`` (native folders that every
command loads), the optimiser and LR-schedule state and the config. It is written under a temporary
name and renamed when complete, so a crash never leaves a half checkpoint.

Resuming reads the whole checkpoint first (``read_latest``) and loads it into the run's modules
(``resume_from``) before the run writes anything: a damaged checkpoint, or one of another model, is
a ``CheckpointError`` naming it and saying what to do, and the run folder is left as it was.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from pixart.checkpoints import CheckpointError, build_from_state_dict, read_native, save_transformer
from pixart.errors import read_safetensors, read_yaml
from pixart.train_config import ConfigError, TrainConfig, config_yaml

LABELS = "label_embedding.safetensors"


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
        save_file({k: v.detach().cpu().contiguous() for k, v in label_emb.state_dict().items()}, tmp / LABELS)
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "lr_scheduler": lr_sched.state_dict()},
               tmp / "training_state.pt")
    (tmp / "train_config.yaml").write_text(config_yaml(cfg))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old)
    return final


_INIT_FIELDS = ("init_from", "init_from_dit", "init_new_modules")


def refuse_existing_run(output_dir: Path):
    """A fresh run must not mix its checkpoints and metrics into an earlier run's folder."""
    ckpt = latest_checkpoint(output_dir)
    if ckpt is not None:
        raise ConfigError(f"output_dir {output_dir} already holds a run (latest checkpoint {ckpt.name}): resume it "
                          "(--resume, or resume=True), or choose another output_dir")


@dataclass
class SavedRun:
    """A checkpoint's contents, read and checked before the resumed run changes anything."""

    folder: Path
    step: int
    model: dict  # state dicts
    ema: dict
    label_emb: dict | None
    state: dict  # optimiser and LR-schedule states
    config: dict  # the config it was trained with (train_config.yaml)


def _damaged(ckpt: Path, why) -> CheckpointError:
    """The error of a checkpoint that cannot be resumed from, saying what the user can do."""
    older = [p for p in sorted(ckpt.parent.glob("step-*")) if p != ckpt]
    then = f"resume from the one before ({older[-1].name})" if older else "start the run over"
    return CheckpointError(f"cannot resume from checkpoint {ckpt}: {why}. Delete {ckpt} to {then}, "
                           "or train in another output_dir")


def read_latest(output_dir: Path) -> SavedRun | None:
    """The latest checkpoint of ``output_dir`` (None without one), every file of it read."""
    ckpt = latest_checkpoint(output_dir)
    if ckpt is None:
        return None
    try:
        model, ema = read_native(ckpt / "model")[1], read_native(ckpt / "ema")[1]
        labels = (read_safetensors(ckpt / LABELS, CheckpointError, "label embedding")
                  if (ckpt / LABELS).exists() else None)
        state = _read_state(ckpt / "training_state.pt")
        config = read_yaml(ckpt / "train_config.yaml", CheckpointError, "checkpoint config")
    except CheckpointError as e:
        raise _damaged(ckpt, e) from None
    if not isinstance(config, dict):
        raise _damaged(ckpt, f"{ckpt / 'train_config.yaml'} is not a config (a mapping of keys)")
    return SavedRun(ckpt, state["step"], model, ema, labels, state, config)


def _read_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:  # missing, truncated, not a torch file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read {path}: {first}") from None
    kinds = {"step": int, "optimizer": dict, "lr_scheduler": dict}
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in kinds.items()):
        raise CheckpointError(f"{path} is not a training state (step, optimizer, lr_scheduler)")
    return state


def _changed_init(saved: dict, cfg: TrainConfig) -> list[str]:
    """Which ``init_*`` settings differ from those the checkpoint was trained with (``key (old -> new)``).

    A resumed run continues from the checkpoint's own weights, so a parent changed since (a longer
    stage 1, another DiT) would otherwise be ignored without a word. Paths compare resolved."""
    def norm(key, value):
        return str(Path(value).resolve()) if key != "init_new_modules" and value else (value or None)

    return [f"{k} ({saved.get(k)!r} -> {getattr(cfg, k)!r})" for k in _INIT_FIELDS
            if norm(k, saved.get(k)) != norm(k, getattr(cfg, k))]


def _fit(saved: SavedRun, output_dir: Path, module: torch.nn.Module, sd: dict, what: str):
    """Load ``sd`` into ``module``; a checkpoint of another model is an error saying which config fits it."""
    try:
        loaded = build_from_state_dict(module.config, sd, source=f"{saved.folder / what}")
    except CheckpointError as e:
        raise CheckpointError(f"cannot resume {output_dir}: {e}. The run was trained with another model; resume it "
                              f"with its own config ({output_dir / 'train_config.yaml'}), or train in another "
                              "output_dir") from None
    module.load_state_dict(loaded.state_dict(), strict=True)


def resume_from(saved: SavedRun, output_dir: Path, cfg: TrainConfig, model, ema, label_emb, optimizer, lr_sched, *,
                log, warn: bool) -> int:
    """Load ``saved`` into the (not yet wrapped) modules and optimiser state; the step to go on from.
    ``warn``: say so when the ``init_*`` settings changed since the checkpoint (one process does)."""
    _fit(saved, output_dir, model, saved.model, "model")
    _fit(saved, output_dir, ema, saved.ema, "ema")
    if (label_emb is None) != (saved.label_emb is None):
        trained = "without" if saved.label_emb is None else "with"
        raise CheckpointError(f"cannot resume {output_dir}: it was trained {trained} class labels (class_conditional), "
                              f"the config says class_conditional={cfg.class_conditional}; resume with its own config "
                              f"({output_dir / 'train_config.yaml'}), or train in another output_dir")
    if label_emb is not None:
        want = {k: tuple(v.shape) for k, v in label_emb.state_dict().items()}
        if {k: tuple(v.shape) for k, v in saved.label_emb.items()} != want:
            raise CheckpointError(f"cannot resume {output_dir}: its label embedding ({saved.folder / LABELS}) does not "
                                  f"fit num_classes={cfg.num_classes}; resume with its own num_classes")
        label_emb.load_state_dict(saved.label_emb)
    try:
        optimizer.load_state_dict(saved.state["optimizer"])
        lr_sched.load_state_dict(saved.state["lr_scheduler"])
    except (KeyError, ValueError, TypeError) as e:  # torch's check of the saved state against these parameters
        raise _damaged(saved.folder, f"its optimiser state does not fit this model ({e})") from None
    log(f"resumed from {saved.folder} at step {saved.step}")
    changed = _changed_init(saved.config, cfg) if warn else []
    if changed:
        # a warning, not an error: resuming is what was asked, but the new parent is not used
        msg = (f"resuming {output_dir} from its own checkpoint at step {saved.step}; the changed {', '.join(changed)} "
               f"has no effect. To train from the new parent, use a fresh output_dir.")
        warnings.warn(msg, stacklevel=3)  # attributed to train()'s caller
        log(f"warning: {msg}")
    return saved.step
