"""The resumable generation store: a list of images to make → files in a run folder + ``manifest.json``.

``fill_folder`` is the store. A run is a list of ``Job``s (file name, prompt, seed), a function that
makes images from prompts and seeds, and a *header*: what the images depend on (settings, model
hash, prompts, seeds). Each finished image is written atomically, then recorded, with its SHA-256,
in its process's progress record ``DIR/progress/rank-R-of-W.jsonl`` (a header line, then one line
per image); when the work is done the records are merged into ``DIR/manifest.json`` (the header,
package versions, one entry per image), written atomically, and the progress records go away.

- Resume: re-running the same run makes only what is missing. An image counts as finished when a
  record names it and the file's SHA-256 equals the recorded one; a finished image whose file is
  missing or differs from its record is made again (and said so). A run killed mid-way loses no
  finished image and makes none twice.
- Refusal: a folder whose records (manifest or progress) have another header, or that holds images
  of the run that no record explains, is refused with a ``PipelineError`` naming what differs,
  before anything is written.
- Shards: process ``rank`` of ``world`` makes the jobs at positions ``rank, rank + world, ...`` and
  writes only those files and its own progress record. With ``barrier`` (a process group, e.g.
  ``accelerate launch``) the main process merges once everyone is done; without one, every process
  merges what is finished when it ends (merges hold a lock on the folder), so shards run one after
  another leave a complete manifest after the last.

``run_sampling`` is ``pixart-bench sample``'s run on this store: ``DIR/00000.png, 00001.png ...``,
image k is prompt ``k // n`` (n images per prompt) with seed ``seed + k``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from pixart.errors import PipelineError, read_json, read_text
from pixart.files import atomic_write, package_versions, sha256_files, write_json_atomic
from pixart.pipeline import PixArtPipeline, SampleSettings, check_prompts

MANIFEST = "manifest.json"
PROGRESS = "progress"  # DIR/progress/rank-R-of-W.jsonl: what each process has finished, until the merge


@dataclass(frozen=True)
class Job:
    """One image of a run: its file (relative to the run folder, ``/``-separated), prompt and seed;
    ``record`` holds further fields of its manifest entry (e.g. the prompt's number)."""

    index: int
    file: str
    prompt: str
    seed: int | None
    record: dict = field(default_factory=dict)


def read_prompts(path: str | os.PathLike) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped: one prompt per line."""
    path = Path(path)
    prompts = [line.strip() for line in read_text(path, PipelineError, "prompt file").splitlines() if line.strip()]
    if not prompts:
        raise PipelineError(f"prompt file {path} has no prompts (one prompt per line)")
    check_prompts(prompts, f"prompt file {path}: line")
    return prompts


def check_run(out: str | os.PathLike, images_per_prompt: int, batch_size: int) -> None:
    """PipelineError for counts below 1 or an output folder that is a file."""
    for name, value in (("--images-per-prompt", images_per_prompt), ("--batch-size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise PipelineError(f"{name} must be a whole number ≥ 1, got {value!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise PipelineError(f"output folder {out} is a file")


def run_sampling(pipe: PixArtPipeline, prompts: list[str], out: str | os.PathLike, settings: SampleSettings,
                 *, seed: int = 0, images_per_prompt: int = 1, batch_size: int = 4, checkpoint: str = "",
                 progress: bool = True) -> dict:
    """Generate every missing image of the run in ``out``; returns the manifest. Everything is checked
    before the folder is touched: a run that is refused changes nothing there."""
    s = settings.resolved(pipe)
    pipe.generation_size(s.height, s.width, s.resolution_binning)  # sizes the model cannot make fail here
    check_prompts(prompts)
    check_run(out, images_per_prompt, batch_size)
    header = {"settings": dataclasses.asdict(s), "seed": seed, "images_per_prompt": images_per_prompt,
              "checkpoint": checkpoint, "checkpoint_sha256": pipe.checkpoint_hash(), "prompts": prompts}
    jobs = [Job(k, f"{k:05d}.png", prompts[k // images_per_prompt], seed + k)
            for k in range(len(prompts) * images_per_prompt)]
    return fill_folder(out, jobs, lambda texts, seeds: pipe(texts, seeds, s, batch_size=batch_size, progress=False),
                       header, unchecked=("checkpoint",), batch_size=batch_size, progress=progress)


def fill_folder(out: str | os.PathLike, jobs: list[Job], make_images: Callable[[list[str], list[int]], list],
                header: dict, *, unchecked: tuple[str, ...] = (), batch_size: int = 4, rank: int = 0,
                world: int = 1, barrier: Callable[[], object] | None = None, progress: bool = True,
                log: Callable[[str], object] | None = None) -> dict:
    """Make this process's missing images of ``jobs`` in ``out`` (``make_images(prompts, seeds)`` → PIL
    images, ``batch_size`` at a time) and return the merged manifest (complete once every share is
    done). ``header`` keys other than ``unchecked`` must equal those of any earlier records in ``out``."""
    out = Path(out)
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    header = json.loads(json.dumps(header))  # as it reads back from JSON, so that comparisons are exact
    _check_plan(out, jobs, batch_size, rank, world)
    present = [j.file for j in jobs if (out / j.file).is_file()]  # before the records: see _read_records
    records, known = _read_records(out, header, unchecked)
    if not known and present:
        raise PipelineError(f"{out} holds images this run would write ({', '.join(present[:3])}"
                            f"{', ...' if len(present) > 3 else ''}) and no {MANIFEST} says how they were made; "
                            "use another --out folder (or move them away)")
    share = jobs[rank::world]
    hashes, todo, redo = {}, [], []
    for job in share:
        entry, digest, why = _verified(out, job, records.get(job.file, []))
        if entry is None:
            todo.append(job)
            if why:
                redo.append(f"{job.file} ({why})")
        else:
            hashes[job.file] = digest
    if redo:
        log(f"making again {len(redo)} finished image(s) whose file no longer matches the record: "
            f"{', '.join(redo[:5])}{', ...' if len(redo) > 5 else ''}")
    for parent in sorted({out / PROGRESS} | {(out / j.file).parent for j in share}):
        parent.mkdir(parents=True, exist_ok=True)
    journal = out / PROGRESS / f"rank-{rank}-of-{world}.jsonl"
    if not journal.is_file():
        atomic_write(journal, lambda tmp: tmp.write_text(json.dumps({"header": header}) + "\n", encoding="utf-8"))
    who = f"rank {rank} of {world}: " if world > 1 else ""
    bar = tqdm(total=len(share), initial=len(share) - len(todo), desc=f"{who}images", unit="img",
               disable=not progress or rank != 0)
    with journal.open("rb") as f:  # the records are ASCII (json.dumps escapes the rest)
        f.seek(-1, os.SEEK_END)
        cut_short = f.read(1) != b"\n"
    with journal.open("a", encoding="utf-8") as record:
        if cut_short:  # a line cut short by a kill stays a line of its own, and is skipped on reading
            record.write("\n")
        for i in range(0, len(todo), batch_size):
            batch = todo[i : i + batch_size]
            images = make_images([j.prompt for j in batch], [j.seed for j in batch])
            if len(images) != len(batch):
                raise ValueError(f"the model made {len(images)} images for {len(batch)} prompts")
            for job, image in zip(batch, images):
                hashes[job.file] = _save(out / job.file, image)
                entry = {"file": job.file, "index": job.index, "prompt": job.prompt, "seed": job.seed,
                         **job.record, "width": image.width, "height": image.height, "sha256": hashes[job.file]}
                record.write(json.dumps(entry) + "\n")
                record.flush()  # recorded once the image is on disk: a kill after this loses nothing
            bar.update(len(batch))
    bar.close()
    if world > 1:
        log(f"{who}made {len(todo)} image(s); {len(share) - len(todo)} were already there")
    if barrier is None:
        return merge_records(out, jobs, header, unchecked, hashes)
    barrier()
    if rank == 0:
        merge_records(out, jobs, header, unchecked, hashes)
    barrier()
    return read_json(out / MANIFEST, PipelineError, "run manifest")


def merge_records(out: Path, jobs: list[Job], header: dict, unchecked: tuple[str, ...] = (),
                  hashes: dict | None = None) -> dict:
    """Write ``out/manifest.json`` from the records of every process: one entry per job whose file
    matches a record (``hashes``: file → SHA-256 already known). When every job has one, the
    progress records are removed. Returns the manifest."""
    with _locked(out):
        records, _ = _read_records(out, header, unchecked)
        entries = []
        for job in jobs:
            entry, _, _ = _verified(out, job, records.get(job.file, []), (hashes or {}).get(job.file))
            if entry is not None:
                entries.append(entry)
        manifest = {**header, "versions": package_versions(), "images": entries}
        write_json_atomic(out / MANIFEST, manifest)
        if len(entries) == len(jobs) and (out / PROGRESS).is_dir():
            for journal in (out / PROGRESS).glob("rank-*.jsonl"):
                journal.unlink()
            if not any((out / PROGRESS).iterdir()):
                (out / PROGRESS).rmdir()
    return manifest


def check_records(out: str | os.PathLike, header: dict, unchecked: tuple[str, ...] = ()) -> bool:
    """PipelineError when ``out`` holds records (manifest or progress) of a run with another header,
    or damaged ones; whether it holds any. Changes nothing: a caller checks before other work."""
    return _read_records(Path(out), json.loads(json.dumps(header)), unchecked)[1]


def _check_plan(out: Path, jobs: list[Job], batch_size: int, rank: int, world: int) -> None:
    """PipelineError for a run that cannot be written: bad counts or shard, a file named twice, or a
    path where a folder (or an image) must go that is already something else."""
    check_run(out, 1, batch_size)
    if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
        raise PipelineError(f"process rank {rank!r} of {world!r}: the rank must be from 0 to world - 1")
    if not jobs:
        raise PipelineError("the run has no images to make")
    files = [j.file for j in jobs]
    if len(set(files)) != len(files):
        twice = next(f for f in files if files.count(f) > 1)
        raise PipelineError(f"two images of the run would be written to {twice}")
    for path in sorted({(out / f).parent for f in files} | {out / PROGRESS}):
        for p in (path, *path.parents):
            if p.exists() and not p.is_dir():
                raise PipelineError(f"{p} is a file, so the run cannot write {path}; use another --out folder")
    for f in files:
        if (out / f).is_dir():
            raise PipelineError(f"{out / f} is a folder, where the run writes an image; use another --out folder")


def _read_records(out: Path, header: dict, unchecked: tuple[str, ...]) -> tuple[dict[str, list[dict]], bool]:
    """Every recorded entry in ``out`` (the manifest's, then each progress record's), by file, and
    whether any record exists. PipelineError when a record is damaged or was made with another header.
    The progress records are listed after the images were: a process writes its record's header
    before its first image, so an image seen earlier always has its record seen now."""
    candidates: dict[str, list[dict]] = {}
    found = False
    manifest = out / MANIFEST
    if manifest.is_file():
        old = read_json(manifest, PipelineError, "run manifest")
        if not isinstance(old.get("images"), list) or not all(isinstance(e, dict) and "file" in e
                                                               for e in old["images"]):
            raise PipelineError(f"{manifest} is not a run manifest (it has no list of images); "
                                "use another --out folder")
        _same_run(out, manifest, old, header, unchecked)
        for entry in old["images"]:
            candidates.setdefault(entry["file"], []).append(entry)
        found = True
    for journal in sorted((out / PROGRESS).glob("rank-*.jsonl")) if (out / PROGRESS).is_dir() else ():
        lines = read_text(journal, PipelineError, "run progress record").splitlines()
        first = _json_line(lines[0]) if lines else None
        if not isinstance(first, dict) or not isinstance(first.get("header"), dict):
            raise PipelineError(f"{journal} is not a run progress record (its first line is not the run's header); "
                                "delete it to make its images again")
        _same_run(out, journal, first["header"], header, unchecked)
        for line in lines[1:]:
            entry = _json_line(line)  # a line cut short by a kill is skipped: its image is made again
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                candidates.setdefault(entry["file"], []).append(entry)
        found = True
    return candidates, found


def _same_run(out: Path, where: Path, old: dict, header: dict, unchecked: tuple[str, ...]) -> None:
    changed = [k for k in header if k not in unchecked and old.get(k) != header[k]]
    if changed:
        details = "; ".join(_difference(k, old.get(k), header[k]) for k in changed)
        raise PipelineError(f"{out} holds a run with different {', '.join(changed)}; use another --out folder "
                            f"({details}; recorded in {where.name})")


def _difference(key: str, old, new) -> str:
    """What differs in ``key``, short: values as they are (cut at 60 characters), dicts by the first
    three sub-keys that differ, lists by their lengths and the first item that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
        return ", ".join(f"{key}.{k}: {_short(old.get(k))} there, {_short(new.get(k))} now" for k in keys[:3]) + (
            f" (and {len(keys) - 3} more)" if len(keys) > 3 else "")
    if isinstance(old, list) and isinstance(new, list):
        first = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
        return f"{key}: {len(old)} there, {len(new)} now, first different at {first + 1}"
    return f"{key}: {_short(old)} there, {_short(new)} now"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_line(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _verified(out: Path, job: Job, candidates: list[dict], digest: str | None = None):
    """(entry, sha256, why not): the record of ``job`` that its file matches, else None and the reason
    (empty when it was never recorded). Entries written before hashes were recorded match any file."""
    path = out / job.file
    if not candidates:
        return None, None, ""
    if not path.is_file():
        return None, None, "file missing"
    digest = digest or sha256_files([path])
    for entry in reversed(candidates):  # the latest record first
        if entry.get("sha256", digest) == digest:
            return {**entry, "sha256": digest}, digest, ""
    return None, None, "SHA-256 differs from the record"


def _save(path: Path, image) -> str:
    """Write ``image`` as PNG atomically; returns the file's SHA-256."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _locked(folder: Path):
    """An exclusive lock on ``folder`` (POSIX ``flock``) while merging records; a no-op elsewhere."""
    try:
        import fcntl
    except ImportError:  # Windows: processes there run one after another
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
