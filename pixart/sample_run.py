"""A resumable sampling run: prompts → ``DIR/00000.png ...`` + ``DIR/manifest.json``.

Image k is prompt ``k // n`` (n images per prompt) with seed ``seed + k``. The manifest records
the settings, the checkpoint hash and package versions, and one entry per finished image; it is
rewritten atomically after every batch. Re-running the same command resumes: finished images
are skipped; a different setting in the same folder is refused instead of mixing runs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tqdm.auto import tqdm

from pixart.files import atomic_write, package_versions, write_json_atomic
from pixart.errors import PipelineError, read_json, read_text
from pixart.pipeline import PixArtPipeline, SampleSettings, check_prompts

MANIFEST = "manifest.json"


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
                 *, seed: int = 0, images_per_prompt: int = 1, batch_size: int = 4, checkpoint: str = "") -> dict:
    """Generate every missing image of the run in ``out``; returns the manifest. Everything is checked
    before the folder is touched: a run that is refused changes nothing there."""
    out = Path(out)
    s = settings.resolved(pipe)
    pipe.generation_size(s.height, s.width, s.resolution_binning)  # sizes the model cannot make fail here
    check_prompts(prompts)
    check_run(out, images_per_prompt, batch_size)
    header = {"settings": dataclasses.asdict(s), "seed": seed, "images_per_prompt": images_per_prompt,
              "checkpoint": checkpoint, "checkpoint_sha256": pipe.checkpoint_hash(), "prompts": prompts}
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        old = read_json(manifest_path, PipelineError, "run manifest")
        if not isinstance(old.get("images"), list):
            raise PipelineError(f"{manifest_path} is not a run manifest (it has no list of images); "
                                "use another --out folder")
        changed = [k for k in header if k != "checkpoint" and old.get(k) != header[k]]
        if changed:
            raise PipelineError(f"{out} holds a run with different {', '.join(changed)}; use another --out folder")
        images = {e["file"]: e for e in old["images"] if (out / e["file"]).is_file()}
    else:
        images = {}
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(k, prompts[k // images_per_prompt], seed + k) for k in range(len(prompts) * images_per_prompt)]
    todo = [j for j in jobs if f"{j[0]:05d}.png" not in images]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="images", unit="img")
    for i in range(0, len(todo), batch_size):
        batch = todo[i : i + batch_size]
        pil = pipe([p for _, p, _ in batch], [sd for _, _, sd in batch], s, batch_size=batch_size, progress=False)
        for (k, prompt, sd), im in zip(batch, pil):
            name = f"{k:05d}.png"
            atomic_write(out / name, lambda tmp, im=im: im.save(tmp, format="PNG"))
            images[name] = {"file": name, "index": k, "prompt": prompt, "seed": sd,
                            "width": im.width, "height": im.height}
        _write_manifest(manifest_path, header, images)
        bar.update(len(batch))
    bar.close()
    return _write_manifest(manifest_path, header, images)


def _write_manifest(path: Path, header: dict, images: dict) -> dict:
    manifest = {**header, "versions": package_versions(),
                "images": sorted(images.values(), key=lambda e: e["index"])}
    write_json_atomic(path, manifest)
    return manifest
