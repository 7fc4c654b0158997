"""Paired comparisons of two models scored on the same T2I-CompBench prompts.

**Pairing.** A run's ``results.json`` records its seeds in ``protocol["seeds"]`` (the seed of image
k of every prompt, k = 0..n−1) with ``protocol["seeds_evidence"]`` saying where the list comes from;
older files, or runs whose seeds are not known, have ``"unknown"`` (or no ``seeds`` at all). When
both runs record the same list, their ``per_image.csv`` rows are matched on category, prompt and
file (the file name carries the image's index, so one index is one seed) and a prompt's difference
is the mean over its matched images of A's score minus B's ("paired by image"). Otherwise the
images of one index need not share a seed, and a prompt's difference is A's mean over its images of
that prompt minus B's ("paired by prompt means"). Either way prompt difficulty, shared by both
models, cancels out of the per-prompt differences. A seeds list that is assumed rather than read
from the images (``--assume-official-seeds``) is named in a footnote.

**Verdict.** Per category, over the n prompts both runs scored: the mean difference A − B, its 95%
percentile bootstrap CI over prompts, and the p-value of the exact sign-flip permutation test of
the per-prompt differences (``bench.stats.sign_flip_test``: all 2^n sign patterns up to n = 20,
seeded Monte Carlo above), Holm-adjusted across the categories compared for one pair of runs
(``bench.stats.holm``). A row says "A higher" or "B higher" only with at least ``MIN_PROMPTS``
prompts, the CI excluding 0 and the Holm-adjusted p at most ``ALPHA``; with fewer prompts it says
so and claims nothing (a percentile bootstrap over a handful of prompts is far too narrow: three
prompts of one sign exclude 0 whatever their spread, while the exact test gives p = 0.25).

Pairs of runs with other images per prompt, and categories scored with different metrics, are not
compared (a footnote says why).
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from bench.compbench.protocol import ASSUMED, GENERATED, MANIFEST_CHECKED, UNKNOWN
from bench.compbench.published import COLUMN_NAMES
from bench.stats import EXACT_MAX, N_BOOT, N_FLIPS, holm, paired_bootstrap
from reports.provenance import files_note
from reports.tables import Table

MIN_PROMPTS = 20  # fewer prompts in a category: no verdict
ALPHA = 0.05  # a verdict needs the Holm-adjusted p at most this (and the 95% CI to exclude 0)
KEYS = ["category", "prompt", "file"]
EVIDENCE = (GENERATED, MANIFEST_CHECKED, ASSUMED)  # protocol["seeds_evidence"] of a seeds list on record; else unknown
BY_IMAGE, BY_PROMPT = "image (same seeds)", "prompt means"
COLUMNS = ["A", "B", "category", "paired by", "prompts", "images (A / B)", "A − B", "95% CI", "p", "p (Holm)",
           "verdict"]
DATA_COLUMNS = ["model_a", "model_b", "category", "paired_by", "prompts", "images_a", "images_b", "difference",
                "ci_low", "ci_high", "p_value", "p_holm", "verdict"]


def seeds_of(entry) -> tuple[list[int] | None, str]:
    """A run's seeds list (None when not on record) and its evidence, from ``protocol``."""
    protocol = entry.data["protocol"]
    seeds, evidence = protocol.get("seeds", UNKNOWN), protocol.get("seeds_evidence", UNKNOWN)
    on_record = (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)
                 and evidence in EVIDENCE)
    return (list(seeds), evidence) if on_record else (None, UNKNOWN)


def assumed(entry) -> bool:
    """Whether a run's seeds list (or part of it, for some categories) is an assumption."""
    protocol = entry.data["protocol"]
    return protocol.get("seeds_evidence") == ASSUMED or any(
        "--assume-official-seeds" in str(a) for a in protocol.get("assumptions") or [])


def pairing(ea, eb) -> str:
    """How two runs are paired: ``BY_IMAGE`` when both record the same seeds, else ``BY_PROMPT`` with why."""
    (sa, _), (sb, _) = seeds_of(ea), seeds_of(eb)
    if sa is not None and sa == sb:
        return BY_IMAGE
    return f"{BY_PROMPT} ({'other seeds' if sa is not None and sb is not None else 'seeds unknown'})"


def per_prompt(a: pd.DataFrame, b: pd.DataFrame, category: str, by_image: bool) -> tuple[pd.DataFrame, tuple]:
    """Per prompt both runs scored in ``category`` (sorted by prompt): A's and B's mean score and image
    counts; and the metrics of the rows used (A's, B's)."""
    a, b = a[a["category"] == category], b[b["category"] == category]
    if by_image:
        pairs = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
        out = pairs.groupby("prompt").agg(score_a=("score_a", "mean"), score_b=("score_b", "mean"),
                                          images_a=("score_a", "size"), images_b=("score_b", "size"))
        return out.reset_index(), (set(pairs["metric_a"]), set(pairs["metric_b"]))
    mean = lambda df: df.groupby("prompt")["score"].agg(["mean", "size"])
    out = mean(a).merge(mean(b), left_index=True, right_index=True, suffixes=("_a", "_b")).sort_index().rename(
        columns={"mean_a": "score_a", "mean_b": "score_b", "size_a": "images_a", "size_b": "images_b"})
    used = lambda df: set(df.loc[df["prompt"].isin(out.index), "metric"])
    return out.reset_index(), (used(a), used(b))


def compare(a: pd.DataFrame, b: pd.DataFrame, category: str, by_image: bool = True) -> dict | None:
    """The paired comparison of two runs' per-image scores in one category (None: no prompt in common);
    ``p_value`` is the sign-flip test's, before Holm's adjustment."""
    prompts, metrics = per_prompt(a, b, category, by_image)
    if prompts.empty:
        return None
    result = paired_bootstrap(prompts["score_a"], prompts["score_b"])
    return {"prompts": result.n, "images_a": int(prompts["images_a"].sum()), "images_b": int(prompts["images_b"].sum()),
            "difference": result.difference, "ci_low": result.ci[0], "ci_high": result.ci[1],
            "p_value": result.p_value, "metrics": metrics}


def verdict(row: dict, a: str, b: str) -> str:
    """The rule of the module docstring, on a row with ``prompts``, the CI and ``p_holm``."""
    if row["prompts"] < MIN_PROMPTS:
        return f"too few prompts (n < {MIN_PROMPTS})"
    if row["p_holm"] <= ALPHA and row["ci_low"] > 0:
        return f"{a} higher"
    if row["p_holm"] <= ALPHA and row["ci_high"] < 0:
        return f"{b} higher"
    return "no clear difference"


def compare_runs(ea, eb) -> tuple[list[dict], list[str]]:
    """The rows of one pair of runs (Holm-adjusted across them, with verdicts) and why anything was skipped."""
    pa, pb = ea.data["protocol"], eb.data["protocol"]
    if pa.get("images_per_prompt") != pb.get("images_per_prompt"):
        return [], [f"{ea.model} vs {eb.model}: other images per prompt ({pa.get('images_per_prompt')} vs "
                    f"{pb.get('images_per_prompt')}): means over unequal numbers of images are not exchangeable, as the "
                    "sign-flip test needs"]
    paired_by = pairing(ea, eb)
    shared = set(ea.per_image["category"]) & set(eb.per_image["category"])
    rows, skipped, empty = [], [], []
    for category in [c for c in COLUMN_NAMES if c in shared]:
        row = compare(ea.per_image, eb.per_image, category, by_image=paired_by == BY_IMAGE)
        if row is None:
            empty.append(category)
            continue
        metrics = row.pop("metrics")
        if metrics[0] != metrics[1]:
            skipped.append(f"{ea.model} vs {eb.model}, {category}: other metrics "
                           f"({', '.join(sorted(metrics[0]))} vs {', '.join(sorted(metrics[1]))})")
            continue
        rows.append({"model_a": ea.model, "model_b": eb.model, "category": category, "paired_by": paired_by, **row})
    unit = "image" if paired_by == BY_IMAGE else "prompt"
    if empty and not rows and not skipped:
        skipped.insert(0, f"{ea.model} vs {eb.model}: no {unit} in common")
    else:
        skipped[:0] = [f"{ea.model} vs {eb.model}, {c}: no {unit} in common" for c in empty]
    for row, p in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = p
        row["verdict"] = verdict(row, ea.model, eb.model)
    return rows, skipped


def notes_for(data: pd.DataFrame, runs) -> list[str]:
    notes = []
    if (data["paired_by"] == BY_IMAGE).any():
        notes.append("Paired by image: both runs record the same seeds, so images matched on category, prompt and "
                     "file (hence index and seed) are compared.")
    if (data["paired_by"] != BY_IMAGE).any():
        notes.append("Paired by prompt means: a run's seeds are unknown (or the runs used other seeds), so images of "
                     "one index need not share a seed; each prompt's mean over a run's images is compared instead.")
    by_image = data[data["paired_by"] == BY_IMAGE]
    for run in runs:
        seeds, _ = seeds_of(run)
        if seeds is not None and assumed(run) and run.model in set(by_image["model_a"]) | set(by_image["model_b"]):
            notes.append(f"The seeds of {run.model} ({', '.join(map(str, seeds))}) are assumed "
                         "(--assume-official-seeds), not read from its images: pairing it by image rests on that "
                         "assumption.")
    notes.append(f"A − B: the mean over prompts of the per-prompt difference; 95% CI: percentile bootstrap over prompts "
                 f"({N_BOOT:,} resamples); p: two-sided sign-flip permutation test of the per-prompt differences "
                 f"(exact over all 2^n sign patterns for n ≤ {EXACT_MAX} prompts, else {N_FLIPS:,} random patterns "
                 f"with p = (b + 1)/(m + 1)); p (Holm): p adjusted by Holm's method across the categories of one pair "
                 f"of runs. A verdict needs at least {MIN_PROMPTS} prompts, the CI to exclude 0 and p (Holm) ≤ "
                 f"{ALPHA:g}.")
    return notes


def paired_table(entries) -> Table | None:
    """A row per pair of runs (in order) and shared category; None when fewer than two runs have
    per-image scores."""
    runs = [e for e in entries if e.per_image is not None]
    if len(runs) < 2:
        return None
    data, skipped = [], []
    for ea, eb in combinations(runs, 2):
        rows, why = compare_runs(ea, eb)
        data += rows
        skipped += why
    data = pd.DataFrame(data, columns=DATA_COLUMNS)
    shown = pd.DataFrame([{"A": r.model_a, "B": r.model_b, "category": COLUMN_NAMES[r.category],
                           "paired by": r.paired_by, "prompts": f"{r.prompts:,}",
                           "images (A / B)": f"{r.images_a:,} / {r.images_b:,}", "A − B": f"{r.difference:+.4f}",
                           "95% CI": f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]", "p": f"{r.p_value:.3g}",
                           "p (Holm)": f"{r.p_holm:.3g}", "verdict": r.verdict} for r in data.itertuples()],
                         columns=COLUMNS)
    notes = notes_for(data, runs) + [files_note(runs)] + [f"Not compared: {s}." for s in skipped]
    return Table("compbench_paired", "T2I-CompBench: paired differences", shown, notes, data=data)
