"""``compute_fid(gen, ref)``: FID (and optionally KID) between generated images and a reference, with
torch-fidelity's extractor, statistics and distance, returning what ``fid.json`` records.

Both sides go through one ``Extractor`` (same network, weights, layer, device and batch size) after one
resize policy. The distance is torch-fidelity's ``fid_statistics_to_metric`` (``Tr sqrt(Σ1 Σ2)`` from
``numpy.linalg.eigvals``, no scipy), on torch-fidelity's statistics, so folders given with
``resize="none"`` score what ``torch_fidelity.calculate_metrics(input1=gen, input2=ref, fid=True)``
does. KID is torch-fidelity's ``kid_features_to_metric`` (polynomial kernel, 100 subsets of
``min(1000, max(2, min(n_gen, n_ref) // 2))`` images: torch-fidelity's 1,000 where both sets allow it);
it needs both sides' features, so an ``.npz`` reference for KID must have been written with them.
``kid=None`` computes KID whenever both sides' features are at hand, and otherwise records why not.

Like any FID it is biased upwards at small N: compare FIDs only at equal N (the paper's FID-30K uses
30,000 generated images). Below 10,000 images the record carries a warning saying so
(``bench.fid.labels.small_n_warning``), stronger when N is at most the feature dimension.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from bench.errors import BenchError, check_out_file
from bench.fid.extractors import Extractor
from bench.fid.images import RESIZE_CALLS, check_resize, image_set
from bench.fid.labels import small_n_warning
from bench.fid.statistics import (
    VERSIONS,
    check_compatible,
    is_statistics_file,
    load_statistics,
    save_statistics,
    set_statistics,
)
from pixart.files import package_versions

KID_SUBSETS = 100
SMALL_DIM = 512  # at most this many feature dimensions, the distance runs with one BLAS thread


def kid_subset_size(n_gen: int, n_ref: int) -> int:
    return min(1000, max(2, min(n_gen, n_ref) // 2))


def blas_limit(dim: int):
    """One BLAS thread for small matrices: there, threads do not help, and on a busy CPU multi-threaded
    OpenBLAS spin-waits (a 128×128 ``eigvals`` took ~0.8 s against ~2 ms on one thread)."""
    return threadpool_limits(limits=1, user_api="blas") if dim <= SMALL_DIM else nullcontext()


def compute_fid(gen, ref, *, extractor: str = "inception-v3-compat", weights=None, resize: str = "center-crop-256",
                cache_dir=None, kid: bool | None = False, device: str = "cpu", batch_size: int = 64,
                save_stats=None, verbose: bool = False) -> dict:
    """FID between ``gen`` and ``ref``; returns the ``fid.json`` dict.

    ``gen``: a folder of images, a list of image files, or a list of in-memory images (PIL, H×W×3 uint8
    arrays, uint8 [3, H, W] tensors). ``ref``: the same, or an ``.npz`` of statistics written by this
    package (``save_stats``, or a cache entry), which must come from the same extractor, layer, weights
    and resize policy. ``extractor``: ``inception-v3-compat`` (default), ``clip-vit-b-32`` or
    ``world-cnn``; ``weights``: its weights file (default: torch-fidelity's cache, or the bundled
    world-cnn). ``resize``: ``center-crop-256`` or ``none`` (``bench.fid.images``). ``cache_dir``: where
    statistics are cached by content (None: no cache). ``save_stats``: also write the reference's
    statistics there (``.npz``). ``kid``: True computes KID too (a BenchError when ``ref`` is an ``.npz``
    without features), None computes it when it can (``settings.kid_not_computed`` says why not), False not.

    Every input is checked before any feature is computed; bad input is a ``BenchError`` naming the file
    or option. Returns {"fid", "n_gen", "n_ref", ["kid_mean", "kid_std"], "warnings", "reference",
    "generated", "settings", "extractor", "versions", "seconds"}; ``warnings``: one line each (small N, KID
    not computed).
    """
    check_resize(resize)
    fe = Extractor(extractor, weights, device, batch_size, verbose)
    if save_stats is not None:
        check_out_file(save_stats, "--save-stats", ".npz")
    if is_statistics_file(gen):
        raise BenchError(f"GEN {gen}: the generated side must be images (a folder or files), not statistics")
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
    gen_set = image_set(gen, "generated", resize)
    ref_set = ref_stats = None
    kid_skipped = None
    if is_statistics_file(ref):
        ref_stats = load_statistics(ref)
        check_compatible(ref_stats, ref, fe, resize, kid is True)
        if kid is None and ref_stats.features is None:
            kid_skipped = (f"KID was not computed: REF {ref} holds only the reference's mean and covariance, and KID "
                           "needs its features; give the reference images, or statistics saved with KID on")
    else:
        ref_set = image_set(ref, "reference", resize)
    kid = kid is not False and kid_skipped is None

    t0 = time.perf_counter()
    gen_stats, gen_entry, gen_hit = set_statistics(gen_set, fe, cache_dir, kid)
    t1 = time.perf_counter()
    if ref_set is not None:
        ref_stats, ref_entry, ref_hit = set_statistics(ref_set, fe, cache_dir, kid)
    else:
        ref_entry, ref_hit = Path(ref), True
    t2 = time.perf_counter()
    dim = len(gen_stats.mu)
    if len(ref_stats.mu) != dim:
        raise BenchError(f"REF {ref} holds {len(ref_stats.mu)}-d statistics, and the generated images give "
                         f"{dim}-d features with {fe.name} layer {fe.layer}")
    ref_moments = {k: v.astype(gen_stats.moments()[k].dtype, copy=False) for k, v in ref_stats.moments().items()}
    with blas_limit(dim):
        fid = fid_statistics_to_metric(gen_stats.moments(), ref_moments, verbose)[KEY_METRIC_FID]
    out = {"fid": float(fid), "n_gen": gen_stats.n, "n_ref": ref_stats.n}
    warnings = [w for w in (small_n_warning(gen_stats.n, ref_stats.n, dim), kid_skipped) if w]
    subset = kid_subset_size(gen_stats.n, ref_stats.n)
    if kid:
        with blas_limit(dim):
            k = kid_features_to_metric(torch.from_numpy(gen_stats.features), torch.from_numpy(ref_stats.features),
                                       kid_subsets=KID_SUBSETS, kid_subset_size=subset, verbose=verbose)
        out.update(kid_mean=float(k[KEY_METRIC_KID_MEAN]), kid_std=float(k[KEY_METRIC_KID_STD]))
    out["warnings"] = warnings
    if save_stats is not None:
        save_statistics(save_stats, ref_stats)
    out.update({
        "reference": {"id": ref_stats.provenance["key"], "source": str(ref) if ref_set is None else ref_set.source,
                      "n": ref_stats.n, "content_sha256": ref_stats.provenance.get("content_sha256"),
                      "statistics": str(ref_entry) if ref_entry is not None else None, "cached": ref_hit,
                      "created": ref_stats.provenance.get("created")},
        "generated": {"id": gen_stats.provenance["key"], "source": gen_set.source, "n": gen_stats.n,
                      "content_sha256": gen_stats.provenance["content_sha256"],
                      "statistics": str(gen_entry) if gen_entry is not None else None, "cached": gen_hit},
        "settings": {"resize": resize, "resize_call": RESIZE_CALLS[resize], "extractor_input": fe.info.input,
                     "distance": "torch_fidelity.metric_fid.fid_statistics_to_metric (eigvals)",
                     "kid": kid, **({"kid_subsets": KID_SUBSETS, "kid_subset_size": subset} if kid else {}),
                     **({"kid_not_computed": kid_skipped} if kid_skipped else {}),
                     "device": str(fe.device), "batch_size": batch_size,
                     "cache_dir": str(cache_dir) if cache_dir is not None else None,
                     "saved_statistics": str(save_stats) if save_stats is not None else None},
        "extractor": {**fe.describe(), "feature_dim": dim},
        "versions": package_versions(VERSIONS),
        "seconds": {"generated": round(t1 - t0, 3), "reference": round(t2 - t1, 3),
                    "distance": round(time.perf_counter() - t2, 3)},
    })
    return out
