"""Simulated raters for the study's analysis: Plackett–Luce rankings drawn from known strengths.

``simulate_judgements`` writes the same two tables the study app stores (the input contract of
``human_study.aggregate``): one judgements row per (ranking, model) and one raters row per rater.
Tests use it to check that the analysis recovers what was put in; load benchmarks use it to make
studies of any size.

The design, per rater: ``prompts_per_rater`` distinct prompts drawn at random from ``n_prompts``, shown
in a random order (``position`` 0, 1, ...); each shown prompt gets one ranking per criterion of all K
models. A ranking is drawn from the Plackett–Luce model by sequential choice: the best model is
picked with probabilities softmax(log-strengths), then the best of the rest with the softmax over
what is left, and so on. The sampler is written here with numpy, independently of ``choix`` (whose
estimator it is meant to test), and draws all rankings of a criterion at once.

- ``noise``: each rater's log-strengths are the true ones plus Gaussian noise of this standard
  deviation (one draw per rater, model and criterion), so raters disagree with each other
  systematically, as real ones do; 0 makes every rater a pure Plackett–Luce sampler of the truth.
- ``tie_prob``: each pair of neighbours in a drawn order is declared tied with this probability;
  tied models share the best rank of their group ("1, 1, 3, 4"), as the study app records ties.
- ``n_spammers``: the first raters rank uniformly at random and are marked ``excluded`` with two of
  four attention checks failed, the way the app flags raters who fail attention checks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from human_study.errors import StudyError

CRITERIA = ("quality", "alignment")
N_CHECKS = 4  # attention checks each simulated rater saw
SPAMMER_FAILED_CHECKS = 2  # what a spammer failed (two failures exclude a rater)


def sample_plackett_luce(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Orders [n, K] of model indices, best first, one per row of log-strengths ``logits`` [n, K],
    by sequential choice: each step picks among the models not yet placed with softmax weights."""
    n, k = logits.shape
    # shifting each row by its maximum changes no softmax and keeps exp() finite
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    remaining = np.ones((n, k), dtype=bool)
    order = np.empty((n, k), dtype=np.int64)
    rows = np.arange(n)
    for step in range(k):
        w = np.where(remaining, weights, 0.0)
        cdf = np.cumsum(w, axis=1)
        u = rng.random(n) * cdf[:, -1]
        # the first model whose cumulative weight exceeds u; a placed model adds no weight, so it is
        # never picked; min() guards the last index against rounding
        pick = np.minimum((cdf <= u[:, None]).sum(axis=1), k - 1)
        order[:, step] = pick
        remaining[rows, pick] = False
    return order


def _ranks_with_ties(order: np.ndarray, tie_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Ranks [n, K] per model (1 = best) of the orders [n, K]; neighbours tie with ``tie_prob`` and a
    tied group shares the best rank in it (competition ranking)."""
    n, k = order.shape
    tied = np.zeros((n, k), dtype=bool)
    if tie_prob > 0:
        tied[:, 1:] = rng.random((n, k - 1)) < tie_prob
    # the position that starts each one's tie group: its own unless tied to the one before
    starts = np.maximum.accumulate(np.where(tied, 0, np.arange(k)), axis=1)
    ranks = np.empty((n, k))
    ranks[np.arange(n)[:, None], order] = starts + 1.0
    return ranks


def _check_strengths(strengths, criteria) -> tuple[list[str], dict[str, np.ndarray]]:
    """The model names and one log-strength vector per criterion; ``strengths`` is {model: value}
    (the same for every criterion) or {criterion: {model: value}}."""
    if not isinstance(strengths, dict) or not strengths:
        raise StudyError("strengths must be a non-empty dict {model: log-strength} "
                         "or {criterion: {model: log-strength}}")
    per = strengths if all(isinstance(v, dict) for v in strengths.values()) else {c: strengths for c in criteria}
    missing = [c for c in criteria if c not in per]
    if missing:
        raise StudyError(f"strengths has no entry for criterion {', '.join(missing)}")
    models = list(per[criteria[0]])
    out = {}
    for c in criteria:
        if list(per[c]) != models:
            raise StudyError(f"strengths for {c} name models {list(per[c])}, expected {models} as for {criteria[0]}")
        values = np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
                           for v in per[c].values()], dtype=float)
        if not np.isfinite(values).all():
            raise StudyError(f"strengths for {c} must be finite numbers, got {per[c]}")
        out[c] = values
    if len(models) < 2:
        raise StudyError(f"strengths must name at least 2 models to rank, got {models}")
    return models, out


def _check_count(name: str, value, low: int, high: int | None = None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise StudyError(f"{name} must be a whole number {bounds}, got {value!r}")


def simulate_judgements(strengths: dict, n_raters: int, n_prompts: int, prompts_per_rater: int, *,
                        seed: int = 0, tie_prob: float = 0.0, noise: float = 0.0,
                        criteria: tuple[str, ...] = CRITERIA,
                        n_spammers: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judgements and raters of a simulated study (see the module docstring); seeded.

    ``strengths``: {model: log-strength}, or {criterion: {model: log-strength}} for criteria that
    disagree. Returns (judgements with columns rater, prompt, position, criterion, model, rank;
    raters with columns rater, excluded, failed_checks, n_checks, finished)."""
    criteria = tuple(criteria)
    if not criteria or any(c not in CRITERIA for c in criteria) or len(set(criteria)) != len(criteria):
        raise StudyError(f"criteria must be distinct names among {', '.join(CRITERIA)}, got {criteria!r}")
    models, logs = _check_strengths(strengths, criteria)
    _check_count("n_raters", n_raters, 1)
    _check_count("n_prompts", n_prompts, 1)
    _check_count("prompts_per_rater", prompts_per_rater, 1, n_prompts)
    _check_count("n_spammers", n_spammers, 0, n_raters)
    for name, value in (("tie_prob", tie_prob), ("noise", noise)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
            raise StudyError(f"{name} must be a number of at least 0, got {value!r}")
    if tie_prob > 1:
        raise StudyError(f"tie_prob must be a probability from 0 to 1, got {tie_prob!r}")

    rng = np.random.default_rng(seed)
    k = len(models)
    names = np.array([f"r{i:0{len(str(n_raters - 1))}d}" for i in range(n_raters)])
    # each rater's prompts: the first prompts_per_rater of a random permutation, in that order
    shown = np.argsort(rng.random((n_raters, n_prompts)), axis=1)[:, :prompts_per_rater]
    rater = np.repeat(np.arange(n_raters), prompts_per_rater)  # one entry per (rater, position)
    position = np.tile(np.arange(prompts_per_rater), n_raters)
    spammer = rater < n_spammers

    frames = []
    for c in criteria:
        offsets = noise * rng.standard_normal((n_raters, k))  # each rater's own view of the models
        logits = logs[c][None, :] + offsets[rater]
        logits[spammer] = 0.0  # a spammer ranks uniformly at random
        ranks = _ranks_with_ties(sample_plackett_luce(logits, rng), tie_prob, rng)
        frames.append(pd.DataFrame({
            "rater": np.repeat(names[rater], k),
            "prompt": np.repeat(shown.ravel(), k),
            "position": np.repeat(position, k),
            "criterion": c,
            "model": np.tile(models, len(rater)),
            "rank": ranks.ravel(),
        }))
    judgements = pd.concat(frames, ignore_index=True)
    is_spammer = np.arange(n_raters) < n_spammers
    raters = pd.DataFrame({
        "rater": names,
        "excluded": is_spammer,
        "failed_checks": np.where(is_spammer, SPAMMER_FAILED_CHECKS, 0),
        "n_checks": N_CHECKS,
        "finished": True,
    })
    return judgements, raters
