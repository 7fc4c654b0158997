"""Each claim's summary: the difference between arms across seeds, and the verdict rule.

Inputs are the evaluation curves, ``curves[arm][seed]`` = the list of evaluation records (one per
evaluated step, ascending). A comparison (``bench.ablate.arms.Comparison``) reads each metric per
seed, at the last evaluation (``at="final"``) or as the mean over the evaluations (``at="mean"``,
the area under the curve: a model that gets there faster has the larger mean), and pairs the two
arms by seed: seed s of both arms shares its data order, noise and (where the arms have the same
shapes) initial weights. ``bench.stats.paired_bootstrap`` over the seeds gives the mean
difference (a − b) and its 95% CI; beside it stands the Student-t 95% interval of the per-seed
differences (``t_ci95``). With a handful of seeds the percentile bootstrap is too narrow (3 seeds
that share a sign give a CI from the smallest to the largest difference, whatever their spread),
so a verdict needs the union of the two intervals (``decision_ci95``) on one side of its bound.

**The verdict rule.** Per decisive metric, with the difference oriented so that positive favours
the arm the paper prefers (a − b for higher-is-better metrics, b − a for losses and FID), and CI
meaning the decision interval above:

- superiority: *held* when the CI's lower end is above 0; *did not hold* when its upper end is
  below 0; otherwise *inconclusive*;
- non-inferiority within a margin δ (``MARGINS``: 0.05 for oracle scores and colour recall, 2% of
  the other arm's mean for losses, 10% for world-FID and text gain): *held* when the CI's lower
  end is above −δ; *did not hold* when its upper end is below −δ; otherwise *inconclusive*;
- a metric with no spread at all (every value of both arms equal, e.g. every oracle score 0 at
  the start of training) or fewer than 2 seeds is *inconclusive*.

A comparison *held* when at least one decisive metric held and none did not hold; it *did not
hold* when at least one did not hold and none held; otherwise (none decided, or they disagree) it
is *inconclusive at this scale*. With 2 seeds the t-interval is 12.7 standard errors wide on each
side, so 2 seeds decide only differences far larger than their spread; more seeds narrow it.
"""

from __future__ import annotations

import math

import numpy as np

from bench.ablate.arms import CLAIMS, Comparison
from bench.stats import paired_bootstrap

HELD, NOT_HELD, INCONCLUSIVE = "held", "did not hold", "inconclusive at this scale"
HIGHER_IS_BETTER = {"oracle", "oracle_single", "oracle_color", "oracle_texture", "oracle_spatial", "binding_spatial",
                    "colour_recall", "text_gain"}
# non-inferiority margins: ("abs", δ) in the metric's units, or ("rel", f): f × the other arm's mean
MARGINS = {"oracle": ("abs", 0.05), "binding_spatial": ("abs", 0.05), "colour_recall": ("abs", 0.05),
           "val_mse": ("rel", 0.02), "train_loss": ("rel", 0.02), "world_fid": ("rel", 0.10),
           "text_gain": ("rel", 0.10)}


def per_seed(curves: dict, arm: str, metric: str, at: str) -> dict[int, float]:
    """``metric`` of every seed of ``arm`` that has evaluations: the last one's, or their mean."""
    values = {}
    for seed, records in curves.get(arm, {}).items():
        series = [r[metric] for r in records if r.get(metric) is not None and not math.isnan(r[metric])]
        if series and len(series) == len(records):
            values[int(seed)] = float(series[-1] if at == "final" else np.mean(series))
    return values


def margin_of(metric: str, b_mean: float) -> float:
    kind, value = MARGINS.get(metric, ("abs", 0.0))
    return value * abs(b_mean) if kind == "rel" else value


def t_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The Student-t interval of the mean of the per-seed differences ``d`` (n ≥ 2)."""
    from scipy import stats

    half = stats.t.ppf((1 + level) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


def metric_verdict(kind: str, metric: str, a: list[float], b: list[float]) -> dict:
    """The difference a − b across paired seeds, its CIs and (``kind`` given) the verdict of the rule."""
    out = {"a_mean": float(np.mean(a)) if a else None, "b_mean": float(np.mean(b)) if b else None, "n_seeds": len(a)}
    if len(a) < 2:
        return {**out, "difference": None, "ci95": None, "p_value": None,
                "verdict": INCONCLUSIVE, "why": f"{len(a)} paired seed(s): a CI needs at least 2"}
    paired = paired_bootstrap(a, b)
    t_lo, t_hi = t_interval(np.asarray(a) - np.asarray(b))
    decision = (min(paired.ci[0], t_lo), max(paired.ci[1], t_hi))
    out.update(difference=paired.difference, ci95=list(paired.ci), p_value=paired.p_value, t_ci95=[t_lo, t_hi],
               decision_ci95=list(decision))
    if kind is None:
        return out
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0
    lo, hi = sorted((sign * decision[0], sign * decision[1]))
    if len(set(a) | set(b)) == 1:
        return {**out, "verdict": INCONCLUSIVE, "why": f"no spread: every value of both arms is {a[0]:g}"}
    delta = margin_of(metric, out["b_mean"]) if kind == "non-inferiority" else 0.0
    out["margin"] = delta if kind == "non-inferiority" else None
    if lo > -delta:
        verdict = HELD
    elif hi < -delta:
        verdict = NOT_HELD
    else:
        verdict = INCONCLUSIVE
    better = "higher" if sign > 0 else "lower"
    bound = f"-{delta:.4g}" if delta else "0"
    why = f"CI of the advantage ({better} is better) [{lo:.4g}, {hi:.4g}] against {bound}"
    return {**out, "verdict": verdict, "why": why}


def combine(verdicts: list[str]) -> str:
    """The comparison's verdict from its decisive metrics' (see the module's rule)."""
    if HELD in verdicts and NOT_HELD not in verdicts:
        return HELD
    if NOT_HELD in verdicts and HELD not in verdicts:
        return NOT_HELD
    return INCONCLUSIVE


def compare(curves: dict, comp: Comparison, report: tuple = ()) -> dict:
    """One comparison's record: per metric the arms' means, the paired difference and CI; the verdict."""
    metrics = {}
    for metric in (*comp.decisive, *[m for m in report if m not in comp.decisive]):
        va, vb = per_seed(curves, comp.a, metric, comp.at), per_seed(curves, comp.b, metric, comp.at)
        seeds = sorted(set(va) & set(vb))
        kind = comp.kind if metric in comp.decisive else None
        metrics[metric] = metric_verdict(kind, metric, [va[s] for s in seeds], [vb[s] for s in seeds])
        metrics[metric]["decisive"] = metric in comp.decisive
    verdict = combine([metrics[m]["verdict"] for m in comp.decisive])
    return {"name": comp.name, "a": comp.a, "b": comp.b, "kind": comp.kind, "at": comp.at, "question": comp.question,
            "metrics": metrics, "verdict": verdict}


def summarise(curves: dict, claims: list[int], costs: dict | None = None) -> dict:
    """Every chosen claim's comparisons and verdict (the first comparison's: the claim's own question);
    ``costs`` (arm → parameters, seconds per step, memory) is attached to claim 1."""
    out = {}
    for number in claims:
        claim = CLAIMS[number]
        comparisons = [compare(curves, comp, claim.report) for comp in claim.comparisons]
        out[str(number)] = {"title": claim.title, "verdict": comparisons[0]["verdict"], "comparisons": comparisons}
        if number == 1 and costs:
            out[str(number)]["cost"] = {arm: costs[arm] for arm in ("base", "block") if arm in costs}
    return out
