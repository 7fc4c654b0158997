"""What the recipe records of each stage it trains, and what it reads back.

- ``inputs.json`` in a stage folder: what the stage started from (parent weights, data, settings).
  A stage resumes from its own checkpoints, so ``set_aside_if_inputs_changed`` moves a run whose
  inputs changed aside (nothing is deleted) and the stage starts again;
- ``wall_seconds.json``: the stage's wall time summed over the calls that trained it;
- ``loss_curve``: a compact loss curve from the trainer's ``metrics.jsonl``, for ``training.json``;
- ``continued_record``: the ``training.json`` of a run that continued another pipeline's weights,
  with the parent's history folded in.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.errors import BenchError
from pixart.errors import read_json
from pixart.files import sha256_files, sha256_folder, write_json_atomic

# what a stage's settings were when inputs.json did not record them
SETTING_DEFAULTS = {"latent_scale": 1.0}


def weights_sha256(folder: Path) -> str:
    """SHA-256 of a weights folder's ``*.safetensors`` files, in name order (what inputs.json and
    training.json record of the weights a stage started from)."""
    return sha256_folder(folder)


def loss_curve(metrics: Path, max_points: int = 500) -> list[list[float]]:
    """[[step, loss], ...] from a trainer's metrics.jsonl, at most ``max_points`` long: each point
    is the mean loss over a window of consecutive steps, placed at the window's last step (keeps
    training.json small for 50k-step runs). The trainer already drops re-logged steps when it
    resumes; should a step still appear twice, it counts once (last wins)."""
    by_step = {}
    for line in metrics.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_step[int(row["step"])] = float(row["loss"])
    steps = sorted(by_step)
    width = max(1, -(-len(steps) // max_points))
    return [[chunk[-1], sum(by_step[s] for s in chunk) / len(chunk)]
            for chunk in (steps[i:i + width] for i in range(0, len(steps), width))]


def add_wall_seconds(stage_dir: Path, seconds: float) -> float:
    """Add one call's ``seconds`` to the stage's ``wall_seconds.json``; returns the stage's total."""
    wall = Path(stage_dir) / "wall_seconds.json"
    total = (read_json(wall, BenchError, "stage wall time")["seconds"] if wall.is_file() else 0.0) + seconds
    write_json_atomic(wall, {"seconds": total}, indent=None)
    return total


def _set_aside(stage_dir: Path, base: str, why: str, log) -> None:
    aside, n = stage_dir.with_name(base), 1
    while aside.exists():
        n += 1
        aside = stage_dir.with_name(f"{base}-{n}")
    log(f"{stage_dir.name} {why}: moved it to {aside} and starting again")
    stage_dir.rename(aside)


def _recorded_inputs(stage_dir: Path) -> dict:
    """The stage's ``inputs.json``; for a run made before that file existed, the parent it names in its
    ``train_config.yaml``; {} for a stage not started."""
    record, cfg = stage_dir / "inputs.json", stage_dir / "train_config.yaml"
    if record.is_file():
        return read_json(record, BenchError, "stage record")
    if cfg.is_file():
        import yaml

        return {"init_from": yaml.safe_load(cfg.read_text()).get("init_from")}
    return {}


def set_aside_if_inputs_changed(stage_dir: Path, init_from: Path | None, data_manifest: Path | None, log,
                                settings: dict | None = None) -> None:
    """A stage resumes from its own checkpoints, so after a longer run of the stage before it, or
    after its dataset grew (``--n-images-128``), it would go on from weights grown on the old
    parent or the old data. Move such a run aside (nothing is deleted) so that the stage starts
    again from the parent's final weights on the current data.

    ``inputs.json`` in the stage folder records what the stage was started from: the parent
    checkpoint (its path and the SHA-256 of its weight files: a parent that was itself retrained
    keeps its step name) and the SHA-256 of the data's ``manifest.jsonl`` (every image and
    caption), and ``settings`` that change what the stage learns (its ``latent_scale``). A run from
    before ``inputs.json`` existed is judged by the parent's step name only."""
    inputs = {"settings": settings} if settings else {}
    if init_from is not None:
        inputs["init_from"] = str(init_from)
        inputs["init_from_sha256"] = weights_sha256(init_from)
    if data_manifest is not None:
        inputs["data_sha256"] = sha256_files([data_manifest])
    old = _recorded_inputs(stage_dir)
    old_parent = old.get("init_from")
    if old_parent is not None and init_from is not None and (
            # compare the parent's checkpoint name (step-NNNNNNN/ema), not the whole path: the same
            # --work may be given relative to another directory, or moved
            Path(old_parent).parts[-2:] != init_from.parts[-2:]
            or old.get("init_from_sha256", inputs["init_from_sha256"]) != inputs["init_from_sha256"]):
        _set_aside(stage_dir, f"{stage_dir.name}-from-{Path(old_parent).parent.name}",
                   f"was started from other weights ({old_parent}), not {init_from}", log)
    elif old.get("data_sha256", inputs.get("data_sha256")) != inputs.get("data_sha256"):
        _set_aside(stage_dir, f"{stage_dir.name}-data-{old['data_sha256'][:8]}",
                   f"was trained on other data ({data_manifest} changed)", log)
    elif old and {**SETTING_DEFAULTS, **old.get("settings", {})} != {**SETTING_DEFAULTS, **(settings or {})}:
        was = {**SETTING_DEFAULTS, **old.get("settings", {})}
        _set_aside(stage_dir, f"{stage_dir.name}-" + "-".join(f"{k}-{v:g}" for k, v in was.items()),
                   f"was trained with {was}, not {settings}", log)
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(stage_dir / "inputs.json", inputs, indent=1)


def continued_record(parent_weights: Path, record: dict) -> dict:
    """The training record of a run whose stage 3 started from ``parent_weights`` (``stage3_from``), with
    the parent's history folded in: a bundle made by continuing another still says how all of it was
    made. ``continued_from`` names the weights (path and SHA-256 of their files) and holds the parent
    pipeline's own record from its ``training.json`` (a bare transformer folder has none), less its
    ``seconds`` and ``loss_curves``: those come first in this record's, followed by this run's, whose
    names get `` (continued)`` where the parent used them (`` (continued 2)`` on a second continuation).
    ``seconds_this_run`` is this run's own wall time."""
    parent_weights = Path(parent_weights)
    found = parent_weights.parent / "training.json"
    is_pipeline = parent_weights.name == "transformer" and found.is_file()
    parent = read_json(found, BenchError, "training record") if is_pipeline else {}
    taken = set(parent.get("seconds", {})) | set(parent.get("loss_curves", {}))
    rename = {}
    for name in dict.fromkeys([*record.get("seconds", {}), *record.get("loss_curves", {})]):
        new, n = name, 1
        while new in taken:
            new = f"{name} (continued)" if n == 1 else f"{name} (continued {n})"
            n += 1
        rename[name] = new
    merged = dict(record)
    for key in ("seconds", "loss_curves"):
        merged[key] = {**parent.get(key, {}), **{rename[k]: v for k, v in record.get(key, {}).items()}}
    merged["seconds_this_run"] = sum(record.get("seconds", {}).values())
    merged["continued_from"] = {
        "weights": str(parent_weights), "weights_sha256": weights_sha256(parent_weights),
        "record": {k: v for k, v in parent.items() if k not in ("seconds", "loss_curves")}}
    return merged
