"""The generation store for any model: prompts → images in T2I-CompBench's layout, with a manifest that
says how each image was made, so that every benchmark scores the same files and an interrupted run
resumes.

    source = load_source("PixArt-alpha/PixArt-XL-2-512x512", steps=20, device="cuda", dtype="fp16")
    manifest = generate(source, load_prompts("color"), "out/color")   # 3,000 images, seeds 42…51

``generate`` fills ``OUT/samples/<prompt>_<NNNNNN>.png`` (image k of prompt i is number n·i + k and
uses seed ``seed + k``: the official protocol by default, 10 images per prompt, seeds 42…51) through
``pixart.sample_run.fill_folder``: resumable (finished images are checked by SHA-256), refused
when ``OUT`` holds a run of another model, prompts, seeds or settings, and shared between the
processes of ``accelerate launch`` (each makes a disjoint share; the main process merges the
records into ``OUT/manifest.json``). The manifest records the model (kind, class, weights SHA-256),
the settings, the seeds, the prompts and their SHA-256, where the prompts and model came from,
package versions and each image's file, number, prompt, seed, size and SHA-256.

``generate(..., layout="indexed")`` writes ``OUT/samples/<NNNNNN>.png`` instead: image i is prompt i,
made with seed ``seed + i``, one image per prompt, for prompts that file names cannot hold (COCO
captions); everything else (checks, resume, shards, manifest) is the same.

Sources (``bench.generate.sources``, ``bench.generate.folder``): our PixArt pipelines and
checkpoints, any diffusers text-to-image pipeline, and a folder of images made elsewhere, which is
checked against the prompts and recorded where it is.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError, check_out_folder
from bench.generate.folder import FolderSource
from bench.generate.plan import (
    INDEXED_LAYOUT,
    LAYOUT,
    LAYOUTS,
    OFFICIAL_SEED,
    check_counts,
    check_indexed_prompts,
    check_prompts,
    check_samples_folder,
    indexed_jobs,
    official_jobs,
    parse_seed,
    process_share,
    prompts_sha256,
    resolve_prompts,
)
from bench.generate.sources import DiffusersSource, PixArtSource, load_source
from pixart.sample_run import check_records, fill_folder

__all__ = ["OFFICIAL_SEED", "DiffusersSource", "FolderSource", "PixArtSource", "generate", "load_source",
           "parse_seed", "resolve_prompts"]

# manifest keys a resumed run may change (paths, device, batch size) or that follow from others
RECORDED_ONLY = ("where", "prompt_source", "prompts_sha256")


def generate(source, prompts: list[str], out: str | Path, *, images_per_prompt: int | None = None,
             seed: int = OFFICIAL_SEED, batch_size: int = 4, rank: int | None = None, world: int | None = None,
             progress: bool = True, prompt_source: dict | None = None, log=None, layout: str = "official") -> dict:
    """Make (or, for a ``FolderSource``, check and record) the images of ``prompts`` in ``out``; returns
    the manifest. ``rank`` / ``world`` given: this process makes its share only (shares run one after
    another merge into a complete manifest after the last); not given: the processes of a launch
    share the work, or one process makes everything. ``layout``: "official" (T2I-CompBench's file
    names; ``images_per_prompt`` default 10) or "indexed" (``samples/<NNNNNN>.png``, one image per
    prompt; not for a ``FolderSource``).
    Bad input is a BenchError (or PipelineError) before anything is written."""
    if layout not in LAYOUTS:
        raise BenchError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "indexed":
        images_per_prompt = 1 if images_per_prompt is None else images_per_prompt
        if images_per_prompt != 1 or isinstance(source, FolderSource):
            raise BenchError("the indexed layout makes one image per prompt, with a model (a folder of images made "
                             "elsewhere is scored as it is: `pixart-bench fid folder`)")
        check_counts(1, 0, batch_size)
        prompts = check_indexed_prompts(prompts, seed)
    else:
        images_per_prompt = 10 if images_per_prompt is None else images_per_prompt
        check_counts(images_per_prompt, seed, batch_size)
        prompts = check_prompts(prompts)
    out = check_out_folder(out, "--out")
    if isinstance(source, FolderSource):
        rank, _, barrier = process_share(rank, world)
        manifest = source.record(prompts, images_per_prompt, out, prompt_source, write=rank == 0)
        if barrier is not None:
            barrier()
        return manifest
    if layout == "indexed":
        jobs, rule, text = indexed_jobs(prompts, seed), "image i (prompt i) uses seed base + i", INDEXED_LAYOUT
    else:
        jobs, text = official_jobs(prompts, images_per_prompt, seed), LAYOUT
        rule = "image k of every prompt uses seed base + k"
    rank, world, barrier = process_share(rank, world)
    described = source.describe()
    header = {"format": "pixart-bench generation", "layout": text,
              "model": {k: v for k, v in described.items() if k not in ("settings", "path", "device")},
              "settings": described.get("settings"),
              "seeds": {"rule": rule, "base": seed},
              "images_per_prompt": images_per_prompt, "prompts_sha256": prompts_sha256(prompts),
              "prompts": prompts, "where": {"path": described.get("path"), "device": described.get("device"),
                                            "batch_size": batch_size},
              "prompt_source": prompt_source}
    check_records(out, header, RECORDED_ONLY)  # another run's folder is named as such, before the next check
    check_samples_folder(out, jobs)
    return fill_folder(out, jobs, source, header, unchecked=RECORDED_ONLY, batch_size=batch_size, rank=rank,
                       world=world, barrier=barrier, progress=progress, log=log)
