"""Bad input to a benchmark, and the checks that find it up front.

``BenchError`` is the benchmark side's ``pixart.errors.InputError``: an image folder that is missing,
empty, mixed or damaged, a prompt suite or spec that cannot be read, a benchmark option out of range
(the shapes world's datasets, suites, demo, world-FID and reference model). The command line prints
it as one ``error: ...`` line and exits with status 2. The helpers below raise it naming the option
or path, before any work is done.

``check_out`` is the one ``--out`` rule of every command that writes a folder (``check_new_file`` of one
that writes a file): a new or empty folder is used, the same command's run of the same inputs is
resumed, anything else is refused naming what is there, and ``--overwrite`` lets a command replace only
its own files (docs/errors.md, "Output folders").
"""

from __future__ import annotations

import fnmatch
import json
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


# The one --out rule (``check_out``). What each command that writes a folder may leave at the top level of its
# --out (shell patterns); anything else there is not its own. Deeper down, a run's files are its own business.
WRITES = {
    "generate": ("manifest.json", "samples", "progress", "compbench_scores.json", "annotation_*"),
    "sample": ("manifest.json", "[0-9]*.png", "progress"),
    "train": ("train_config.yaml", "checkpoints", "metrics.jsonl", "samples", "shards", "tensorboard",
              "process_checksums.json"),
    "extract-features": ("features.json", "shard-*.safetensors"),
    "convert": ("config.json", "model.safetensors", "diffusion_pytorch_model.safetensors",
                "pixart_buffers.safetensors"),
    "export-diffusers": ("model_index.json", "transformer", "text_encoder", "tokenizer", "vae", "scheduler",
                         "pixart_pipeline.json"),
    "compbench": ("results.json", "per_image.csv", "audit", "color", "shape", "texture", "spatial", "non_spatial",
                  "complex", "3d_spatial", "numeracy", "world-*"),
    "compbench audit": ("audit.json",),
    "fid folder": ("fid.json",),
    "fid coco": ("captions.jsonl", "fid.json", "manifest.json", "samples", "progress"),
    "fid world": ("fid.json", "manifest.json", "samples", "progress", "reference"),
    "ablate cost": ("cost.json", "cost.csv"),
    "ablate fid": ("ablate_fid.json", "ablate_fid.csv"),  # and a folder per model
    "ablate train": ("settings.json", "ablate_train.json", "ablate_train.csv", "plots", "runs", "data*", "cache*",
                     "components", "*.json", "*.csv"),
    "study create": ("study.json", "images", "study.db", "study.db-*"),
    "study results": ("results.json", "*.csv", "user_study.png", "user_study.svg"),
    "study demo": ("study", "images", "results"),
    "demo": ("results.json", "report.md", "report.html", "report.json", "grid.png", "loss_curves.svg", "images",
             "tables", "world-fid"),
    "world make-dataset": ("manifest.jsonl", "*.png", "*.txt"),
    "world make-suites": ("*_val.txt", "*_val.json"),
    "world train-reference": ("training.json", "model_index.json", "transformer", "text_encoder", "tokenizer", "vae",
                              "scheduler"),
    "report": ("report.json", "report.md", "report.html", "tables", "user_study.png", "user_study.svg", "study_*"),
}

# how a folder made by a command is recognised, to name it in a refusal: (file, the command or commands that
# make it, what it is, test of its JSON or None), most specific first
RUNS = (
    ("results.json", "compbench", "a compbench run", lambda d: d.get("format") == "pixart-bench compbench"),
    ("results.json", "compbench", "a compbench --suite world run",
     lambda d: d.get("format") == "pixart-bench compbench (shapes world)"),
    ("results.json", "study results", "a study results run", lambda d: {"models", "criteria"} <= d.keys()),
    ("results.json", "demo", "a demo run", lambda d: {"scores", "world_fid"} <= d.keys()),
    ("audit.json", "compbench audit", "a compbench audit", None),
    ("captions.jsonl", "fid coco", "a fid coco run", None),
    ("fid.json", "fid world", "a fid world run", lambda d: d.get("protocol", {}).get("name") == "world"),
    ("fid.json", "fid folder", "a fid folder run", lambda d: d.get("protocol", {}).get("name") == "folder"),
    ("fid.json", "fid coco", "a fid coco run", lambda d: str(d.get("protocol", {}).get("name")).startswith("coco")),
    ("fid.json", "ablate fid", "an ablate fid model's FID", lambda d: d.get("protocol", {}).get("name") == "ablate"),
    ("fid.json", "fid", "an FID result", None),
    ("cost.json", "ablate cost", "an ablate cost run", None),
    ("ablate_fid.json", "ablate fid", "an ablate fid run", None),
    ("ablate_train.json", "ablate train", "an ablate train run", None),
    ("settings.json", "ablate train", "an ablate train run", lambda d: {"budget", "components"} <= d.keys()),
    ("study.json", "study create", "a study", None),
    ("study/study.json", "study demo", "a study demo", None),
    ("report.json", "report", "a report", None),
    ("manifest.json", ("generate", "fid coco", "fid world"), "a generation run",  # the store the three share
     lambda d: d.get("format") == "pixart-bench generation"),
    ("manifest.json", "sample", "a sample run", lambda d: "checkpoint_sha256" in d),
    ("manifest.jsonl", "world make-dataset", "a world dataset", None),
    ("single_val.json", "world make-suites", "world prompt suites", None),
    ("features.json", "extract-features", "a feature cache", None),
    ("train_config.yaml", "train", "a training run", None),
    ("checkpoints", "train", "a training run", None),
    ("training.json", "world train-reference", "a world train-reference model", None),
    ("model_index.json", "export-diffusers", "a pipeline folder", None),
    ("pixart_pipeline.json", "export-diffusers", "a pipeline folder", None),
    ("config.json", "convert", "a model folder", None),
)

OVERWRITE_HELP = "Write into an --out that holds something else; only this command's own files there are replaced."


def identify(folder: Path) -> tuple[tuple[str, ...], str, str] | None:
    """(the commands that make it, what it is, the file that says so) of the run ``folder`` holds, from
    ``RUNS``; None when it holds none of them."""
    for name, command, what, test in RUNS:
        path = folder / name
        if not path.exists():
            continue
        if test is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not (isinstance(data, dict) and test(data)):
                    continue
            except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not the expected shape
                continue
        return (command,) if isinstance(command, str) else command, what, name
    return None


def _listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")


def check_out(path: str | os.PathLike, command: str, *, same=None, overwrite: bool = False, also: tuple = (),
              replace: bool = True, option: str = "--out") -> Path:
    """The one ``--out`` rule of every command that writes a folder (``command``: a key of ``WRITES``).

    A new or empty folder is used. A folder holding ``command``'s own run is resumed when ``same`` is None
    (the command's own resume checks it) or ``same(path)`` is true; with other inputs (``same`` false, or
    ``same=False``: a run whose inputs cannot be compared) it is refused unless ``overwrite``. A folder
    holding anything else (another command's run, files ``command`` does not write: ``WRITES`` and
    ``also``) is refused unless ``overwrite``, naming what is there. ``overwrite`` lets the command replace
    its own files; it deletes nothing else. ``replace=False``: a run of ``command`` is never replaced (a
    study with its answers). Returns the folder (created later, by the command)."""
    path = check_out_folder(path, option)
    entries = sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) if path.is_dir() else []
    if not entries:
        return path
    found = identify(path)
    own = (*WRITES[command], *also)
    foreign = [n for n in entries if not any(fnmatch.fnmatchcase(n, pattern) for pattern in own)]
    how = "choose another folder or pass --overwrite"
    if found is not None and command not in found[0] and not overwrite:
        raise BenchError(f"{option} {path} holds {found[1]} ({found[2]}); {how}")
    if foreign and not overwrite:
        raise BenchError(f"{option} {path} holds files that {command} does not write ({_listing(foreign)}); {how}")
    if found is None or command not in found[0] or same is None or (overwrite and replace):
        return path
    if same is False:  # inputs that cannot be compared: never taken for the same run
        raise BenchError(f"{option} {path} holds {found[1]} ({found[2]}); {how}")
    if not same(path):
        raise BenchError(f"{option} {path} holds {found[1]} ({found[2]}) made from other inputs; "
                         f"{how if replace else 'choose another folder'}")
    return path


def check_new_file(path: str | os.PathLike, option: str = "--out", *, same=None, overwrite: bool = False,
                   also: tuple = ()) -> Path:
    """The ``--out`` rule for a command that writes a file (and the files ``also`` beside it): a new one is
    written; an existing one only when ``same(path)`` says it was made from the same inputs, or with
    ``overwrite``; otherwise a BenchError naming it."""
    path = Path(path)
    there = [p for p in (path, *map(Path, also)) if p.is_file()]
    if there and not overwrite and not (same is not None and same(path)):
        other = " (made from other inputs)" if same is not None and path.is_file() else ""
        raise BenchError(f"{option} {there[0]} already exists{other}; choose another file name or pass --overwrite")
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
