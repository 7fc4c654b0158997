"""A folder of images made elsewhere, in the official layout: checked against the prompts and recorded.

Nothing is generated. The folder must hold exactly n images per prompt in ``samples/``, named
``<prompt>_<NNNNNN>.png``, whose order by number is the prompt list's, n at a time (the official
scorers read them so, whatever the numbers are). Each image must open; its SHA-256 and size go into
``manifest.json``, written in the folder itself (seeds and settings are unknown: null). A folder
that already has a manifest describing these images is returned as it is; one with a manifest
that does not is refused, unchanged.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.compbench.samples import SAMPLES, list_samples
from bench.errors import BenchError, check_in_folder
from bench.generate.plan import LAYOUT, prompts_sha256
from pixart.errors import read_json
from pixart.files import package_versions, sha256_files, write_json_atomic
from pixart.sample_run import MANIFEST


class FolderSource:
    """Images made elsewhere, in ``folder/samples/``."""

    kind = "folder"

    def __init__(self, folder: str | Path):
        self.folder = check_in_folder(folder, "image folder")
        if not (self.folder / SAMPLES).is_dir():
            raise BenchError(f"{self.folder} has no {SAMPLES}/ folder: images made elsewhere must be in the official "
                             f"layout, {self.folder}/{SAMPLES}/<prompt>_<NNNNNN>.png")

    def __call__(self, prompts, seeds):
        raise BenchError(f"{self.folder} is a folder of images: it makes no new ones")

    def describe(self) -> dict:
        return {"kind": "folder", "path": str(self.folder)}

    def record(self, prompts: list[str], images_per_prompt: int, out: str | Path | None = None,
               prompt_source: dict | None = None, write: bool = True) -> dict:
        """Check that the folder holds ``images_per_prompt`` images of each prompt in order, and record
        them in ``folder/manifest.json`` (``write``: False checks only); returns the manifest."""
        if out is not None and Path(out).resolve() != self.folder.resolve():
            raise BenchError(f"--out {out}: a folder of images is recorded where it is ({self.folder}); give that "
                             "folder as --out (nothing is copied)")
        images = list_samples(self.folder)
        check_coverage(self.folder, images, prompts, images_per_prompt)
        entries = [_entry(im, p // images_per_prompt, p % images_per_prompt) for p, im in enumerate(images)]
        header = {"format": "pixart-bench generation", "layout": LAYOUT,
                  "model": {"kind": "folder", "images_sha256": sha256_files([im.path for im in images],
                                                                            with_names=True)},
                  "settings": None, "seeds": None, "images_per_prompt": images_per_prompt,
                  "prompts_sha256": prompts_sha256(prompts), "prompts": list(prompts),
                  "where": {"path": str(self.folder)}, "prompt_source": prompt_source}
        existing = self.folder / MANIFEST
        if existing.exists():
            return _recorded(existing, header, entries)
        manifest = {**header, "versions": package_versions(), "images": entries}
        if write:
            write_json_atomic(existing, manifest)
        return manifest


def check_coverage(folder: Path, images, prompts: list[str], n: int) -> None:
    """BenchError naming the prompts with missing or extra images, or the first image out of order."""
    want = Counter(p for p in prompts for _ in range(n))
    have = Counter(im.prompt for im in images)
    short = [f"{p!r} has {have[p]} of {want[p]}" for p in want if have[p] < want[p]]
    extra = [f"{p!r} has {have[p]}, not {want[p]}" for p in have if have[p] > want[p]]
    samples = folder / SAMPLES
    if short or extra:
        raise BenchError(f"{samples} holds {len(images):,} images, and {len(prompts):,} prompts × {n} need "
                         f"{len(prompts) * n:,}: " + "; ".join(
                             ([f"missing images: {', '.join(short[:3])}{', ...' if len(short) > 3 else ''}"]
                              if short else []) +
                             ([f"images of no such prompt or too many: {', '.join(extra[:3])}"
                               f"{', ...' if len(extra) > 3 else ''}"] if extra else [])))
    for position, im in enumerate(images):
        expected = prompts[position // n]
        if im.prompt != expected:
            raise BenchError(f"{samples}: {im.file} is image {position + 1} in number order, where the scorers "
                             f"expect an image of prompt {position // n + 1} ({expected!r}); number the images "
                             f"in prompt-list order, {n} per prompt")


def _entry(image, prompt_index: int, k: int) -> dict:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image.path) as im:
            size = im.size
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:  # PIL reports damaged PNG chunks as SyntaxError
        raise BenchError(f"cannot read image {image.path}: {e}") from None
    return {"file": f"{SAMPLES}/{image.file}", "index": image.index, "prompt": image.prompt, "seed": None,
            "prompt_index": prompt_index, "image": k, "width": size[0], "height": size[1],
            "sha256": sha256_files([image.path])}


def _recorded(path: Path, header: dict, entries: list[dict]) -> dict:
    """The folder's own manifest when it describes these images (same prompts, count and files), else
    BenchError naming what differs."""
    old = read_json(path, BenchError, "image folder manifest")
    for key in ("prompts", "images_per_prompt"):
        if old.get(key) != header[key]:
            raise BenchError(f"{path} records a run with different {key}; move it away to record the folder "
                             "for these prompts")
    recorded = {e.get("file"): e.get("sha256") for e in old.get("images", []) if isinstance(e, dict)}
    changed = [e["file"] for e in entries if recorded.get(e["file"]) != e["sha256"]]
    if changed or len(recorded) != len(entries):
        which = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "") if changed else "the list of images"
        raise BenchError(f"{path} does not match the images in the folder ({which} differ); move it away to "
                         "record the folder as it is")
    return old
