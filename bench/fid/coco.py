"""The COCO side of zero-shot FID-30K: which captions are drawn, and which real images they are compared with.

- ``read_coco_captions(path)``: a COCO captions file (``captions_val2014.json``: ``{"images": [{"id",
  "file_name", ...}], "annotations": [{"image_id", "caption", ...}]}``) → one ``CocoImage`` per image,
  in order of image id, with its captions in the order the file lists them. Captions are cleaned
  minimally (``clean_caption``: leading and trailing whitespace removed, runs of whitespace, newlines
  included, made one space; case, punctuation and spelling kept); a caption that is empty after
  that is dropped (and counted).
- ``sample_captions(images, n, seed, policy)``: ``numpy.random.default_rng(seed)`` draws ``n``
  distinct images among those with a caption (``Generator.choice(..., replace=False)``); then, per
  policy, ``random`` (default) takes one of each image's captions drawn by the same generator
  (``Generator.integers(0, counts)`` in one call, after the images), ``first`` the first one the
  file lists, and ``all`` every caption of the drawn images, so that ``n`` counts images and the
  list holds about 5·n captions (COCO val2014 has 5 to 7 per image). Row i of the list is image i of
  the generated set. The same file, ``n``, seed and policy give the same list on any machine.
- ``write_caption_list`` / ``read_caption_list``: the list as ``captions.jsonl``, one
  ``{"index", "image_id", "file_name", "caption", "caption_index"}`` per line (``caption_index``:
  the caption's position among its image's captions in the file), and its SHA-256.
- ``reference_files(...)``: the real images FID compares with: ``sampled`` (default), the drawn
  images themselves, each once (the matched reference), or ``all``, every image the captions file
  lists (Imagen's "reference images from the full validation set"). Every file must exist under the
  images folder; a missing one is named before anything is generated.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError, check_in_folder, check_range
from pixart.errors import read_json, read_text
from pixart.files import atomic_write, sha256_files
from pixart.pipeline import MAX_PROMPT_CHARS

CAPTION_POLICIES = ("random", "first", "all")
REFERENCE_POLICIES = ("sampled", "all")
CAPTION_LIST = "captions.jsonl"
MAX_SEED = 2**32 - 1  # numpy's default_rng takes any whole number ≥ 0; the store's seeds stop here


@dataclass(frozen=True)
class CocoImage:
    """One image of a COCO captions file: its id, file name (relative to the images folder) and
    cleaned captions, in the file's order."""

    image_id: int
    file_name: str
    captions: tuple[str, ...]


@dataclass(frozen=True)
class CocoCaptions:
    """A COCO captions file as read: its images by id, and what reading it dropped."""

    path: Path
    images: tuple[CocoImage, ...]
    empty_captions: int  # captions that were empty after cleaning (dropped)

    @property
    def n_captions(self) -> int:
        return sum(len(im.captions) for im in self.images)

    def describe(self) -> dict:
        """What the file held: its path, SHA-256, and counts (for fid.json)."""
        return {"path": str(self.path), "sha256": sha256_files([self.path]), "images": len(self.images),
                "images_with_captions": sum(1 for im in self.images if im.captions), "captions": self.n_captions,
                "empty_captions_dropped": self.empty_captions}


def clean_caption(text: str) -> str:
    """The caption as the model reads it: stripped, each run of whitespace (newlines too) one space."""
    return " ".join(text.split())


def read_coco_captions(path: str | os.PathLike) -> CocoCaptions:
    """The images and captions of a COCO captions file; BenchError names the file and the entry that
    is not as COCO writes it (a missing key, a caption of an image the file does not list, ...)."""
    path = Path(path)
    data = read_json(path, BenchError, "COCO captions file")
    where = f"COCO captions file {path}"
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise BenchError(f"{where} has no {key!r} list; give a COCO captions file such as "
                             "annotations/captions_val2014.json")
    files: dict[int, str] = {}
    for i, im in enumerate(data["images"]):
        if not (isinstance(im, dict) and _whole(im.get("id")) and isinstance(im.get("file_name"), str)
                and im["file_name"].strip()):
            raise BenchError(f"{where}: images[{i}] is not an image entry with a whole-number 'id' and a "
                             f"'file_name' (got {_short(im)})")
        if im["id"] in files:
            raise BenchError(f"{where}: images[{i}] repeats image id {im['id']}")
        name = im["file_name"]
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BenchError(f"{where}: images[{i}] file_name {name!r} is not a name inside the images folder")
        files[im["id"]] = name
    captions: dict[int, list[str]] = {k: [] for k in files}
    empty = 0
    for i, ann in enumerate(data["annotations"]):
        if not (isinstance(ann, dict) and _whole(ann.get("image_id")) and isinstance(ann.get("caption"), str)):
            raise BenchError(f"{where}: annotations[{i}] is not a caption entry with a whole-number 'image_id' "
                             f"and a 'caption' text (got {_short(ann)})")
        if ann["image_id"] not in files:
            raise BenchError(f"{where}: annotations[{i}] is a caption of image {ann['image_id']}, which 'images' "
                             "does not list")
        text = clean_caption(ann["caption"])
        if not text:
            empty += 1
            continue
        if len(text) > MAX_PROMPT_CHARS:
            raise BenchError(f"{where}: annotations[{i}] has a caption of {len(text):,} characters; at most "
                             f"{MAX_PROMPT_CHARS:,} are accepted")
        captions[ann["image_id"]].append(text)
    if not files:
        raise BenchError(f"{where} lists no images")
    images = tuple(CocoImage(k, files[k], tuple(captions[k])) for k in sorted(files))
    return CocoCaptions(path, images, empty)


def sample_captions(coco: CocoCaptions, n: int, seed: int, policy: str = "random") -> list[dict]:
    """The caption list of a run: ``n`` images drawn with ``seed``, their captions by ``policy`` (see the
    module's docstring). Row i: ``{"index": i, "image_id", "file_name", "caption", "caption_index"}``."""
    check_policy("--caption-policy", policy, CAPTION_POLICIES)
    check_range("--seed", seed, 0, MAX_SEED, whole=True)
    pool = [im for im in coco.images if im.captions]
    if not pool:
        raise BenchError(f"COCO captions file {coco.path} has no captions")
    check_range("--n", n, 1, len(pool), whole=True,
                why=f"{coco.path} has {len(pool):,} images with captions, and each is drawn at most once")
    rng = np.random.default_rng(int(seed))
    chosen = [pool[int(k)] for k in rng.choice(len(pool), size=int(n), replace=False)]
    if policy == "random":
        picks = rng.integers(0, [len(im.captions) for im in chosen]).tolist()
        pairs = [(im, [k]) for im, k in zip(chosen, picks)]
    elif policy == "first":
        pairs = [(im, [0]) for im in chosen]
    else:
        pairs = [(im, list(range(len(im.captions)))) for im in chosen]
    rows = []
    for im, which in pairs:
        for k in which:
            rows.append({"index": len(rows), "image_id": im.image_id, "file_name": im.file_name,
                         "caption": im.captions[k], "caption_index": k})
    return rows


def caption_list_text(rows: list[dict]) -> str:
    """The list as ``captions.jsonl`` holds it: one JSON object per line (ASCII, keys in row order)."""
    return "".join(json.dumps(row) + "\n" for row in rows)


def caption_list_sha256(rows: list[dict]) -> str:
    return hashlib.sha256(caption_list_text(rows).encode("utf-8")).hexdigest()


def write_caption_list(rows: list[dict], path: str | os.PathLike) -> str:
    """Write the list to ``path`` atomically; returns its SHA-256 (of the file's bytes). A file already
    there with another list is a BenchError, and stays as it is."""
    path = Path(path)
    text = caption_list_text(rows)
    if path.exists():
        if path.is_file() and read_text(path, BenchError, "caption list") == text:
            return caption_list_sha256(rows)
        raise BenchError(f"{path} holds another caption list (another --captions, --n, --seed or --caption-policy "
                         "made it); use another --out folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return caption_list_sha256(rows)


def read_caption_list(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``captions.jsonl``; BenchError names the file and the line that is not a row."""
    path = Path(path)
    rows = []
    for number, line in enumerate(read_text(path, BenchError, "caption list").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("caption"), str) and row.get("index") == len(rows)):
            raise BenchError(f"caption list {path}, line {number}: not a row {{\"index\": {len(rows)}, \"image_id\", "
                             "\"file_name\", \"caption\"}} (truncated or hand-edited?)")
        rows.append(row)
    if not rows:
        raise BenchError(f"caption list {path} is empty")
    return rows


def reference_files(coco: CocoCaptions, rows: list[dict], images: str | os.PathLike,
                    policy: str = "sampled") -> list[Path]:
    """The real images of the run under ``images``: the drawn ones, each once, in list order
    (``sampled``), or every image of the captions file in id order (``all``). BenchError names the
    missing files (the first few, and how many) before anything else is done."""
    check_policy("--reference", policy, REFERENCE_POLICIES)
    folder = check_in_folder(images, "--images folder")
    names = (list(dict.fromkeys(row["file_name"] for row in rows)) if policy == "sampled"
             else [im.file_name for im in coco.images])
    files = [folder / name for name in names]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise BenchError(f"--images {folder}: {len(missing):,} of the {len(files):,} reference images are missing "
                         f"({', '.join(str(p) for p in missing[:3])}{', ...' if len(missing) > 3 else ''}); give the "
                         "folder that holds the COCO images the captions file names (val2014/ for "
                         "captions_val2014.json)")
    return files


def check_policy(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BenchError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
