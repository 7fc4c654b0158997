"""human_study.aggregate on simulated and hand-made studies: it recovers known strengths, its Kendall's W
and Krippendorff's alpha equal the reference libraries', its bootstrap is seeded, and bad input
gets a StudyError naming what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from outside import require

from human_study.aggregate import aggregate, fit_plackett_luce, write_results
from human_study.errors import StudyError
from human_study.figure import user_study_figure
from human_study.simulate import sample_plackett_luce, simulate_judgements
from pixart.errors import InputError

# the reference libraries of the parity tests: skipped locally, failed on CI when one does not import
WHY_CHOIX = "the weighted Plackett-Luce fit is checked against choix (a dependency of the project)"
WHY_PINGOUIN = "Kendall's W is checked against pingouin's Friedman test; the test extras install pingouin"
WHY_KRIPPENDORFF = "Krippendorff's alpha is checked against the krippendorff library (a dependency of the project)"
TRUE = {"pixart": 1.0, "sdxl": 0.4, "sdv2": -0.2, "dalle2": -1.2}
MODELS = list(TRUE)


@pytest.fixture(scope="module")
def study():
    """40 raters with the true strengths, no noise or ties, each ranking 30 of 60 prompts."""
    judgements, raters = simulate_judgements(TRUE, 40, 60, 30, seed=3)
    return judgements, raters, aggregate(judgements, raters, MODELS, n_boot=100, seed=0)


def _estimates(block: dict) -> np.ndarray:
    return np.array([block[m]["estimate"] for m in MODELS])


def _mid_ranks(judgements: pd.DataFrame) -> pd.DataFrame:
    """The judgements with mid-ranks and a ranking id, computed with pandas (independently of aggregate)."""
    out = judgements.copy()
    out["ranking"] = out["rater"] + "/" + out["position"].astype(str)
    out["rank"] = out.groupby(["criterion", "ranking"])["rank"].rank(method="average")
    return out


# ---- the estimates


def test_plackett_luce_recovers_the_true_strengths_and_order(study):
    _, _, result = study
    truth = np.array(list(TRUE.values())) - np.mean(list(TRUE.values()))  # only differences are identified
    for c, r in result["criteria"].items():
        pl = r["plackett_luce"]["log_strength"]
        assert list(np.argsort(-_estimates(pl))) == [0, 1, 2, 3], c
        for m, t in zip(MODELS, truth):
            assert pl[m]["ci_low"] <= t <= pl[m]["ci_high"], (c, m, t, pl[m])
        p_true = np.exp(truth) / np.exp(truth).sum()
        p_first = r["plackett_luce"]["p_first"]
        assert np.isclose(sum(_estimates(p_first)), 1.0)
        assert all(p_first[m]["ci_low"] <= p <= p_first[m]["ci_high"] for m, p in zip(MODELS, p_true)), c
        # the model-free readings agree on the order
        assert list(np.argsort(-_estimates(r["first_place_share"]))) == [0, 1, 2, 3], c
        assert list(np.argsort(_estimates(r["mean_rank"]))) == [0, 1, 2, 3], c


def test_weighted_plackett_luce_fit_is_choix_on_the_repeated_rankings():
    choix = require("choix", WHY_CHOIX)

    rng = np.random.default_rng(5)
    orders = np.array([rng.permutation(5) for _ in range(12)])
    counts = rng.integers(0, 4, 12)
    repeated = [list(o) for o, n in zip(orders, counts) for _ in range(n)]
    expected = choix.ilsr_rankings(5, repeated, alpha=0.01, max_iter=1000)
    assert np.allclose(fit_plackett_luce(orders, counts.astype(float), 5), expected, atol=1e-7)
    # a model that always wins stays finite (the regularisation), and first
    always = fit_plackett_luce(np.array([[2, 0, 1]]), np.array([7.0]), 3)
    assert np.isfinite(always).all() and np.argmax(always) == 2


@pytest.mark.parametrize("tie_prob", [0.0, 0.3])
def test_kendalls_w_equals_pingouin_friedman(tie_prob):
    pingouin = require("pingouin", WHY_PINGOUIN)

    judgements, raters = simulate_judgements(TRUE, 12, 10, 6, seed=1, tie_prob=tie_prob, noise=0.5)
    result = aggregate(judgements, raters, MODELS, n_boot=20)
    data = _mid_ranks(judgements)
    assert (tie_prob > 0) == (data.groupby(["criterion", "ranking"])["rank"].nunique() < 4).any()
    for c in ("quality", "alignment"):
        expected = pingouin.friedman(data[data["criterion"] == c], dv="rank", within="model", subject="ranking")["W"]
        got = result["criteria"][c]["agreement"]["kendall_w"]["estimate"]
        assert got == pytest.approx(float(expected.iloc[0]), abs=1e-9)


def test_krippendorff_alpha_equals_the_library_on_an_independent_matrix():
    krippendorff = require("krippendorff", WHY_KRIPPENDORFF)
    judgements, raters = simulate_judgements(TRUE, 8, 10, 6, seed=2, tie_prob=0.2, noise=0.8)
    result = aggregate(judgements, raters, MODELS, n_boot=20)
    data = _mid_ranks(judgements)
    for c in ("quality", "alignment"):
        matrix = data[data["criterion"] == c].pivot_table(index="rater", columns=["prompt", "model"],
                                                          values="rank", aggfunc="mean")
        expected = krippendorff.alpha(reliability_data=matrix.to_numpy(), level_of_measurement="ordinal")
        alpha = result["criteria"][c]["agreement"]["krippendorff_alpha"]
        assert alpha["estimate"] == pytest.approx(expected, abs=1e-9)
        assert alpha["n_raters"] == 8


def test_alpha_is_one_for_raters_who_agree_and_none_without_shared_prompts():
    rng = np.random.default_rng(0)
    order = {p: rng.permutation(4) + 1.0 for p in range(5)}  # every prompt's one true ranking
    rows = [{"rater": f"r{i}", "prompt": p, "position": p, "criterion": "quality", "model": m, "rank": order[p][k]}
            for i in range(3) for p in range(5) for k, m in enumerate(MODELS)]
    raters = pd.DataFrame({"rater": ["r0", "r1", "r2"], "excluded": False, "failed_checks": 0, "n_checks": 2,
                           "finished": True})
    result = aggregate(pd.DataFrame(rows), raters, MODELS, n_boot=20)
    assert result["criteria"]["quality"]["agreement"]["krippendorff_alpha"]["estimate"] == pytest.approx(1.0)
    alone = pd.DataFrame(rows).assign(prompt=lambda d: d["rater"].str[1:].astype(int) * 10 + d["position"])
    alpha = aggregate(alone, raters, MODELS, n_boot=20)["criteria"]["quality"]["agreement"]["krippendorff_alpha"]
    assert alpha["estimate"] is None and "two or more raters" in alpha["reason"]


def test_krippendorff_library_reads_raters_by_units_as_in_the_canonical_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers x 12 units,
    # published nominal alpha 0.743; our matrices are oriented the same way (raters are rows)
    krippendorff = require("krippendorff", WHY_KRIPPENDORFF)
    n = np.nan
    m = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                  [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]])
    assert krippendorff.alpha(reliability_data=m, level_of_measurement="nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff.alpha(reliability_data=m.T, level_of_measurement="nominal") != pytest.approx(0.743, abs=5e-3)


def _tiny(ranks_second: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two raters, one ranking each of models a, b, c: (1, 2, 3) and ``ranks_second``."""
    rows = [{"rater": r, "prompt": p, "position": 0, "criterion": "quality", "model": m, "rank": v}
            for r, p, ranks in (("x", 0, [1, 2, 3]), ("y", 1, ranks_second)) for m, v in zip("abc", ranks)]
    raters = pd.DataFrame({"rater": ["x", "y"], "excluded": False, "failed_checks": 0, "n_checks": 2, "finished": True})
    return pd.DataFrame(rows), raters


def test_win_matrix_first_place_and_mean_rank_on_a_hand_computed_case():
    # second ranking: b and c tied first, a last. By hand: a beats b in 1 of 2 rankings, a beats c in 1
    # of 2, b beats c once and ties once (1.5 of 2); first place: a 1, b and c half each, of 2 rankings;
    # mid-ranks: a (1 + 3) / 2, b (2 + 1.5) / 2, c (3 + 1.5) / 2
    for convention in ([3, 1, 1], [2, 1, 1]):  # competition and dense tie ranks read the same
        result = aggregate(*_tiny(convention), ["a", "b", "c"], n_boot=50)["criteria"]["quality"]
        share = np.array(result["win_matrix"]["share"], dtype=float)
        assert np.isnan(np.diag(share)).all()
        assert np.allclose(share + share.T, 1 - np.eye(3) + np.diag([np.nan] * 3), equal_nan=True)
        assert share[0, 1] == 0.5 and share[0, 2] == 0.5 and share[1, 2] == 0.75
        assert [result["first_place_share"][m]["estimate"] for m in "abc"] == [0.5, 0.25, 0.25]
        assert [result["mean_rank"][m]["estimate"] for m in "abc"] == [2.0, 1.75, 2.25]


def test_win_matrix_is_complementary_on_a_simulated_study(study):
    share = np.array(study[2]["criteria"]["alignment"]["win_matrix"]["share"], dtype=float)
    off = ~np.eye(4, dtype=bool)
    assert np.allclose((share + share.T)[off], 1.0)
    assert (share[0, 1:] > 0.5).all()  # the strongest model beats each other one


# ---- the bootstrap


def test_bootstrap_is_seeded_and_order_free_and_its_intervals_hold_the_estimates(study):
    judgements, raters, result = study
    shuffled = judgements.sample(frac=1.0, random_state=0)
    assert aggregate(shuffled, raters, MODELS, n_boot=100, seed=0) == result
    other = aggregate(judgements, raters, MODELS, n_boot=100, seed=1)
    assert other["criteria"]["quality"]["mean_rank"] != result["criteria"]["quality"]["mean_rank"]
    for r in result["criteria"].values():
        blocks = [r["first_place_share"], r["mean_rank"], r["plackett_luce"]["log_strength"],
                  r["plackett_luce"]["p_first"], {"w": r["agreement"]["kendall_w"]}]
        for block in blocks:
            for v in block.values():
                assert v["ci_low"] < v["estimate"] < v["ci_high"], v
        assert r["bootstrap"] == {"empty_replicates": 0, "failed_plackett_luce_fits": 0}


@pytest.mark.parametrize("n_raters, n_prompts", [(1, 40), (40, 1)])
def test_the_bootstrap_resamples_both_raters_and_prompts(n_raters, n_prompts):
    # one rater: only the prompt draws can vary a replicate; one prompt: only the rater draws can
    judgements, raters = simulate_judgements(TRUE, n_raters, n_prompts, n_prompts, seed=0, noise=0.5)
    result = aggregate(judgements, raters, MODELS, n_boot=50)
    for m in MODELS:
        v = result["criteria"]["quality"]["mean_rank"][m]
        assert v["ci_high"] - v["ci_low"] > 0.05, (m, v)


def test_a_higher_level_gives_wider_intervals(study):
    judgements, raters, result = study
    wide = aggregate(judgements, raters, MODELS, n_boot=100, seed=0, level=0.99)
    for m in MODELS:
        narrow_ci, wide_ci = (x["criteria"]["quality"]["first_place_share"][m] for x in (result, wide))
        assert wide_ci["ci_low"] <= narrow_ci["ci_low"] and narrow_ci["ci_high"] <= wide_ci["ci_high"]


# ---- exclusion


def test_excluded_raters_are_dropped_and_counted_unless_kept():
    judgements, raters = simulate_judgements(TRUE, 20, 30, 10, seed=4, n_spammers=5)
    default = aggregate(judgements, raters, MODELS, n_boot=20)
    kept = aggregate(judgements, raters, MODELS, n_boot=20, include_excluded=True)
    assert default["counts"]["excluded"] == 5 and default["counts"]["raters_used"] == 15
    assert default["counts"]["excluded_rows_dropped"] == 5 * 10 * 2 * 4
    assert default["counts"]["excluded_rankings_dropped"] == 5 * 10 * 2
    assert default["counts"]["rankings"] == {"quality": 150, "alignment": 150}
    assert kept["counts"]["excluded_rows_dropped"] == 0 and kept["counts"]["rankings"]["quality"] == 200
    # the spammers rank at random, so keeping them pulls the best model's share down
    best = lambda r: r["criteria"]["quality"]["first_place_share"]["pixart"]["estimate"]
    assert best(kept) < best(default)
    with pytest.raises(StudyError, match="include_excluded"):
        aggregate(judgements, raters.assign(excluded=True), MODELS, n_boot=20)


# ---- bad input


def _bad(judgements, raters, change):
    j, r, models, options = judgements.copy(), raters.copy(), list(MODELS), {"n_boot": 20}
    return change(j, r, models, options) or (j, r, models, options)


def _set_first_rank(value):
    def change(j, r, models, options):
        j["rank"] = j["rank"].astype(object)
        j.loc[j.index[0], "rank"] = value
    return change


BAD = {
    "lacks the column(s) rank": lambda j, r, m, o: (j.drop(columns="rank"), r, m, o),
    "raters lacks the column(s) excluded": lambda j, r, m, o: (j, r.drop(columns="excluded"), m, o),
    "misses model(s) sdxl": lambda j, r, m, o: (j.drop(j.index[1]), r, m, o),
    "rank must be a number from 1 to 4": _set_first_rank(5),
    "has rank 'first'": _set_first_rank("first"),
    "no rankings remain to analyse: judgements has no rows": lambda j, r, m, o: (j.iloc[:0], r, m, o),
    "lists model 'pixart' twice": lambda j, r, m, o: (j.assign(model=j["model"].replace("sdxl", "pixart")), r, m, o),
    "not one of pixart": lambda j, r, m, o: (j.assign(model=j["model"].replace("sdxl", "sd3")), r, m, o),
    "missing from raters": lambda j, r, m, o: (j, r.iloc[1:], m, o),
    "misses model(s) extra": lambda j, r, m, o: (j, r, m + ["extra"], o),
    "n_boot must be": lambda j, r, m, o: (j, r, m, {"n_boot": 0}),
    "level must be": lambda j, r, m, o: (j, r, m, {"n_boot": 20, "level": 95}),
}


@pytest.mark.parametrize("message", list(BAD))
def test_bad_input_is_a_study_error_naming_it(study, message):
    j, r, models, options = _bad(study[0], study[1], BAD[message])
    with pytest.raises(StudyError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        aggregate(j, r, models, **options)
    assert isinstance(caught.value, InputError)


# ---- result files and the chart


def test_write_results_writes_every_file_and_the_chart_has_a_bar_per_model_and_criterion(study, tmp_path):
    result = study[2]
    paths = write_results(result, tmp_path / "out")
    names = {p.name for p in paths}
    assert names == {"results.json", "first_place.csv", "mean_rank.csv", "plackett_luce.csv", "agreement.csv",
                     "win_matrix_quality.csv", "win_matrix_alignment.csv", "user_study.png", "user_study.svg"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == result
    first = pd.read_csv(tmp_path / "out" / "first_place.csv")
    assert list(first.columns) == ["criterion", "model", "estimate", "ci_low", "ci_high"]
    assert len(first) == 2 * len(MODELS)
    win = pd.read_csv(tmp_path / "out" / "win_matrix_quality.csv", index_col="model")
    assert np.isnan(np.diag(win.to_numpy())).all() and list(win.columns) == MODELS
    assert (tmp_path / "out" / "user_study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = user_study_figure(result).axes[0]
    assert len(ax.patches) == len(MODELS) * 2
    heights = sorted(round(p.get_height(), 12) for p in ax.patches)
    shares = [v["estimate"] for r in result["criteria"].values() for v in r["first_place_share"].values()]
    assert heights == sorted(round(s, 12) for s in shares)
    (tmp_path / "file").write_text("x")
    with pytest.raises(StudyError, match="is a file"):
        write_results(result, tmp_path / "file")


# ---- the simulator


def test_sampler_picks_first_with_softmax_probabilities_and_ranks_every_model():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    order = sample_plackett_luce(np.tile(logits, (20000, 1)), np.random.default_rng(0))
    assert (np.sort(order, axis=1) == np.arange(4)).all()
    assert np.allclose(np.bincount(order[:, 0], minlength=4) / 20000, [0.5, 0.3, 0.15, 0.05], atol=0.01)
    # second place after model 0 won: the rest renormalised, 0.3 / 0.5 for model 1
    second = order[order[:, 0] == 0, 1]
    assert np.mean(second == 1) == pytest.approx(0.6, abs=0.02)


def test_simulated_ties_share_the_best_rank_of_their_group():
    judgements, raters = simulate_judgements(TRUE, 5, 10, 10, seed=0, tie_prob=0.5)
    ranks = judgements.groupby(["rater", "position", "criterion"])["rank"]
    assert (ranks.min() == 1).all() and (ranks.size() == 4).all()
    assert (judgements["rank"].between(1, 4)).all() and ranks.nunique().lt(4).any()
    assert set(raters.columns) == {"rater", "excluded", "failed_checks", "n_checks", "finished"}
    with pytest.raises(StudyError, match="prompts_per_rater"):
        simulate_judgements(TRUE, 5, 10, 11)
