"""Confidence intervals and paired comparisons for per-image (or per-prompt) scores.

Every benchmark reports a mean over images with a 95% confidence interval, and compares two
models on the same prompts (and, where both runs record them, the same seeds):

- ``bootstrap_ci(values)``: the percentile bootstrap CI of one model's mean score, resampling items
  with replacement.
- ``paired_bootstrap(a, b)``: the difference of two models' means on the *same* items (``a[i]``
  and ``b[i]`` score one prompt and seed), with the percentile bootstrap CI of that difference
  (items resampled jointly, so the variation shared by both models, hard prompts or lucky seeds,
  cancels out) and the p-value of ``sign_flip_test`` on the differences.
- ``sign_flip_test(d)``: the two-sided paired permutation test of "no difference": exact over all
  2^n sign patterns up to ``EXACT_MAX`` differences, seeded Monte Carlo above. Never 0.
- ``holm(pvalues)``: Holm's step-down adjustment of several p-values for one family of tests.

Why a test beside the CI: with few items the percentile bootstrap is far too narrow (three
differences of one sign give an interval from the smallest to the largest, however wide their
spread; ``bench.ablate.verdicts`` makes the same point for seeds), and a bootstrap p-value is as
optimistic (1 / n_boot for them), whereas the exact sign-flip test of three same-sign differences
gives p = 0.25.

All are seeded (the same inputs give the same numbers) and vectorised with numpy.
``scipy.stats.bootstrap(..., method="percentile")`` and ``scipy.stats.permutation_test(...,
permutation_type="samples")`` compute the same intervals and p-values; ``tests/test_stats.py``
compares them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000  # bootstrap resamples
EXACT_MAX = 20  # sign_flip_test enumerates all 2^n sign patterns up to this many differences
N_FLIPS = 9999  # ... and draws this many random patterns above it


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


def sign_flip_test(d, n_resamples: int = N_FLIPS, seed: int = 0, exact_max: int = EXACT_MAX) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of "no difference" on ``d``.

    ``d[i]`` is one unit's difference between two models (a prompt's score under A minus under B).
    If the models do not differ, each difference is as likely to have come out as +|d[i]| as as
    −|d[i]|, so every one of the 2^n sign patterns is equally likely. p is the share of patterns
    whose mean difference is at least as far from 0 as the observed mean:

    - n ≤ ``exact_max``: exact, counting all 2^n patterns (the observed one and its mirror image
      among them, so p ≥ 2 / 2^n; e.g. three differences of one sign give p = 2/8 = 0.25);
    - above: ``n_resamples`` random patterns (seeded) with the observed one added,
      p = (b + 1) / (m + 1), b of the m random patterns being at least as extreme.

    Never 0; 1 when every difference is 0. The same test as ``scipy.stats.permutation_test((d,),
    np.mean, permutation_type="samples")`` (exact when it enumerates all patterns). Ties are
    counted with a tolerance of 1e-9 of Σ|d| so that rounding does not split equal sums."""
    d = _as_scores(d, "differences")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    observed = abs(float(d.sum())) - 1e-9 * float(np.abs(d).sum())
    if len(d) <= exact_max:
        sums = np.zeros(1)
        for x in d:  # all 2^k signed sums of the first k differences, doubling per difference
            sums = np.concatenate([sums + x, sums - x])
        return float(np.mean(np.abs(sums) >= observed))
    rng = np.random.default_rng(seed)
    chunk = max(1, (1 << 22) // len(d))
    extreme, done = 0, 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        signs = 1.0 - 2.0 * rng.integers(0, 2, (k, len(d)))
        extreme += int(np.count_nonzero(np.abs(signs @ d) >= observed))
        done += k
    return (extreme + 1) / (n_resamples + 1)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With m p-values sorted ascending, the i-th smallest (i = 1..m) is multiplied by m − i + 1, the
    products are made non-decreasing (each at least the one before it) and capped at 1. Calling a
    result significant when its adjusted p is ≤ α keeps the chance of any false call in the family
    at most α, whatever the dependence between the tests."""
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"holm: expected a list of p-values in [0, 1], got {pvalues!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]


@dataclass(frozen=True)
class PairedDifference:
    """mean(a) − mean(b) on the same items, its percentile bootstrap CI, and the two-sided p-value
    of the sign-flip test (``sign_flip_test``) on the differences."""

    difference: float
    ci: tuple[float, float]
    p_value: float
    n: int

    def as_dict(self) -> dict:
        return {"difference": self.difference, "ci95": list(self.ci), "p_value": self.p_value, "n": self.n}


def paired_bootstrap(a, b, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> PairedDifference:
    """Paired bootstrap of mean(a) − mean(b), where ``a[i]`` and ``b[i]`` score the same item.

    The CI resamples the differences ``a − b`` (``n_boot`` resamples, seeded); with one item, or all
    differences equal, it is the single point (difference, difference). The p-value is not the
    bootstrap's (which is as optimistic as its interval on few items) but ``sign_flip_test`` of the
    differences: never 0, 1 when they are all 0."""
    a, b = _as_scores(a, "a"), _as_scores(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired scores need one score per item from each model; got {len(a)} and {len(b)}")
    d = a - b
    observed = float(d.mean())
    p = sign_flip_test(d, seed=seed)
    if len(d) < 2 or np.all(d == d[0]):
        return PairedDifference(observed, (observed, observed), p, len(d))
    diffs = _resampled_means(d[:, None], n_boot, seed)[:, 0]
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
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
