"""Confidence intervals and paired comparisons for per-image (or per-prompt) scores.

Every benchmark reports a mean over images with a 95% confidence interval, and compares two
models on the same prompts and seeds. Both are percentile bootstraps over the scored items:

- ``bootstrap_ci(values)``: the CI of one model's mean score, resampling items with replacement.
- ``paired_bootstrap(a, b)``: the difference of two models' means on the *same* items
  (``a[i]`` and ``b[i]`` score one prompt and seed). Items are resampled jointly, so the
  variation shared by both models (hard prompts, lucky seeds) cancels out of the difference,
  which is what makes a paired comparison tighter than two separate CIs. Returns the difference,
  its CI and a two-sided bootstrap p-value for "no difference".

Both are seeded (the same inputs give the same interval) and vectorised with numpy.
``scipy.stats.bootstrap(..., method="percentile")`` computes the same intervals with its own
random draws; ``tests/test_stats.py`` compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000


def _resampled_means(columns: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``n_boot`` resamples (rows drawn with replacement) of ``columns`` [n, k] → [n_boot, k]."""
    rng = np.random.default_rng(seed)
    return columns[rng.integers(0, len(columns), (n_boot, len(columns)))].mean(axis=1)


def _as_scores(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"{name}: expected a non-empty list of scores, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name}: scores must be finite numbers")
    return v


def bootstrap_ci(values, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (resampling items). One item, or all equal: (mean, mean)."""
    v = _as_scores(values, "values")
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    means = _resampled_means(v[:, None], n_boot, seed)[:, 0]
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedDifference:
    """mean(a) − mean(b) on the same items, its percentile bootstrap CI, and a two-sided p-value."""

    difference: float
    ci: tuple[float, float]
    p_value: float
    n: int

    def as_dict(self) -> dict:
        return {"difference": self.difference, "ci95": list(self.ci), "p_value": self.p_value, "n": self.n}


def paired_bootstrap(a, b, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> PairedDifference:
    """Paired bootstrap of mean(a) − mean(b), where ``a[i]`` and ``b[i]`` score the same item.

    The p-value is the two-sided bootstrap test of "no difference": twice the share of resampled
    differences on the far side of 0 from the observed one (at least 1 / n_boot, at most 1)."""
    a, b = _as_scores(a, "a"), _as_scores(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired scores need one score per item from each model; got {len(a)} and {len(b)}")
    d = a - b
    observed = float(d.mean())
    if len(d) < 2 or np.all(d == d[0]):
        return PairedDifference(observed, (observed, observed), 1.0 if observed == 0 else 0.0, len(d))
    diffs = _resampled_means(d[:, None], n_boot, seed)[:, 0]
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    far = np.mean(diffs <= 0) if observed > 0 else np.mean(diffs >= 0)
    p = float(min(1.0, max(2 * far, 1 / n_boot)))
    return PairedDifference(observed, (float(lo), float(hi)), p, len(d))


def paired_bootstrap_by_group(a, b, groups, n_boot: int = N_BOOT, seed: int = 0,
                              level: float = 0.95) -> PairedDifference:
    """``paired_bootstrap`` of the per-group means: ``a[i]`` and ``b[i]`` score the same item, and
    items of one group (the images of one prompt) share its difficulty, so groups are what is
    resampled. ``n`` of the result counts groups. With equally many items per group, the difference
    is mean(a) − mean(b)."""
    a, b = _as_scores(a, "a"), _as_scores(b, "b")
    groups = np.asarray(groups)
    if not len(a) == len(b) == len(groups):
        raise ValueError(f"paired scores need one score per item from each model and a group per item; got "
                         f"{len(a)}, {len(b)} and {len(groups)}")
    _, index = np.unique(groups, return_inverse=True)
    counts = np.bincount(index)
    return paired_bootstrap(np.bincount(index, a) / counts, np.bincount(index, b) / counts, n_boot, seed, level)
