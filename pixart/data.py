"""Training data: items, aspect-ratio buckets, images → tensors, deterministic batch order.

Sources
- a folder of images with same-name ``.txt`` captions (``a/b.png`` + ``a/b.txt``);
- a JSONL manifest: ``{"path", "caption", optional "width", "height", "class"}`` (paths relative
  to the manifest's folder);
- webdataset-style ``.tar`` shards (members ``KEY.{jpg,png,webp}`` + ``KEY.txt``), unpacked once
  into a folder beside the run (stdlib ``tarfile``; random access and resume need files, not a stream).

Buckets: PixArt-α groups images by aspect ratio and trains each batch at one bucket's size.
We use the 33-bucket tables that diffusers ships (``ASPECT_RATIO_{256,512,1024}_BIN``, identical
to the official ``*_TEST`` tables); the official *training* tables add 7 extreme ratios
(beyond 1:3.5), which the released data barely uses. Other resolutions scale the 1024 table and
round sides to the model's size multiple. Single-scale training uses one square bucket.
Mixed scales (``Bucketer`` with more than one base resolution, the trainer's ``data.scales``): each
image trains at the base resolution nearest its own size (by the square root of its area), in
that resolution's buckets, so e.g. stage 3 can keep 64 px images at 64 px beside 128 px ones.
The official recipe trains one resolution per stage; mixing is an addition of ours (tried on the
shapes world: docs/experiments/reference-model.md).

Images are resized so they cover the bucket, centre-cropped, scaled to [-1, 1]; no flips (as the
official configs). Batch order is a pure function of (seed, epoch): the trainer can jump to any
step on resume, and every process sees its own slice of the same global batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import struct
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixart.errors import InputError, read_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# what PIL raises for a file it cannot read: its plugins raise any of these for a damaged or foreign file
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


class DataError(InputError, ValueError):
    """Bad training data; the message names the file."""


@dataclass
class Item:
    path: str
    caption: str
    width: int | None = None
    height: int | None = None
    label: int | None = None  # class label for class-conditional training

    @property
    def key(self) -> str:
        """The feature cache's key: the image and the caption its T5 features encode, so a re-captioned
        image is encoded again instead of training on its old caption's features."""
        return f"{self.path}#{hashlib.sha256(self.caption.encode()).hexdigest()[:16]}"


# ------------------------------------------------------------------------------------------
# Reading item lists
# ------------------------------------------------------------------------------------------


def read_folder(root: str | os.PathLike, skip_bad: bool = False, log=print) -> list[Item]:
    """The images under ``root`` with their captions (the first line of the same-name ``.txt``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}" if not root.exists() else
                        f"{root} is a file, not an image folder")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    items = []
    for p in images:
        txt = p.with_suffix(".txt")
        if not txt.is_file():
            if skip_bad:
                log(f"skipping {p}: no caption file {txt.name}")
                continue
            raise DataError(f"missing caption for {p}: expected {txt} (or set data.skip_bad=true)")
        try:
            caption = read_text(txt, DataError, "caption file")
        except DataError as e:
            if not skip_bad:
                raise DataError(f"{e} (fix it, or set data.skip_bad=true to leave its image out)") from None
            log(f"skipping {p}: {e}")
            continue
        items.append(Item(str(p), (caption.strip().splitlines() or [""])[0]))
    return items


def read_manifest(path: str | os.PathLike) -> list[Item]:
    """The items of a JSONL manifest: ``{"path", "caption", optional "width", "height", "class"}`` a line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"manifest not found: {path}")
    items = []
    for n, d in jsonl_lines(path, "manifest"):
        try:
            p = Path(d["path"])
            item = Item(str(p if p.is_absolute() else path.parent / p), str(d.get("caption", "")),
                        d.get("width"), d.get("height"), d.get("class"))
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{path}:{n}: bad manifest line ({e!r}); need at least {{\"path\", \"caption\"}}") from None
        for key, low in (("width", 1), ("height", 1), ("class", 0)):
            value = d.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise DataError(f"{path}:{n}: {key!r} must be a whole number, at least {low}, got {value!r}")
        items.append(item)
    if not items:
        raise DataError(f"manifest {path} lists no items")
    return items


def jsonl_lines(path: Path, what: str) -> list[tuple[int, object]]:
    """(line number, value) of each non-blank line of a JSON-lines file; DataError naming the file and
    a line that is not JSON."""
    values = []
    for n, line in enumerate(read_text(path, DataError, what).splitlines(), 1):
        if line.strip():
            try:
                values.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e}); a {what} holds one JSON object a line") from None
    return values


def unpack_shards(pattern: str, dest: str | os.PathLike) -> Path:
    """Unpack webdataset-style tar shards (glob ``pattern``) into ``dest`` as an image + .txt folder."""
    import glob
    import tarfile

    shards = sorted(glob.glob(pattern))
    if not shards:
        raise DataError(f"no tar shards match {pattern}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        done = dest / (Path(shard).name + ".done")
        if done.is_file():
            continue
        sub = dest / Path(shard).stem
        try:
            with tarfile.open(shard) as tar:
                tar.extractall(sub, filter="data")
        except tarfile.TarError as e:
            raise DataError(f"cannot read tar shard {shard}: {e}") from None
        done.touch()
    return dest


def read_items(*, root=None, manifest=None, shards=None, shard_dir=None, skip_bad=False, log=print) -> list[Item]:
    if sum(map(bool, (root, manifest, shards))) != 1:
        raise DataError("give exactly one data source: data.root (image folder), data.manifest (JSONL) "
                        "or data.shards (tar shards)")
    if shards:
        root = unpack_shards(shards, shard_dir or Path(shards).parent / "unpacked")
    return read_folder(root, skip_bad, log) if root else read_manifest(manifest)


def load_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except IMAGE_ERRORS as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def header_size(path: str) -> tuple[int, int]:
    """(height, width) from an image file's header (its pixels are not read), or DataError naming it."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except IMAGE_ERRORS as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def image_size(item: Item) -> tuple[int, int]:
    """(height, width), from the manifest when given, else from the file header."""
    if item.width and item.height:
        return int(item.height), int(item.width)
    return header_size(item.path)


def check_images(items: list[Item], skip_bad: bool = False, log=print) -> list[Item]:
    """The items whose image file opens as an image (its header is read, before any work): DataError
    naming the first one that does not, or with ``skip_bad`` those are logged and left out. A file
    damaged past its header is found when it is read (``load_image``)."""
    kept = []
    for it in items:
        try:
            header_size(it.path)
        except DataError as e:
            if not skip_bad:
                raise DataError(f"{e} (remove it, or set data.skip_bad=true to leave it out)") from None
            log(f"skipping: {e}")
            continue
        kept.append(it)
    return kept


# ------------------------------------------------------------------------------------------
# Buckets and transforms
# ------------------------------------------------------------------------------------------


def aspect_buckets(resolution: int, multiple: int = 16) -> dict[float, tuple[int, int]]:
    """{h/w ratio: (height, width)} for a base resolution."""
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
        ASPECT_RATIO_256_BIN,
        ASPECT_RATIO_512_BIN,
        ASPECT_RATIO_1024_BIN,
    )

    tables = {256: ASPECT_RATIO_256_BIN, 512: ASPECT_RATIO_512_BIN, 1024: ASPECT_RATIO_1024_BIN}
    if resolution in tables:
        return {float(r): (int(h), int(w)) for r, (h, w) in tables[resolution].items()}
    scale = resolution / 1024
    out = {}
    for r, (h, w) in ASPECT_RATIO_1024_BIN.items():
        hw = (max(multiple, round(h * scale / multiple) * multiple), max(multiple, round(w * scale / multiple) * multiple))
        out.setdefault(hw, float(r))
    return {r: hw for hw, r in out.items()}


def closest_bucket(height: int, width: int, buckets: dict[float, tuple[int, int]]) -> tuple[int, int]:
    ratio = height / width
    return buckets[min(buckets, key=lambda r: abs(r - ratio))]


class Bucketer:
    """Item → the (height, width) it trains at. ``resolutions[0]`` is the main base resolution, the
    rest are mixed in (an item goes to the one nearest its own size); ``multi_scale``: aspect-ratio
    buckets at that resolution, else one square bucket."""

    def __init__(self, resolutions, multi_scale: bool = False, multiple: int = 16):
        self.resolutions = tuple(dict.fromkeys(int(r) for r in resolutions))
        self.multi_scale = multi_scale
        self.tables = {r: aspect_buckets(r, multiple) if multi_scale else None for r in self.resolutions}

    def __call__(self, item: Item) -> tuple[int, int]:
        if len(self.resolutions) == 1 and not self.multi_scale:
            return (self.resolutions[0],) * 2  # no need to read the image's size
        h, w = image_size(item)
        r = min(self.resolutions, key=lambda r: abs(math.log(math.sqrt(h * w) / r)))
        return closest_bucket(h, w, self.tables[r]) if self.multi_scale else (r, r)


def to_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """Resize to cover (height, width), centre-crop, → [3, H, W] in [-1, 1]."""
    th, tw = size
    scale = max(th / image.height, tw / image.width)
    nh, nw = max(th, round(image.height * scale)), max(tw, round(image.width * scale))
    image = image.resize((nw, nh), Image.BICUBIC)
    top, left = (nh - th) // 2, (nw - tw) // 2
    image = image.crop((left, top, left + tw, top + th))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)
    return x / 127.5 - 1.0


# ------------------------------------------------------------------------------------------
# Deterministic batches
# ------------------------------------------------------------------------------------------


class BucketBatches:
    """Global batches (lists of item indices, one bucket each) for every epoch, from (seed, epoch) alone.

    Items are assigned to buckets once; each epoch shuffles within buckets, cuts full batches of
    ``global_batch`` (a bucket's remainder is dropped for the epoch), and shuffles batch order.
    """

    def __init__(self, bucket_of: list[tuple[int, int]], global_batch: int, seed: int):
        self.global_batch = global_batch
        self.seed = seed
        groups = defaultdict(list)
        for i, b in enumerate(bucket_of):
            groups[b].append(i)
        self.groups = dict(sorted(groups.items()))
        self.per_epoch = sum(len(v) // global_batch for v in self.groups.values())
        if self.per_epoch == 0:
            sizes = {f"{h}x{w}": len(v) for (h, w), v in self.groups.items()}
            raise DataError(f"no bucket holds a full global batch of {global_batch} images (bucket sizes: {sizes}); "
                            "use a smaller batch size or more data")

    def epoch(self, epoch: int) -> list[tuple[tuple[int, int], list[int]]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        batches = []
        for bucket, idx in self.groups.items():
            idx = idx[:]
            rng.shuffle(idx)
            batches += [(bucket, idx[i : i + self.global_batch]) for i in range(0, len(idx) - self.global_batch + 1, self.global_batch)]
        rng.shuffle(batches)
        return batches

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[tuple[int, int], list[int]]:
        """This process's share of global batch number ``step``."""
        epoch = step // self.per_epoch
        if getattr(self, "_cached", (None,))[0] != epoch:
            self._cached = (epoch, self.epoch(epoch))
        bucket, idx = self._cached[1][step % self.per_epoch]
        per = self.global_batch // world
        return bucket, idx[rank * per : (rank + 1) * per]
