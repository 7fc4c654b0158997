"""``world_fid``: torch-fidelity's FID (and optionally KID) with the "world-cnn" extractor.

``world_fid(real, generated)`` takes folders of PNG/JPEG images or lists of PIL images (one image
size per set; the sets may differ, e.g. 64 px real vs 128 px generated; in-memory sets become a
``UInt8ImageDataset``) and returns ``{"fid": ..., "n_real": ..., "n_generated": ..., ...}`` from
``torch_fidelity.calculate_metrics(fid=True, feature_extractor="world-cnn")``.

What the numbers look like (the sets of tests/test_world_fid.py: scenes rendered at 64 px,
real set A vs set B, bundled weights):

=============================  =====  =====  ==================
set B (N = 400 each)           FID    ×same  KID (×1, ± std)
=============================  =====  =====  ==================
same distribution, new seeds    5.6    1.0   0.011 ± 0.012
Gaussian blur, radius 1        11.6    2.1   0.088 ± 0.015
Gaussian blur, radius 2        37.2    6.6   0.454 ± 0.026
RGB → BRG channel swap         31.6    5.6   0.583 ± 0.090
every shape a circle           72.3   12.9   1.406 ± 0.091
=============================  =====  =====  ==================

Like any FID it is biased upwards at small N (same-distribution FID 9.7 at N = 200, 6.8 at
300, 5.6 at 400, roughly ∝ 1/N): compare FIDs only at equal set sizes, or use ``kid=True``,
which is unbiased.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch_fidelity
from PIL import Image, UnidentifiedImageError
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset

from bench.errors import BenchError, check_in_folder, check_range
from bench.world.fid.extractor import EXTRACTOR_NAME, register_world_extractor
from bench.world.fid.network import DEFAULT_WEIGHTS, FEATURE_LAYER, load_world_cnn, pil_to_uint8, weights_digest
from pixart.files import sha256_files


class UInt8ImageDataset(Dataset):
    """In-memory images as torch-fidelity wants them: uint8 tensors [3, H, W], one size per set."""

    def __init__(self, images: Iterable[Image.Image | np.ndarray | torch.Tensor]):
        tensors = []
        for im in images:
            if isinstance(im, Image.Image):
                t = pil_to_uint8(im)
            elif isinstance(im, np.ndarray):  # H×W×3 uint8
                t = torch.from_numpy(np.ascontiguousarray(im, dtype=np.uint8)).permute(2, 0, 1).contiguous()
            elif torch.is_tensor(im) and im.dtype == torch.uint8 and im.dim() == 3 and im.shape[0] == 3:
                t = im.contiguous()
            else:
                raise TypeError(f"expected PIL images, H×W×3 uint8 arrays or uint8 [3, H, W] tensors, got {type(im)}")
            tensors.append(t)
        if not tensors:
            raise BenchError("empty image set: FID needs at least 2 images per set")
        sizes = {tuple(t.shape) for t in tensors}
        if len(sizes) > 1:
            raise BenchError(f"all images of one set must share a size, got {sorted(sizes)}")
        self.images = tensors

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in self.images:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()


_FOLDER_EXTS = (".png", ".jpg", ".jpeg")  # torch-fidelity's default samples_find_ext (non-recursive)


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _FOLDER_EXTS)
    if not files:
        others = sorted(p.name for p in folder.iterdir())
        held = f" (it holds {len(others)} other entries, e.g. {others[0]})" if others else " (it is empty)"
        raise BenchError(f"no .png/.jpg/.jpeg images in {folder}{held}; give a folder of images")
    return files


def _folder_digest(folder: Path) -> str:
    return sha256_files(_folder_files(folder), with_names=True)


def _image_size(path: Path) -> tuple[int, int]:
    """The size of a readable image; BenchError naming the file when it is truncated or not an image."""
    try:
        with Image.open(path) as im:
            im.load()  # decodes the whole file: torch-fidelity would fail on a damaged one with a vaguer error
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:  # PIL's ways of saying "damaged"
        raise BenchError(f"cannot read image {path}: {e} (truncated or not an image?); remove or replace it") from None


def _as_input(images, what: str) -> tuple[str | Dataset, int, Path | UInt8ImageDataset]:
    """(torch-fidelity input, number of images, handle for hashing); ``what`` names the set in errors."""
    if isinstance(images, (str, Path)):
        folder = check_in_folder(images, f"{what} image folder")
        files = _folder_files(folder)
        sizes = {}
        for p in files:
            sizes.setdefault(_image_size(p), p)
        if len(sizes) > 1:
            examples = "; ".join(f"{p.name} is {w}x{h}" for (w, h), p in list(sizes.items())[:3])
            raise BenchError(f"all images of one set must share a size; {folder} has {len(sizes)} sizes ({examples})")
        return str(folder), len(files), folder
    if isinstance(images, UInt8ImageDataset):
        return images, len(images), images
    ds = UInt8ImageDataset(images)
    return ds, len(ds), ds


def world_fid(real, generated, *, device: str = "cpu", cache: bool = False, cache_root: str | Path | None = None,
              kid: bool = False, batch_size: int = 64, weights_path: str | Path | None = None,
              blas_threads: int | None = 1, verbose: bool = False) -> dict:
    """World-FID between two image sets, computed by ``torch_fidelity.calculate_metrics``.

    ``real`` and ``generated``: a folder of .png/.jpg/.jpeg files (non-recursive) or a sequence
    of PIL images (also H×W×3 uint8 arrays or uint8 [3, H, W] tensors). Within a set all images
    must share one size; the extractor resizes any size to 64×64 (non-square images are
    squashed, not cropped). FID is symmetric; the order only sets which input is which.

    ``cache=True`` lets torch-fidelity cache each set's features and statistics (under
    ``cache_root``, default ``$TORCH_HOME/fidelity_cache``) keyed by a sha256 of the set's content
    and of the extractor weights, so a changed set or retrained extractor never hits a stale entry.
    ``kid=True`` adds the kernel inception distance (torch-fidelity's polynomial kernel; 100
    subsets of half the smaller set, capped at 1000), which is unbiased, so unlike FID its
    expected value for two sets of one distribution is 0 at any set size.

    ``blas_threads`` caps numpy's BLAS threads during the call (None: leave as is). The matrices
    are only 128×128, too small for threads to help, and on a busy CPU multi-threaded OpenBLAS
    spin-waits: on a busy 2-core CPU its ``eigvals`` took ~0.8 s against ~2 ms single-threaded.

    Bad input (a missing, empty, mixed-size or damaged image folder, fewer than 2 images in a set, a
    missing or damaged extractor, an unknown device) is a ``BenchError``, before any feature is computed.

    Returns {"fid", "n_real", "n_generated", "feature_extractor", "feature_dim", "weights_sha256"}
    (+ "kid_mean", "kid_std").
    """
    register_world_extractor()
    try:
        dev = torch.device(device)
    except RuntimeError:  # torch's message for a device string it cannot parse
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise BenchError(f"--device must be cpu or cuda[:N], got {device!r}")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise BenchError(f"--device {device}: {torch.cuda.device_count()} CUDA devices are available; "
                         "use --device cpu" + (" or cuda:0" if torch.cuda.is_available() else ""))
    check_range("batch_size", batch_size, 1, whole=True)
    weights_path = Path(weights_path or DEFAULT_WEIGHTS)
    _, config = load_world_cnn(weights_path)  # a missing or damaged extractor is named before any image is read
    in_real, n_real, h_real = _as_input(real, "real")
    in_gen, n_gen, h_gen = _as_input(generated, "generated")
    for what, n, handle in (("real", n_real, h_real), ("generated", n_gen, h_gen)):
        if n < 2:
            where = f" in {handle}" if isinstance(handle, Path) else ""
            raise BenchError(f"the {what} set has {n} image{'s' if n != 1 else ''}{where}; "
                             "FID needs at least 2 per set")
    wdigest = weights_digest(weights_path)

    kwargs = dict(
        input1=in_gen, input2=in_real, fid=True, kid=kid, feature_extractor=EXTRACTOR_NAME,
        feature_layer_fid=FEATURE_LAYER, feature_layer_kid=FEATURE_LAYER,
        feature_extractor_weights_path=str(weights_path), cuda=dev.type == "cuda", batch_size=batch_size,
        save_cpu_ram=True, verbose=verbose, cache=cache,
    )
    if kid:
        kwargs["kid_subset_size"] = min(1000, max(2, min(n_real, n_gen) // 2))
    if cache:
        def name(handle):
            content = _folder_digest(handle) if isinstance(handle, Path) else handle.digest()
            return f"world-{content[:20]}-w{wdigest[:12]}"

        kwargs.update(input1_cache_name=name(h_gen), input2_cache_name=name(h_real))
        if cache_root is not None:
            kwargs["cache_root"] = str(cache_root)
    cuda_ctx = torch.cuda.device(dev) if dev.type == "cuda" and dev.index is not None else nullcontext()
    blas_ctx = threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads else nullcontext()
    with cuda_ctx, blas_ctx:
        metrics = torch_fidelity.calculate_metrics(**kwargs)
    out = {
        "fid": float(metrics[torch_fidelity.KEY_METRIC_FID]),
        "n_real": n_real,
        "n_generated": n_gen,
        "feature_extractor": EXTRACTOR_NAME,
        "feature_dim": int(config["feat_dim"]),
        "weights_sha256": wdigest,
    }
    if kid:
        out["kid_mean"] = float(metrics[torch_fidelity.KEY_METRIC_KID_MEAN])
        out["kid_std"] = float(metrics[torch_fidelity.KEY_METRIC_KID_STD])
    return out
