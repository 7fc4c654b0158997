"""Bad input to a benchmark, and the checks that find it up front.

``BenchError`` is the benchmark side's ``pixart.errors.InputError``: an image folder that is missing,
empty, mixed or damaged, a prompt suite or spec that cannot be read, a benchmark option out of range
(the shapes world's datasets, suites, demo, world-FID and reference model). The command line prints
it as one ``error: ...`` line and exits with status 2. The helpers below raise it naming the option
or path, before any work is done.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from pixart.errors import InputError


class BenchError(InputError, ValueError):
    """Bad input to a benchmark (image folders, suites, specs, benchmark options); the message says
    what is wrong, where (the file, folder or option) and what to do."""


def check_range(option: str, value, low: float | None = None, high: float | None = None, *,
                whole: bool = False, above: bool = False, why: str = "") -> None:
    """BenchError naming ``option`` unless ``low <= value <= high`` (``above``: ``low < value``; NaN never
    is), and a whole number when ``whole``. ``why`` says what the bounds come from."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    ok = ok and (not whole or float(value).is_integer())
    ok = ok and (low is None or value > low or (value == low and not above)) and (high is None or value <= high)
    if not ok:
        kind = "a whole number" if whole else "a number"
        lo, hi = (f"{int(x):,}" if whole and x is not None else f"{x:g}" if x is not None else "" for x in (low, high))
        if low is None:
            bounds = f"at most {hi}"
        elif high is None:
            bounds = f"above {lo}" if above else f"at least {lo}"
        else:
            bounds = f"above {lo} and at most {hi}" if above else f"from {lo} to {hi}"
        raise BenchError(f"{option} must be {kind} {bounds}{f' ({why})' if why else ''}, got {value!r}")


def _file_at_or_above(path: Path) -> Path | None:
    """The first existing path at or above ``path`` when it is not a folder (None when it is one)."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def check_out_folder(path: str | os.PathLike, option: str) -> Path:
    """An output folder to create or resume: BenchError when it, or a folder above it, is a file."""
    path = Path(path)
    blocker = _file_at_or_above(path)
    if blocker == path:
        raise BenchError(f"{option} {path} is a file, not a folder; give a folder path")
    if blocker is not None:
        raise BenchError(f"{option} {path}: {blocker} is a file, so no folder can be made there")
    return path


def check_out_file(path: str | os.PathLike, option: str, suffix: str | None = None) -> Path:
    """An output file to write: BenchError when it is a folder, a folder above it is a file, or its
    name does not end in ``suffix``."""
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        raise BenchError(f"{option} {path}: the file name must end in {suffix} (e.g. {path.with_suffix(suffix).name})")
    if path.is_dir():
        raise BenchError(f"{option} {path} is a folder; give a file path (e.g. {path / ('out' + (suffix or ''))})")
    blocker = _file_at_or_above(path.parent)
    if blocker is not None:
        raise BenchError(f"{option} {path}: {blocker} is a file, so no folder can be made there")
    return path


def check_in_folder(path: str | os.PathLike, what: str) -> Path:
    """A folder to read: BenchError when it is missing or a file."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"{what} not found: {path}")
    if not path.is_dir():
        raise BenchError(f"{what} {path} is a file, not a folder")
    return path


def check_room(n_bytes: float, what: str, option: str, *, disk: Path | None = None) -> None:
    """BenchError when ``n_bytes`` (a lower bound of what ``option`` asks for) exceeds the free disk
    space at ``disk``, or else this computer's memory (when the system reports it)."""
    if disk is not None:
        for p in (disk, *disk.parents):
            if p.exists():
                room, where = shutil.disk_usage(p).free, f"free on the disk of {p}"
                break
    else:
        try:
            room, where = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "of memory in this computer"
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows): nothing to compare with
            return
    if n_bytes > room:
        raise BenchError(f"{option}: {what} take at least {n_bytes / 1e9:,.1f} GB, and there are "
                         f"{room / 1e9:,.1f} GB {where}; ask for fewer")


def check_device(device: str, option: str = "--device"):
    """``device`` as a ``torch.device``; BenchError naming ``option`` for a name torch does not know, or
    CUDA where there is none."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise BenchError(f"{option} {device!r} is not a device name (cpu, cuda, cuda:1, mps)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"{option} {device}: no CUDA device is available (torch {torch.__version__}); use cpu")
    return parsed
