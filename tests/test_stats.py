"""bench.stats: bootstrap CIs of a mean and paired differences, against scipy.stats.bootstrap."""

import numpy as np
import pytest
from scipy import stats as sps

from bench.stats import bootstrap_ci, paired_bootstrap


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
    noise = paired_bootstrap(a, a + 0.01 * rng.standard_normal(100))
    assert noise.ci[0] < 0 < noise.ci[1] and noise.p_value > 0.05
    with pytest.raises(ValueError, match="one score per item"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([1, float("nan")], [1, 0])
