"""A resumable sampling run: prompts → ``DIR/00000.png ...`` + ``DIR/manifest.json``.

Image k is prompt ``k // n`` (n images per prompt) with seed ``seed + k``. The manifest records
the settings, the checkpoint hash and package versions, and one entry per finished image; it is
rewritten atomically after every batch. Re-running the same command resumes: finished images
are skipped; a different setting in the same folder is refused instead of mixing runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from tqdm.auto import tqdm

from pixart.files import atomic_write, package_versions, write_json_atomic
from pixart.pipeline import PipelineError, PixArtPipeline, SampleSettings

MANIFEST = "manifest.json"


def read_prompts(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"prompt file not found: {path}")
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise PipelineError(f"prompt file {path} has no prompts (one prompt per line)")
    return prompts


def run_sampling(pipe: PixArtPipeline, prompts: list[str], out: str | os.PathLike, settings: SampleSettings,
                 *, seed: int = 0, images_per_prompt: int = 1, batch_size: int = 4, checkpoint: str = "") -> dict:
    """Generate every missing image of the run in ``out``; returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = settings.resolved(pipe)
    header = {"settings": dataclasses.asdict(s), "seed": seed, "images_per_prompt": images_per_prompt,
              "checkpoint": checkpoint, "checkpoint_sha256": pipe.checkpoint_hash(), "prompts": prompts}
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        changed = [k for k in header if k != "checkpoint" and old.get(k) != header[k]]
        if changed:
            raise PipelineError(f"{out} holds a run with different {', '.join(changed)}; use another --out folder")
        images = {e["file"]: e for e in old["images"] if (out / e["file"]).is_file()}
    else:
        images = {}
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
