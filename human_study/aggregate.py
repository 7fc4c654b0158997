"""The study's analysis: rankings of K models per prompt → model rankings with CIs and rater agreement.

Input (what the study app stores): ``judgements``, one row per (ranking, model) with columns rater,
prompt, position, criterion ("quality" or "alignment"), model and rank (1 = best; tied models share
a value); ``raters`` with rater, excluded, failed_checks, n_checks, finished; and the study's models.
One ranking is the rows with equal (rater, position, criterion) and covers all K models.

``aggregate`` reports, per criterion:

- ``first_place_share``: the share of rankings that put each model first (a tie for first among m
  models gives each 1/m). PixArt-α's user-study figure reports this ("share preferring each model").
- ``mean_rank``: each model's mean rank. Ties are read as mid-ranks throughout (the models tied for
  places 1 and 2 both get 1.5), whatever convention the app wrote ("1, 1, 3" or "1, 1, 2"), so the
  K ranks of a ranking always sum to K(K+1)/2. Borda points (K − rank) are the same reading.
- ``plackett_luce``: log-strengths (mean 0) fitted by ``choix.ilsr_rankings`` with ``alpha=0.01``:
  choix starts every pair's transition rate at alpha, as if each model had beaten every other a
  hundredth of a time, which keeps strengths finite when a model always wins (a small study, or a
  bootstrap draw of few raters) and moves nothing measurably once there are tens of rankings. Also
  ``p_first``, the implied probability of being ranked first among all K (softmax of strengths).
  Plackett–Luce has no ties: tied models are put in a uniformly random order, drawn once per
  ranking from the seed, before any fit.
- ``win_matrix``: the share of rankings where the row model beats the column model (a tie counts
  0.5), so W[i, j] + W[j, i] = 1; the diagonal (a model against itself) is undefined: null.
- ``agreement``: Kendall's W over all rankings as subjects and the K models as objects, with the
  tie correction (it equals ``pingouin.friedman``'s W), and Krippendorff's alpha (ordinal, by the
  ``krippendorff`` library) over a raters × units matrix, a unit being one (prompt, model) and its
  value that rater's mid-rank (the mean, where a rater ranked a prompt twice). Alpha needs a
  prompt ranked by two or more raters; otherwise it is null with the reason.

Confidence intervals come from a two-way cluster bootstrap: a replicate draws the raters and the
prompts with replacement (independently), and weighs every ranking by (draws of its rater) ×
(draws of its prompt), since one person's rankings, and one prompt's, are correlated. Every
statistic but alpha is recomputed per replicate: the linear ones (shares, mean ranks, win matrix,
Kendall's W) as matrix products of the weights with per-ranking quantities, Plackett–Luce by a
weighted I-LSR over the distinct orders, the exact iteration ``choix.ilsr_rankings`` runs on the
rankings repeated by their weights, without materialising the repeats. Intervals are percentiles.
Alpha gets no interval: duplicating a rater makes a rater who agrees with itself perfectly. A
replicate that draws no rankings of a criterion (possible in sparse designs) is left out of its
intervals and counted. Both criteria share each replicate's draws; everything is seeded.

Raters marked ``excluded`` (failed attention checks) are dropped unless ``include_excluded``; an
unfinished rater's rankings are kept. ``write_results`` writes results.json, CSV tables and the
user-study chart (``human_study.figure``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse
import scipy.stats

from human_study.errors import StudyError

PL_ALPHA = 0.01  # choix's regularisation: the prior transition rate of every pair of models
PL_TOL = 1e-8  # choix's default convergence tolerance
PL_MAX_ITER = 1000  # choix's default (100) can be short of convergence when one model nearly always wins
CHUNK = 64  # replicates whose ranking weights are held in memory at once
CRITERIA = ("quality", "alignment")
JUDGEMENT_COLUMNS = ("rater", "prompt", "position", "criterion", "model", "rank")
RATER_COLUMNS = ("rater", "excluded", "failed_checks", "n_checks", "finished")


@dataclass
class Rankings:
    """One criterion's rankings as arrays; row n is one ranking."""

    ranks: np.ndarray  # [n, K] mid-ranks, 1 = best
    order: np.ndarray  # [n, K] model indices best first, ties broken at random (Plackett–Luce input)
    rater: np.ndarray  # [n] index into the list of raters
    prompt: np.ndarray  # [n] index into the list of prompts


# ---- per-ranking quantities and the statistics made of their weighted sums


def ranking_features(ranks: np.ndarray) -> np.ndarray:
    """[n, 2K + K² + 2]: per ranking, its first-place credit per model, its ranks, its win matrix
    (flattened), its tie term Σ(t³ − t) over tie groups, and 1. Weighted sums of the rows give every
    linear statistic (``linear_stats``)."""
    n, k = ranks.shape
    first = ranks == ranks.min(axis=1, keepdims=True)
    first = first / first.sum(axis=1, keepdims=True)  # a tie for first splits the credit
    equal = ranks[:, :, None] == ranks[:, None, :]
    wins = (ranks[:, :, None] < ranks[:, None, :]) + 0.5 * equal
    # a tie group of t models has t members with t − 1 others each: Σ_members (t² − 1) = t³ − t
    ties = (equal.sum(axis=2) ** 2 - 1).sum(axis=1)
    return np.column_stack([first, ranks, wins.reshape(n, k * k), ties, np.ones(n)])


def linear_stats(sums: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Shares, mean ranks, win matrix and Kendall's W from weighted feature sums ([F] or [B, F])."""
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty replicate (m = 0) gives NaN
        m = sums[..., -1]
        rank_sums = sums[..., k:2 * k]
        win = sums[..., 2 * k:2 * k + k * k] / m[..., None]
        win = win.reshape(*win.shape[:-1], k, k)
        win[..., np.arange(k), np.arange(k)] = np.nan  # a model against itself: undefined
        spread = ((rank_sums - m[..., None] * (k + 1) / 2) ** 2).sum(axis=-1)
        denominator = m ** 2 * (k ** 3 - k) - m * sums[..., -2]
        kendall_w = np.where(denominator > 0, 12 * spread / np.where(denominator > 0, denominator, 1), np.nan)
        return {"first_place_share": sums[..., :k] / m[..., None], "mean_rank": rank_sums / m[..., None],
                "win_matrix": win, "kendall_w": kendall_w}


def fit_plackett_luce(orders: np.ndarray, counts: np.ndarray, k: int, alpha: float = PL_ALPHA) -> np.ndarray | None:
    """Log-strengths (mean 0) from distinct orders [U, K] (best first) seen ``counts`` [U] times:
    choix's I-LSR iteration, with each order's Markov-chain rates multiplied by its count, which is
    what ``choix.ilsr_rankings`` computes on the orders repeated ``counts`` times. None when it does
    not converge in ``PL_MAX_ITER`` iterations."""
    from choix.convergence import NormOfDifferenceTest
    from choix.utils import exp_transform, log_transform, statdist

    keep = counts > 0
    orders, counts = orders[keep], counts[keep]
    ahead, behind = np.triu_indices(k, 1)  # every pair of positions, the first ahead of the second
    cell = (orders[:, behind] * k + orders[:, ahead]).ravel()  # chain[loser, winner]
    converged = NormOfDifferenceTest(PL_TOL, order=1)
    params = None
    for _ in range(PL_MAX_ITER):
        weights = np.ones(k) if params is None else exp_transform(params)
        # the weight still to be placed at each position: the choice there was among those models
        left = np.cumsum(weights[orders][:, ::-1], axis=1)[:, ::-1]
        rates = (counts[:, None] / left)[:, ahead]
        chain = alpha + np.bincount(cell, rates.ravel(), minlength=k * k).reshape(k, k)
        chain -= np.diag(chain.sum(axis=1))
        try:
            params = log_transform(statdist(chain))
        except ValueError:  # no unique stationary distribution (only with alpha = 0)
            return None
        if converged(params):
            return params
    return None


def _plackett_luce_point(order: np.ndarray, k: int) -> np.ndarray | None:
    """``choix.ilsr_rankings`` on all rankings of a criterion; None when it does not converge."""
    import choix

    try:
        return choix.ilsr_rankings(k, order.tolist(), alpha=PL_ALPHA, max_iter=PL_MAX_ITER, tol=PL_TOL)
    except (RuntimeError, ValueError):
        return None


def _softmax(params: np.ndarray) -> np.ndarray:
    e = np.exp(params - params.max(axis=-1, keepdims=True))  # a NaN row (no fit) stays NaN
    return e / e.sum(axis=-1, keepdims=True)


def krippendorff_alpha(data: Rankings, n_raters: int, n_prompts: int, k: int) -> dict:
    """Ordinal Krippendorff's alpha over raters × (prompt, model) units of mid-ranks (see the module
    docstring), or null with the reason when no prompt has two raters."""
    import krippendorff

    units = (data.prompt[:, None] * k + np.arange(k)).ravel()
    raters = np.repeat(data.rater, k)
    total = np.zeros((n_raters, n_prompts * k))
    seen = np.zeros((n_raters, n_prompts * k))
    np.add.at(total, (raters, units), data.ranks.ravel())
    np.add.at(seen, (raters, units), 1.0)
    shared = (seen > 0).sum(axis=0) >= 2  # a unit two raters or more gave a value
    if not shared.any():
        return {"estimate": None, "level": "ordinal", "n_raters": 0, "n_units": 0,
                "reason": "no prompt was ranked by two or more raters"}
    with np.errstate(invalid="ignore"):
        matrix = (total / seen)[:, shared]
    matrix = matrix[~np.isnan(matrix).all(axis=1)]  # raters who share no prompt with anyone
    out = {"level": "ordinal", "n_raters": int(matrix.shape[0]), "n_units": int(matrix.shape[1])}
    if len(np.unique(matrix[~np.isnan(matrix)])) < 2:
        return {"estimate": None, **out, "reason": "every shared value is the same (all models tied)"}
    return {"estimate": float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")), **out}


# ---- the bootstrap


def bootstrap(data: dict[str, Rankings], n_raters: int, n_prompts: int, k: int, n_boot: int,
              rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Per criterion, every statistic's ``n_boot`` replicates of the two-way cluster bootstrap."""
    # draws with replacement, as counts: the multinomial is the count of each of n uniform draws
    rater_counts = rng.multinomial(n_raters, np.full(n_raters, 1 / n_raters), size=n_boot).astype(float)
    prompt_counts = rng.multinomial(n_prompts, np.full(n_prompts, 1 / n_prompts), size=n_boot).astype(float)
    out = {}
    for criterion, d in data.items():
        features = ranking_features(d.ranks)
        distinct, which = np.unique(d.order, axis=0, return_inverse=True)
        which = which.ravel()
        member = scipy.sparse.csr_matrix((np.ones(len(which)), (np.arange(len(which)), which)),
                                         shape=(len(which), len(distinct)))
        sums = np.empty((n_boot, features.shape[1]))
        order_counts = np.empty((n_boot, len(distinct)))
        for start in range(0, n_boot, CHUNK):
            block = slice(start, start + CHUNK)
            weights = rater_counts[block][:, d.rater] * prompt_counts[block][:, d.prompt]  # [b, n]
            sums[block] = weights @ features
            order_counts[block] = (member.T @ weights.T).T
        stats = linear_stats(sums, k)
        strengths = np.full((n_boot, k), np.nan)
        for b in range(n_boot):
            if sums[b, -1] > 0:
                fit = fit_plackett_luce(distinct, order_counts[b], k)
                strengths[b] = np.nan if fit is None else fit
        stats["log_strength"] = strengths
        stats["p_first"] = _softmax(strengths)
        stats["empty_replicates"] = int((sums[:, -1] == 0).sum())
        stats["failed_fits"] = int((sums[:, -1] > 0).sum() - (~np.isnan(strengths[:, 0])).sum())
        out[criterion] = stats
    return out


def _number(x) -> float | None:
    """A JSON number, or None for NaN (undefined)."""
    return float(x) if x is not None and math.isfinite(x) else None


def _interval(estimate, replicates: np.ndarray | None, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per entry of ``estimate`` over the finite replicates (NaN where none)."""
    estimate = np.asarray(estimate, dtype=float)
    if replicates is None:
        return np.full(estimate.shape, np.nan), np.full(estimate.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN entries: the win matrix's diagonal
        low, high = np.nanpercentile(replicates, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return low, high


def _per_model(models: list[str], estimate, replicates, level: float) -> dict:
    low, high = _interval(estimate, replicates, level)
    return {m: {"estimate": _number(estimate[i]) if estimate is not None else None,
                "ci_low": _number(low[i]), "ci_high": _number(high[i])} for i, m in enumerate(models)}


def _criterion_result(d: Rankings, reps: dict, models: list[str], n_raters: int, n_prompts: int,
                      level: float) -> dict:
    k = len(models)
    point = linear_stats(ranking_features(d.ranks).sum(axis=0), k)
    strengths = _plackett_luce_point(d.order, k)
    win_low, win_high = _interval(point["win_matrix"], reps["win_matrix"], level)
    w_low, w_high = _interval(point["kendall_w"], reps["kendall_w"], level)
    grid = lambda a: [[_number(v) for v in row] for row in a]
    return {
        "n_rankings": len(d.ranks),
        "n_raters": len(np.unique(d.rater)),
        "n_prompts": len(np.unique(d.prompt)),
        "first_place_share": _per_model(models, point["first_place_share"], reps["first_place_share"], level),
        "mean_rank": _per_model(models, point["mean_rank"], reps["mean_rank"], level),
        "plackett_luce": {
            "log_strength": _per_model(models, strengths, reps["log_strength"], level),
            "p_first": _per_model(models, None if strengths is None else _softmax(strengths), reps["p_first"], level),
            **({} if strengths is not None else {"reason": f"choix did not converge in {PL_MAX_ITER} iterations"}),
        },
        "win_matrix": {"models": models, "share": grid(point["win_matrix"]),
                       "ci_low": grid(win_low), "ci_high": grid(win_high)},
        "agreement": {
            "kendall_w": {"estimate": _number(point["kendall_w"]), "ci_low": _number(w_low),
                          "ci_high": _number(w_high), "n_rankings": len(d.ranks)},
            "krippendorff_alpha": krippendorff_alpha(d, n_raters, n_prompts, k),
        },
        "bootstrap": {"empty_replicates": reps["empty_replicates"], "failed_plackett_luce_fits": reps["failed_fits"]},
    }


# ---- reading the input contract


def _columns(frame, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise StudyError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StudyError(f"{name} lacks the column(s) {', '.join(missing)} (it needs {', '.join(columns)})")
    return frame.loc[:, list(columns)].copy()


def check_models(models) -> list[str]:
    """The study's model names as a list: at least two, distinct, non-empty strings."""
    if isinstance(models, str) or not hasattr(models, "__iter__"):
        raise StudyError(f"models must be a list of model names, got {models!r}")
    models = list(models)
    if len(models) < 2 or not all(isinstance(m, str) and m for m in models):
        raise StudyError(f"models must be at least two non-empty names, got {models!r}")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise StudyError(f"models lists {', '.join(twice)} more than once")
    return models


def _where(row) -> str:
    return f"rater {row['rater']!r}, position {row['position']}, criterion {row['criterion']!r}"


def read_rankings(judgements, raters, models: list[str], include_excluded: bool):
    """The rankings per criterion as arrays ({criterion: {"rank": [n, K], "rater": [n], "prompt": [n]}},
    rows in (rater, position) order; rater and prompt are indices into the sorted id lists returned
    with them), and the counts of raters and rankings; StudyError names what breaks the contract."""
    j = _columns(judgements, "judgements", JUDGEMENT_COLUMNS)
    r = _columns(raters, "raters", RATER_COLUMNS)
    k = len(models)
    j["rater"], r["rater"] = j["rater"].astype(str), r["rater"].astype(str)
    for col in ("excluded", "finished"):
        bad = ~r[col].isin([True, False])
        if bad.any():
            raise StudyError(f"raters column {col} must be True or False; rater {r['rater'][bad].iloc[0]!r} "
                             f"has {r[col][bad].iloc[0]!r}")
    if r["rater"].duplicated().any():
        raise StudyError(f"raters lists rater {r['rater'][r['rater'].duplicated()].iloc[0]!r} twice")
    unknown = sorted(set(j["rater"]) - set(r["rater"]))
    if unknown:
        raise StudyError(f"judgements name {len(unknown)} rater(s) missing from raters (e.g. {unknown[0]!r}), "
                         "so whether they were excluded is unknown")
    for col, allowed in (("criterion", CRITERIA), ("model", models)):
        bad = ~j[col].isin(allowed)
        if bad.any():
            raise StudyError(f"judgements column {col} has {sorted(set(map(str, j[col][bad])))[:5]}, "
                             f"not one of {', '.join(allowed)}")
    for col in ("prompt", "position"):
        values = pd.to_numeric(j[col], errors="coerce")
        bad = values.isna() | (values != np.floor(values))
        if bad.any():
            raise StudyError(f"judgements column {col} must hold whole numbers; {_where(j[bad].iloc[0])} "
                             f"has {j[col][bad].iloc[0]!r}")
        j[col] = values.astype(np.int64)
    rank = pd.to_numeric(j["rank"], errors="coerce")
    bad = ~((rank >= 1) & (rank <= k))  # NaN and text fail both comparisons
    if bad.any():
        row = j[bad].iloc[0]
        raise StudyError(f"rank must be a number from 1 to {k} (the number of models; 1 = best): "
                         f"{_where(row)}, model {row['model']!r} has rank {row['rank']!r}")
    j["rank"] = rank.astype(float)

    key = ["criterion", "rater", "position"]
    excluded = set(r["rater"][r["excluded"].astype(bool)])
    dropped = j["rater"].isin(excluded) & (not include_excluded)
    counts = {"raters": len(r), "finished": int(r["finished"].astype(bool).sum()), "excluded": len(excluded),
              "raters_with_judgements": int(j["rater"].nunique()), "excluded_rows_dropped": int(dropped.sum()),
              "excluded_rankings_dropped": len(j[dropped].drop_duplicates(key))}
    j = j[~dropped]
    if j.empty:
        raise StudyError("no rankings remain to analyse: " + (
            f"all {counts['raters_with_judgements']} raters with judgements are excluded "
            "(include_excluded=True keeps them)" if dropped.any() else "judgements has no rows"))
    twice = j.duplicated(key + ["model"])
    if twice.any():
        row = j[twice].iloc[0]
        raise StudyError(f"ranking ({_where(row)}) lists model {row['model']!r} twice")
    group = j.groupby(key, sort=True).ngroup().to_numpy()  # ranking index, in (criterion, rater, position) order
    sizes = np.bincount(group)
    if (sizes != k).any():
        rows = j[group == int(np.argmax(sizes != k))]
        missing = [m for m in models if m not in set(rows["model"])]
        raise StudyError(f"ranking ({_where(rows.iloc[0])}) misses model(s) {', '.join(missing)}: "
                         f"every ranking must rank all {k} models of the study")
    spans = j.groupby(group)["prompt"].nunique().to_numpy()
    if (spans > 1).any():
        rows = j[group == int(np.argmax(spans > 1))]
        raise StudyError(f"ranking ({_where(rows.iloc[0])}) spans prompts {sorted(set(rows['prompt']))}; "
                         "one ranking is of one prompt")

    rater_ids, prompt_ids = np.array(sorted(j["rater"].unique())), np.array(sorted(j["prompt"].unique()))
    first = np.unique(group, return_index=True)[1]  # each ranking's first row
    rank = np.empty((len(first), k))
    rank[group, pd.Categorical(j["model"], categories=models).codes] = j["rank"].to_numpy()
    criterion = j["criterion"].to_numpy()[first]
    rater = np.searchsorted(rater_ids, j["rater"].to_numpy()[first])
    prompt = np.searchsorted(prompt_ids, j["prompt"].to_numpy()[first])
    table = {c: {"rank": rank[criterion == c], "rater": rater[criterion == c], "prompt": prompt[criterion == c]}
             for c in CRITERIA if (criterion == c).any()}
    counts.update(raters_used=len(rater_ids), prompts=len(prompt_ids), models=k,
                  rankings={c: len(t["rank"]) for c, t in table.items()})
    return table, counts, rater_ids, prompt_ids


def _check_options(n_boot, seed, level) -> None:
    whole = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not whole(n_boot) or n_boot < 1:
        raise StudyError(f"n_boot must be a whole number of at least 1 (bootstrap replicates), got {n_boot!r}")
    if not whole(seed) or seed < 0:
        raise StudyError(f"seed must be a whole number of at least 0, got {seed!r}")
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 < level < 1:
        raise StudyError(f"level must be a number above 0 and below 1 (e.g. 0.95 for 95% intervals), got {level!r}")


def aggregate(judgements: pd.DataFrame, raters: pd.DataFrame, models: list[str], *, n_boot: int = 1000,
              seed: int = 0, include_excluded: bool = False, level: float = 0.95) -> dict:
    """The study's results as a JSON-able dict (see the module docstring): settings, counts, and per
    criterion first-place shares, mean ranks, Plackett–Luce strengths, the win matrix and agreement,
    each with percentile intervals of the two-way (raters × prompts) bootstrap. Seeded: the same
    inputs give the same output. StudyError names what is wrong with the input."""
    _check_options(n_boot, seed, level)
    models = check_models(models)
    k = len(models)
    tie_rng, boot_rng = (np.random.default_rng([seed, stream]) for stream in (1, 2))
    table, counts, rater_ids, prompt_ids = read_rankings(judgements, raters, models, include_excluded)

    data = {}
    for criterion, rows in table.items():
        ranks = scipy.stats.rankdata(rows["rank"], method="average", axis=1)  # mid-ranks, whatever the convention
        # best first; among tied models a random key decides (lexsort's last key is the primary one)
        order = np.lexsort((tie_rng.random(ranks.shape), ranks), axis=1)
        data[criterion] = Rankings(ranks, order, rows["rater"], rows["prompt"])
    reps = bootstrap(data, len(rater_ids), len(prompt_ids), k, n_boot, boot_rng)
    return {
        "models": models,
        "settings": {
            "n_boot": n_boot, "seed": seed, "level": level, "include_excluded": bool(include_excluded),
            "bootstrap": "two-way cluster (raters and prompts drawn with replacement), percentile intervals",
            "ties": "mid-ranks for shares, mean ranks, win matrix and agreement; "
                    "broken uniformly at random (seeded) for Plackett-Luce",
            "plackett_luce": {"fit": "choix.ilsr_rankings", "alpha": PL_ALPHA, "tol": PL_TOL, "max_iter": PL_MAX_ITER},
            "krippendorff_alpha": "ordinal, raters x (prompt, model) units of mid-ranks; no interval",
        },
        "counts": counts,
        "criteria": {c: _criterion_result(data[c], reps[c], models, len(rater_ids), len(prompt_ids), level)
                     for c in data},
    }


def write_results(result: dict, out_dir: str | os.PathLike) -> list[Path]:
    """results.json, the CSV tables and user_study.png/.svg in ``out_dir`` (created), each written
    atomically; returns their paths."""
    from human_study.figure import write_figure, write_tables

    if not isinstance(result, dict) or not {"models", "criteria"} <= set(result):
        raise StudyError("write_results needs the dict aggregate() returns (with 'models' and 'criteria')")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StudyError(f"out_dir {out} is a file, not a folder; give a folder path")
    out.mkdir(parents=True, exist_ok=True)
    return write_tables(result, out) + write_figure(result, out)
