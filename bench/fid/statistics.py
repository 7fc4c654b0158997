"""FID statistics: features → (mu, sigma, n), the ``.npz`` they are kept in, and the content-keyed cache.

``mu`` and ``sigma`` are torch-fidelity's own (``fid_features_to_statistics``: the float32 mean and
numpy's float64 covariance of the float32 features). A statistics file is an ``.npz`` with ``mu`` [D],
``sigma`` [D, D], ``n`` (the number of images), ``provenance`` (a JSON string: the cache key, the
source, its content SHA-256, resize policy, extractor, layer, weights and their SHA-256, versions) and,
when KID was asked for, ``features`` [n, D] (KID needs the features, not only their moments).

The cache key (``cache_key``) is a SHA-256 over the set's content (sorted file names and each file's
SHA-256), the resize policy, the extractor's name and layer, its weights' SHA-256, and the versions of
torch-fidelity and Pillow (which resizes). An entry is ``CACHE_DIR/<key>.npz``: two references with
different content, resize, extractor or weights never share one, wherever their folders lie
(torch-fidelity's own cache is keyed by a name only). A damaged entry is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics

from bench.errors import BenchError, check_out_folder
from bench.fid.extractors import Extractor
from bench.fid.images import RESIZE_CALLS, ImageSet, image_set
from pixart.files import atomic_write, package_version, package_versions

FORMAT = "pixart-bench-fid-statistics/1"
VERSIONS = ("pixart-bench", "torch-fidelity", "torch", "torchvision", "pillow", "numpy")
PROVENANCE_KEYS = ("format", "key", "extractor", "layer", "weights_sha256", "resize")


@dataclass
class Statistics:
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    provenance: dict
    features: np.ndarray | None = None  # kept when KID was asked for

    def moments(self) -> dict:
        """What ``torch_fidelity.metric_fid.fid_statistics_to_metric`` takes."""
        return {"mu": self.mu, "sigma": self.sigma}


def cache_key(content_sha256: str, resize: str, extractor: Extractor) -> str:
    fields = {"format": FORMAT, "content_sha256": content_sha256, "resize": resize, "extractor": extractor.name,
              "layer": extractor.layer, "weights_sha256": extractor.weights_sha256,
              "torch-fidelity": package_version("torch-fidelity"), "pillow": package_version("pillow")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def statistics_from_features(features: torch.Tensor, provenance: dict, keep_features: bool = False) -> Statistics:
    moments = fid_features_to_statistics(features.cpu())
    return Statistics(moments["mu"], moments["sigma"], int(features.shape[0]), provenance,
                      features.cpu().numpy() if keep_features else None)


def save_statistics(path, stats: Statistics) -> Path:
    """Write ``stats`` to ``path`` (.npz) atomically: a reader never sees half a file."""
    arrays = {"mu": stats.mu, "sigma": stats.sigma, "n": np.int64(stats.n),
              "provenance": np.array(json.dumps(stats.provenance, sort_keys=True))}
    if stats.features is not None:
        arrays["features"] = stats.features

    def write(tmp: Path):
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to the temporary name
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def load_statistics(path, option: str = "REF") -> Statistics:
    """Statistics written by ``save_statistics``; BenchError naming ``path`` when it is missing, damaged or
    not such a file (shapes, n ≥ 2, provenance)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{option} {path}: " + ("no such file" if not path.exists() else "a folder, not a file"))
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise BenchError(f"cannot read FID statistics {path}: {e} (not an .npz, or truncated)") from None
    missing = [k for k in ("mu", "sigma", "n", "provenance") if k not in arrays]
    if missing:
        raise BenchError(f"FID statistics {path} lack {', '.join(missing)}: not written by pixart-bench fid; "
                         "give statistics written by `pixart-bench fid folder --save-stats` or its cache")
    mu, sigma, n = arrays["mu"], arrays["sigma"], arrays["n"]
    if mu.ndim != 1 or mu.dtype.kind != "f" or sigma.shape != (len(mu), len(mu)) or sigma.dtype.kind != "f":
        raise BenchError(f"FID statistics {path}: mu must be a float vector [D] and sigma a float matrix [D, D], "
                         f"got mu {mu.dtype} {mu.shape} and sigma {sigma.dtype} {sigma.shape}")
    if n.shape != () or n.dtype.kind not in "iu" or int(n) < 2:
        raise BenchError(f"FID statistics {path}: n must be a whole number of at least 2 images, got {n!r}")
    try:
        provenance = json.loads(str(arrays["provenance"]))
    except json.JSONDecodeError:
        provenance = None
    lacking = [k for k in PROVENANCE_KEYS if k not in provenance] if isinstance(provenance, dict) else PROVENANCE_KEYS
    if lacking:
        raise BenchError(f"FID statistics {path}: its provenance lacks {', '.join(lacking)}; without it, what "
                         "made the statistics is unknown and they cannot be compared safely")
    features = arrays.get("features")
    if features is not None and features.shape != (int(n), len(mu)):
        raise BenchError(f"FID statistics {path}: features {features.shape} do not match n {int(n)} × D {len(mu)}")
    return Statistics(mu, sigma, int(n), provenance, features)


def check_compatible(stats: Statistics, path, extractor: Extractor, resize: str, kid: bool) -> None:
    """BenchError unless statistics from ``path`` were made the way the other side will be."""
    p = stats.provenance
    if (p["extractor"], p["layer"]) != (extractor.name, extractor.layer):
        raise BenchError(f"REF {path} holds {p['extractor']} features (layer {p['layer']}), and the generated "
                         f"images are scored with {extractor.name} (layer {extractor.layer}): features of different "
                         f"extractors cannot be compared; use --extractor {p['extractor']}, or the reference images")
    if p["weights_sha256"] != extractor.weights_sha256:
        raise BenchError(f"REF {path} was made with other {extractor.name} weights (SHA-256 "
                         f"{p['weights_sha256'][:12]}…) than {extractor.weights} ({extractor.weights_sha256[:12]}…); "
                         "give the same weights, or the reference images")
    if p["resize"] != resize:
        raise BenchError(f"REF {path} was made with --resize {p['resize']}, and the generated images would be "
                         f"prepared with --resize {resize}; both sides must be prepared the same way")
    if kid and stats.features is None:
        raise BenchError(f"--kid needs the reference's features, and REF {path} holds only its mean and covariance; "
                         "give the reference images, or statistics saved while KID was computed (`fid folder "
                         "--save-stats` does so by default), or leave out --kid")


def provenance_for(images: ImageSet, digest: str, key: str, extractor: Extractor, n: int, dim: int) -> dict:
    return {"format": FORMAT, "key": key, "source": images.source, "n": n, "content_sha256": digest,
            "resize": images.resize, "resize_call": RESIZE_CALLS[images.resize], "extractor": extractor.name,
            "layer": extractor.layer, "weights": Path(extractor.weights).name,
            "weights_sha256": extractor.weights_sha256, "feature_dim": dim,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": package_versions(VERSIONS)}


def set_statistics(images: ImageSet, extractor: Extractor, cache_dir=None, kid: bool = False):
    """(Statistics, path of its cache entry or None, whether the cache had it) for a checked image set."""
    digest = images.digest()
    key = cache_key(digest, images.resize, extractor)
    entry = None
    if cache_dir is not None:
        entry = check_out_folder(cache_dir, "--cache") / f"{key}.npz"
        if entry.is_file():
            try:
                cached = load_statistics(entry, "cache entry")
            except BenchError:  # damaged: recomputed and replaced below
                cached = None
            if cached is not None and cached.provenance["key"] == key and (not kid or cached.features is not None):
                return cached, entry, True
    features = extractor.features(images.dataset())
    stats = statistics_from_features(features, provenance_for(images, digest, key, extractor, len(features),
                                                              int(features.shape[1])), keep_features=kid)
    if entry is not None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        save_statistics(entry, stats)
    return stats, entry, False


def default_cache_dir() -> Path:
    """Beside torch-fidelity's own cache: ``$TORCH_HOME/pixart_bench_fid``."""
    return Path(torch.hub.get_dir()).parent / "pixart_bench_fid"


def is_statistics_file(ref) -> bool:
    return isinstance(ref, (str, Path)) and str(ref).lower().endswith(".npz")


def reference_statistics(ref, *, extractor: str = "inception-v3-compat", weights=None, resize: str = "center-crop-256",
                         cache_dir=None, kid: bool | None = False, device: str = "cpu", batch_size: int = 64):
    """The reference's statistics and the ``.npz`` that holds them: ``(Statistics, Path | None)``.

    ``ref``: a folder or list of image files (statistics computed, or read from ``cache_dir`` when an
    entry with the same key is there; the path is then the cache entry, None without a cache), or an
    ``.npz`` written by this package (checked: format, shapes, provenance, and that it was made with
    this extractor, layer, weights and resize policy). ``kid=True`` keeps the features too (and needs them
    in an ``.npz``); ``kid=None`` keeps them where it computes them, and takes an ``.npz`` without them.
    """
    fe = Extractor(extractor, weights, device, batch_size)
    if is_statistics_file(ref):
        stats = load_statistics(ref)
        check_compatible(stats, ref, fe, resize, kid is True)
        return stats, Path(ref)
    stats, entry, _ = set_statistics(image_set(ref, "reference", resize), fe, cache_dir, kid is not False)
    return stats, entry
