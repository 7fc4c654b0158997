"""What "the same image" means when the two were made in batches of other sizes, with another number of
threads, or on a CPU with other vector kernels (AVX2, AVX-512): the decoded pixels agree within 1/255.

Seeds fix the noise exactly (one CPU generator per image), but the floats after it are rounded in an order
that depends on the batch (its size, and the text padding its longest caption keeps), the threads and the
kernel; a value close to the middle of two 8-bit levels can then land on the other level. Bit-equal files
are promised only for the same batch on the same machine (see docs/sampling.md, "Seeds, sizes").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TOLERANCE = 1  # 8-bit levels, i.e. 1/255


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def pixel_difference(a, b) -> int:
    """The largest difference of two images' 8-bit values (files or PIL images); they must share a size."""
    pa = pixels(a) if isinstance(a, (str, Path)) else np.asarray(a.convert("RGB"), dtype=np.int16)
    pb = pixels(b) if isinstance(b, (str, Path)) else np.asarray(b.convert("RGB"), dtype=np.int16)
    assert pa.shape == pb.shape, (pa.shape, pb.shape)
    return int(np.abs(pa - pb).max())


def assert_same_image(a, b) -> None:
    diff = pixel_difference(a, b)
    assert diff <= TOLERANCE, f"{a} and {b} differ by {diff}/255"


def assert_same_images(folder_a: Path, folder_b: Path) -> None:
    """The same file names in both folders, and each pair the same image within 1/255."""
    names = sorted(p.name for p in Path(folder_a).iterdir())
    assert names == sorted(p.name for p in Path(folder_b).iterdir())
    assert names, f"{folder_a} is empty"
    for name in names:
        assert_same_image(Path(folder_a) / name, Path(folder_b) / name)
