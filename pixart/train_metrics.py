"""The trainer's metrics: one record per optimiser step, in ``metrics.jsonl``, TensorBoard and the progress bar.

On a GPU every read of a value back to the host (``.item()``) waits for the queued kernels, so the
host could not run ahead and queue the next step. A step's losses and gradient norm therefore stay
on the device and are read back together (one sync) every ``log_every`` steps and before each
checkpoint; on a CPU the same, so the files do not depend on the device.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pixart.data import DataError
from pixart.errors import read_text


class MetricsLog:
    """Collects each step's metrics on the device and writes them every ``every`` steps (``flush``).

    ``history`` gets every record in every process; the main process also appends them to
    ``output_dir/metrics.jsonl`` (cut back to ``start`` first: a resumed run recomputes the steps
    after its checkpoint), writes TensorBoard scalars, and shows the step and loss in a progress bar."""

    def __init__(self, output_dir: Path, device, *, start: int, total: int, every: int, main: bool,
                 tensorboard: bool, progress: bool):
        self.path, self.device, self.every, self.main = output_dir / "metrics.jsonl", device, max(1, every), main
        if main:
            _truncate(self.path, start)
        self.writer = _tensorboard(output_dir / "tensorboard") if (tensorboard and main) else None
        self.bar = tqdm(total=total, initial=start, desc="train", disable=not (progress and main), unit="step")
        self.history: list[dict] = []
        self.pending: list[tuple[dict, torch.Tensor]] = []  # (host part of a record, its device values)
        self.keys: list[str] = []
        self.t_last = time.perf_counter()

    def add(self, step: int, keys, micro_losses: list[torch.Tensor], grad_norm, lr: float, now: float):
        """The optimiser step ``step``: ``micro_losses`` holds each micro-step's loss terms (named ``keys``)
        as a device tensor; ``grad_norm`` is the clipped norm (None where gradients were not synced)."""
        clipped = grad_norm is not None
        norm = torch.as_tensor(grad_norm, device=self.device) if clipped else torch.zeros((), device=self.device)
        values = torch.cat([torch.stack(micro_losses).mean(0), norm.detach().float().reshape(1)])
        self.keys = list(keys)
        self.pending.append(({"step": step, "lr": lr, "clipped": clipped, "sec_per_step": now - self.t_last}, values))
        self.t_last = now
        if self.main:
            self.bar.update(1)
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self):
        """Read the pending steps back (one transfer) and write their records."""
        if not self.pending:
            return
        values = torch.stack([v for _, v in self.pending]).cpu().tolist()
        for (host, _), row in zip(self.pending, values):
            record = {"step": host["step"], **dict(zip(self.keys, row)), "lr": host["lr"],
                      "grad_norm": row[-1] if host["clipped"] else None, "sec_per_step": host["sec_per_step"]}
            self.history.append(record)
            if self.main:
                with self.path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                if self.writer is not None:
                    for k in ("loss", "mse", "vb", "lr"):
                        if record.get(k) is not None:
                            self.writer.add_scalar(f"train/{k}", record[k], record["step"])
        if self.main:
            self.bar.set_postfix(loss=f"{self.history[-1]['loss']:.4f}", refresh=False)  # shown at tqdm's own pace
        self.pending.clear()

    def close(self):
        self.flush()
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def records_upto(path: Path, start: int) -> list[str]:
    """The lines of ``metrics.jsonl`` up to step ``start`` (a resume keeps them; ``train`` reads them
    before it writes anything). A last line cut off by a crash is dropped (its step came after the
    last checkpoint); any other line that is not a record is a DataError naming it."""
    if start == 0 or not path.exists():
        return []
    lines = read_text(path, DataError, "metrics file").splitlines()
    keep = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            if json.loads(line)["step"] <= start:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            if n == len(lines):
                break
            raise DataError(f"{path}:{n}: not a metrics record ({type(e).__name__}: {e}); fix or delete that line "
                            "and resume again") from None
    return keep


def _truncate(path: Path, start: int):
    """On resume, drop records of steps after the checkpoint (they will be recomputed)."""
    if path.is_file():
        path.write_text("".join(line + "\n" for line in records_upto(path, start)))


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))
