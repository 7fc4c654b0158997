"""bench.stats: bootstrap CIs of a mean and paired differences against scipy.stats.bootstrap, the
sign-flip test against scipy.stats.permutation_test, and Holm's adjustment against a hand computation."""

import numpy as np
import pytest
from scipy import stats as sps

from bench.stats import EXACT_MAX, N_BOOT, bootstrap_ci, holm, paired_bootstrap, sign_flip_test


def test_bootstrap_ci_brackets_the_mean():
    values = [0, 1] * 50
    lo, hi = bootstrap_ci(values)
    assert lo < 0.5 < hi and hi - lo < 0.25
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert bootstrap_ci(values) == bootstrap_ci(values)  # seeded
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(3)
    values = (rng.random(150) < 0.3).astype(float)  # pass/fail scores, like the oracle's
    ours = bootstrap_ci(values, n_boot=20000)
    theirs = sps.bootstrap((values,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95,
                           random_state=np.random.default_rng(0)).confidence_interval
    # two Monte-Carlo estimates of the same quantiles: equal up to resampling noise (~0.005 for these scores)
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.01)


def test_paired_bootstrap_matches_scipy_and_pairing_tightens_the_interval():
    rng = np.random.default_rng(1)
    difficulty = rng.random(200)  # shared by both models: cancels in the paired difference
    a = difficulty + 0.05 + 0.05 * rng.standard_normal(200)
    b = difficulty + 0.05 * rng.standard_normal(200)
    result = paired_bootstrap(a, b, n_boot=20000)
    assert result.difference == pytest.approx(np.mean(a - b))
    theirs = sps.bootstrap((a, b), lambda x, y: np.mean(x - y), paired=True, n_resamples=20000, method="percentile",
                           random_state=np.random.default_rng(0)).confidence_interval
    assert result.ci == pytest.approx((theirs.low, theirs.high), abs=0.003)
    assert result.ci[0] > 0 and result.p_value < 0.01
    # unpaired intervals of the two means overlap although the paired difference is clearly positive
    assert bootstrap_ci(a)[0] < bootstrap_ci(b)[1]
    assert result.as_dict()["n"] == 200


def test_paired_bootstrap_no_difference_and_bad_input():
    rng = np.random.default_rng(2)
    a = rng.random(100)
    same = paired_bootstrap(a, a.copy())
    assert same.difference == 0 and same.ci == (0.0, 0.0) and same.p_value == 1.0
    # every difference equal but not 0: p is the exact test's 2 / 2^n, never 0
    shifted = paired_bootstrap(a[:5] + 0.1, a[:5])
    assert shifted.ci == pytest.approx((0.1, 0.1)) and shifted.p_value == pytest.approx(2 / 2**5)
    noise = paired_bootstrap(a, a + 0.01 * rng.standard_normal(100))
    assert noise.ci[0] < 0 < noise.ci[1] and noise.p_value > 0.05
    with pytest.raises(ValueError, match="one score per item"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([1, float("nan")], [1, 0])


def scipy_sign_flip(d, n_resamples=np.inf, rng=None) -> float:
    """scipy's paired permutation test of mean(d) = 0: sign flips of the differences (exact when
    ``n_resamples`` covers all 2^n patterns)."""
    return float(sps.permutation_test((np.asarray(d, dtype=float),), lambda x, axis: np.mean(x, axis=axis),
                                      permutation_type="samples", vectorized=True, n_resamples=n_resamples,
                                      rng=rng).pvalue)


def test_three_same_sign_differences_give_p_one_quarter():
    """The defect: the paired bootstrap said p = 0.0005 for three prompts of one sign."""
    d = [0.02, 0.15, 0.09]
    assert sign_flip_test(d) == 0.25 == pytest.approx(scipy_sign_flip(d), abs=1e-12)
    result = paired_bootstrap(np.array(d) + 0.5, np.full(3, 0.5))
    assert result.p_value == pytest.approx(0.25, abs=1e-12)
    assert result.ci[0] > 0  # the percentile bootstrap alone would call it (the reason for the test)


@pytest.mark.parametrize("n", [2, 3, 5, 9, 14])
def test_sign_flip_test_matches_scipy_exact(n):
    rng = np.random.default_rng(n)
    # the second with ties: multiples of 1/8, whose sums are exact in floating point for both
    for d in (rng.normal(0.03, 0.1, n), np.round(rng.normal(0.0, 0.3, n) * 8) / 8):
        assert sign_flip_test(d) == pytest.approx(scipy_sign_flip(d), abs=1e-12)


def test_sign_flip_test_is_never_zero_and_one_for_no_difference():
    assert sign_flip_test(np.zeros(7)) == 1.0 and sign_flip_test(np.zeros(50)) == 1.0
    assert sign_flip_test(np.full(10, 0.2)) == pytest.approx(2 / 2**10)  # exact: the pattern and its mirror
    assert sign_flip_test(np.full(EXACT_MAX + 10, 0.2), n_resamples=999) == pytest.approx(1 / 1000)  # (0 + 1)/(m + 1)
    assert sign_flip_test([0.3]) == 1.0
    with pytest.raises(ValueError, match="non-empty"):
        sign_flip_test([])


def test_sign_flip_monte_carlo_matches_scipy_and_the_exact_value():
    """Above the exact limit: (b + 1)/(m + 1) from seeded random patterns, within Monte-Carlo error
    of scipy's own Monte-Carlo p and of the exact p (computed by scipy on a small case)."""
    rng = np.random.default_rng(5)
    d = rng.normal(0.02, 0.1, 60)
    ours, theirs = sign_flip_test(d, n_resamples=20000), scipy_sign_flip(d, 20000, np.random.default_rng(1))
    sd = np.sqrt(2 * theirs * (1 - theirs) / 20000)  # of the difference of two independent estimates
    assert 0.05 < theirs < 0.95 and abs(ours - theirs) < 4 * sd
    assert sign_flip_test(d) == sign_flip_test(d)  # seeded
    small = rng.normal(0.03, 0.1, 12)  # forced onto the Monte-Carlo path, against scipy's exact value
    exact = scipy_sign_flip(small)
    mc = sign_flip_test(small, n_resamples=20000, exact_max=5)
    assert abs(mc - exact) < 4 * np.sqrt(exact * (1 - exact) / 20000) + 1 / 20001


def test_holm_against_a_hand_computation():
    # sorted: 0.005 × 4 = 0.02, 0.01 × 3 = 0.03, 0.03 × 2 = 0.06, 0.04 × 1 = 0.04 → raised to 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-12)
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # 0.5 × 2 capped at 1; 0.6 raised to it
    assert holm([0.2]) == [0.2] and holm([]) == []
    assert holm([0.01, 0.01, 0.2]) == pytest.approx([0.03, 0.03, 0.2])  # ties: 0.03, max(0.02, 0.03), 0.2
    with pytest.raises(ValueError, match="p-values"):
        holm([0.1, 1.5])


def test_paired_ci_is_scipys_percentile_bootstrap_with_the_same_draws():
    """Both draw resample indices from a seeded numpy Generator the same way, so the intervals agree
    to rounding (the report's golden numbers are checked this way too)."""
    rng = np.random.default_rng(4)
    a, b = rng.random(25), rng.random(25)
    result = paired_bootstrap(a, b)
    theirs = sps.bootstrap((a - b,), np.mean, n_resamples=N_BOOT, method="percentile",
                           rng=np.random.default_rng(0)).confidence_interval
    assert result.ci == pytest.approx((theirs.low, theirs.high), abs=1e-12)
    assert result.p_value == pytest.approx(scipy_sign_flip(a - b, n_resamples=10000, rng=np.random.default_rng(2)),
                                           abs=0.03)
