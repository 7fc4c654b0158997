"""``world_fid``: FID (and optionally KID) with the "world-cnn" extractor, a thin call of
``bench.fid.compute_fid(generated, real, extractor="world-cnn", resize="none")``.

``world_fid(real, generated)`` takes folders of images or lists of PIL images (one image size per
set; the sets may differ, e.g. 64 px real vs 128 px generated) and returns ``{"fid": ...,
"n_real": ..., "n_generated": ..., ...}``: torch-fidelity's statistics and distance on the
world-cnn features, as ``pixart-bench fid folder GEN REAL --extractor world-cnn --resize none``.

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

from pathlib import Path

from bench.fid import compute_fid
from bench.fid.statistics import default_cache_dir
from bench.world.fid.extractor import register_world_extractor


def world_fid(real, generated, *, device: str = "cpu", cache: bool = False, cache_root: str | Path | None = None,
              kid: bool = False, batch_size: int = 64, weights_path: str | Path | None = None,
              verbose: bool = False) -> dict:
    """World-FID between two image sets: ``bench.fid.compute_fid`` with the world-cnn extractor, images as
    they are (``resize="none"``; the extractor squashes any size to 64×64, non-square images are not
    cropped). FID is symmetric; the order only sets which input is which.

    ``real`` and ``generated``: a folder of images (non-recursive) or a sequence of PIL images (also
    H×W×3 uint8 arrays or uint8 [3, H, W] tensors). ``cache=True`` keeps each set's statistics in
    ``bench.fid``'s content-keyed cache (``cache_root``, default ``$TORCH_HOME/pixart_bench_fid``):
    a changed set or retrained extractor never hits a stale entry. ``kid=True`` adds the kernel
    inception distance (torch-fidelity's polynomial kernel; 100 subsets of half the smaller set,
    capped at 1000), which is unbiased, so unlike FID its expected value for two sets of one
    distribution is 0 at any set size.

    Bad input (a missing, empty, mixed-size or damaged image folder, fewer than 2 images in a set, a
    missing or damaged extractor, an unknown device) is a ``BenchError``.

    Returns {"fid", "n_real", "n_generated", "feature_extractor", "feature_dim", "weights_sha256"}
    (+ "kid_mean", "kid_std").
    """
    register_world_extractor()
    cache_dir = (cache_root or default_cache_dir()) if cache else None
    result = compute_fid(generated, real, extractor="world-cnn", weights=weights_path, resize="none",
                         cache_dir=cache_dir, kid=kid, device=device, batch_size=batch_size, verbose=verbose)
    out = {"fid": result["fid"], "n_real": result["n_ref"], "n_generated": result["n_gen"],
           "feature_extractor": result["extractor"]["name"], "feature_dim": result["extractor"]["feature_dim"],
           "weights_sha256": result["extractor"]["weights_sha256"]}
    if kid:
        out.update(kid_mean=result["kid_mean"], kid_std=result["kid_std"])
    return out
