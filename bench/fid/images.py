"""Image sets for FID: a folder, a list of image files or in-memory images, checked up front and read as
torch-fidelity wants them (a ``Dataset`` of ``torch.uint8`` tensors [3, H, W]) after one resize policy.

Resize policies (``RESIZE_POLICIES``), applied to both sides the same way:

- ``"center-crop-256"`` (the default): the largest centred square, then 256×256 with PIL's bicubic
  filter, which is antialiased when it shrinks (clean-fid's advice; the COCO-256 protocol)::

      w, h = image.size; s = min(w, h); left, top = (w - s) // 2, (h - s) // 2
      image.crop((left, top, left + s, top + s)).resize((256, 256), Image.Resampling.BICUBIC)

- ``"none"``: images as they are. torch-fidelity stacks a batch, so every image of one set must
  then have the same size (the two sets may differ).

Either way the extractor then resizes to its own input (Inception: 299×299) inside its ``forward``
with torch-fidelity's TF1-compatible bilinear interpolation (not antialiased), as the original
TensorFlow FID did.

Modes: every image becomes RGB with ``Image.convert("RGB")``, as every FID tool does; grayscale (L,
1), palette (P) and CMYK images are accepted (COCO val2014 holds grayscale JPEGs). Images with
transparency (RGBA, LA, PA, or a ``transparency`` entry) are refused naming the file: there is no
single right background to flatten them on. 16-bit and float images (I, I;16, F) are refused too.
EXIF orientation is not applied, as in torch-fidelity and clean-fid.

Folders are read non-recursively; their ``.png .jpg .jpeg .webp .bmp`` files (not hidden ones) in
name order, which is torch-fidelity's order for ``.png .jpg .jpeg`` (it skips the others).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms.functional import pil_to_tensor

from bench.errors import BenchError, check_in_folder

RESIZE_POLICIES = ("center-crop-256", "none")
CROP_SIDE = 256
RESIZE_CALLS = {  # recorded in provenance: what exactly was done to each image before the extractor
    "center-crop-256": "PIL: image.convert('RGB').crop(centred square on the short side)"
                       ".resize((256, 256), Image.Resampling.BICUBIC)",
    "none": "PIL: image.convert('RGB'), no resize",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
RGB_MODES = ("RGB", "L", "1", "P", "CMYK", "YCbCr")  # convert("RGB") has one meaning for these
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
DAMAGED = (UnidentifiedImageError, OSError, SyntaxError, ValueError)  # PIL's ways of saying "cannot decode"


def check_resize(resize: str) -> str:
    if resize not in RESIZE_POLICIES:
        raise BenchError(f"--resize must be one of {', '.join(RESIZE_POLICIES)}, got {resize!r}")
    return resize


def center_crop_256(image: Image.Image) -> Image.Image:
    """The largest centred square of ``image``, resized to 256×256 with PIL bicubic (antialiased)."""
    w, h = image.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return image.crop((left, top, left + s, top + s)).resize((CROP_SIDE, CROP_SIDE), Image.Resampling.BICUBIC)


def prepare(image: Image.Image, resize: str) -> torch.Tensor:
    """One PIL image → uint8 [3, H, W] after ``convert("RGB")`` and the resize policy."""
    image = image.convert("RGB")
    if resize == "center-crop-256":
        image = center_crop_256(image)
    return pil_to_tensor(image)


def unreadable(path, why) -> BenchError:
    return BenchError(f"cannot read image {path}: {why} (truncated or not an image?); remove or replace it")


def check_mode(image: Image.Image, where) -> None:
    """BenchError naming ``where`` for modes that ``convert("RGB")`` cannot map one right way."""
    mode = image.mode
    if mode in ALPHA_MODES or "transparency" in image.info:
        raise BenchError(f"image {where} has transparency (mode {mode}): FID has no single right background to "
                         "flatten it on; flatten it yourself (e.g. onto white with Image.alpha_composite) and save RGB")
    if mode not in RGB_MODES:
        raise BenchError(f"image {where} has mode {mode} (16-bit or float pixels), which has no single 8-bit RGB "
                         "mapping; convert it to 8-bit RGB first")


def list_images(folder, what: str) -> list[Path]:
    """The image files directly in ``folder``, in name order; BenchError when there are none."""
    folder = check_in_folder(folder, f"{what} image folder")
    entries = sorted(os.listdir(folder))
    files = [folder / n for n in entries
             if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES and (folder / n).is_file()]
    if not files:
        held = f" (it holds {len(entries)} other entries, e.g. {entries[0]})" if entries else " (it is empty)"
        raise BenchError(f"no {' '.join(IMAGE_SUFFIXES)} images in {folder}{held}; give a folder of images")
    return files


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(items: Sequence[tuple[str, str]]) -> str:
    """SHA-256 over sorted (name, SHA-256) pairs: a set's content, whatever its order or location."""
    h = hashlib.sha256()
    for name, digest in sorted(items):
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


class FilesDataset(Dataset):
    """Image files as uint8 [3, H, W] tensors after the resize policy; a file that cannot be decoded
    is a BenchError naming it."""

    def __init__(self, files: Sequence[Path], resize: str):
        self.files, self.resize = list(files), resize

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path = self.files[i]
        try:
            with Image.open(path) as im:
                return prepare(im, self.resize)
        except BenchError:
            raise
        except DAMAGED as e:
            raise unreadable(path, e) from None


class TensorsDataset(Dataset):
    """Prepared uint8 [3, H, W] tensors."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        self.tensors = list(tensors)

    def __len__(self):
        return len(self.tensors)

    def __getitem__(self, i):
        return self.tensors[i]


def memory_tensor(image, i: int, resize: str) -> torch.Tensor:
    """An in-memory image (PIL, H×W×3 uint8 array, uint8 [3, H, W] tensor) → prepared tensor."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        image = Image.fromarray(np.ascontiguousarray(image))  # H×W×3 uint8: RGB
    elif torch.is_tensor(image) and image.dtype == torch.uint8 and image.dim() == 3 and image.shape[0] == 3:
        if resize == "none":
            return image.contiguous()
        image = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    if not isinstance(image, Image.Image):
        raise BenchError(f"image #{i}: expected a PIL image, an H×W×3 uint8 array or a uint8 [3, H, W] tensor, "
                         f"got {type(image).__name__}")
    check_mode(image, f"#{i}")
    return prepare(image, resize)


@dataclass
class ImageSet:
    """A checked image set: ``files`` (read lazily) or prepared in-memory ``tensors``."""

    what: str  # "generated" or "reference": names the set in messages
    source: str  # the folder, or how the set was given
    resize: str
    files: list[Path] = field(default_factory=list)
    tensors: list[torch.Tensor] = field(default_factory=list)

    def __len__(self):
        return len(self.files) or len(self.tensors)

    def dataset(self) -> Dataset:
        return FilesDataset(self.files, self.resize) if self.files else TensorsDataset(self.tensors)

    def digest(self) -> str:
        """The content digest: file names and SHA-256s (in-memory: each prepared image's pixels)."""
        if self.files:
            return content_digest([(p.name, file_sha256(p)) for p in self.files])
        return content_digest([("", hashlib.sha256(str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest())
                               for t in self.tensors])


def check_files(files: Sequence[Path], resize: str) -> None:
    """Open each file's header (no decoding): readable, an accepted mode, and one size with ``"none"``."""
    first = None
    for path in files:
        try:
            with Image.open(path) as im:  # the header only; mode, info and size stay readable after closing
                pass
        except DAMAGED as e:
            raise unreadable(path, e) from None
        check_mode(im, path)  # outside the catch: its BenchError is a ValueError too
        size = im.size
        if resize == "none":
            if first is None:
                first = (path, size)
            elif size != first[1]:
                raise BenchError(f"all images of one set must share a size with --resize none: {first[0]} is "
                                 f"{first[1][0]}x{first[1][1]}, {path} is {size[0]}x{size[1]}; use --resize "
                                 "center-crop-256, or resize them")


def image_set(images, what: str, resize: str = "center-crop-256") -> ImageSet:
    """Check and describe an image set: a folder, a list of image files, or a list of in-memory images
    (PIL images, H×W×3 uint8 arrays, uint8 [3, H, W] tensors). BenchError for an empty set, fewer than 2
    images, a missing or unreadable file, a refused mode, or (with ``"none"``) mixed sizes."""
    check_resize(resize)
    if isinstance(images, (str, os.PathLike)):
        files = list_images(images, what)
        out = ImageSet(what, str(images), resize, files=files)
    else:
        images = list(images)
        if images and all(isinstance(x, (str, os.PathLike)) for x in images):
            files = [Path(x) for x in images]
            for p in files:
                if not p.is_file():
                    raise BenchError(f"{what} image {p}: " + ("no such file" if not p.exists() else "not a file"))
            out = ImageSet(what, "a file list", resize, files=files)
        else:
            tensors = [memory_tensor(im, i, resize) for i, im in enumerate(images)]
            sizes = {tuple(t.shape) for t in tensors}
            if len(sizes) > 1:
                raise BenchError(f"all images of one set must share a size with --resize none; the {what} images "
                                 f"have {len(sizes)}: {sorted(sizes)[:3]}")
            out = ImageSet(what, "images in memory", resize, tensors=tensors)
    if len(out) < 2:
        raise BenchError(f"the {what} set ({out.source}) has {len(out)} image{'s' if len(out) != 1 else ''}; "
                         "FID needs at least 2 per set")
    if out.files:
        check_files(out.files, resize)
    return out
