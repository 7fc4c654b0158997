"""Paired comparisons of two models scored on the same T2I-CompBench prompts and seeds.

Two runs' ``per_image.csv`` rows are matched on category, prompt and file (the file name carries the
image's index, and with the same protocol seed the same index is the same seed). The difference of
the two models' scores gets a paired bootstrap CI over prompts (``bench.stats.paired_bootstrap_by_group``):
prompt difficulty is shared by both models and cancels, so the CI says whether a gap is real. Pairs of
runs with different protocol seeds or images per prompt, and categories scored with different metrics,
are not compared (a footnote says why).
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from bench.compbench.published import COLUMN_NAMES
from bench.stats import paired_bootstrap_by_group
from reports.provenance import files_note
from reports.tables import Table

KEYS = ["category", "prompt", "file"]


def compare(a: pd.DataFrame, b: pd.DataFrame, category: str) -> dict | None:
    """The paired comparison of two runs' per-image scores in one category (None: no shared image)."""
    pairs = a[a["category"] == category].merge(b[b["category"] == category], on=KEYS, suffixes=("_a", "_b"))
    if pairs.empty:
        return None
    result = paired_bootstrap_by_group(pairs["score_a"], pairs["score_b"], pairs["prompt"])
    return {"images": len(pairs), "prompts": result.n, "difference": result.difference, "ci_low": result.ci[0],
            "ci_high": result.ci[1], "p_value": result.p_value,
            "metrics": (set(pairs["metric_a"]), set(pairs["metric_b"]))}


def verdict(row: dict, a: str, b: str) -> str:
    if row["ci_low"] > 0:
        return f"{a} higher"
    if row["ci_high"] < 0:
        return f"{b} higher"
    return "no clear difference"


def paired_table(entries) -> Table | None:
    """A row per pair of runs (in order) and shared category; None when fewer than two runs have
    per-image scores."""
    runs = [e for e in entries if e.per_image is not None]
    if len(runs) < 2:
        return None
    shown, data, skipped = [], [], []
    for ea, eb in combinations(runs, 2):
        pa, pb = ea.data["protocol"], eb.data["protocol"]
        for key in ("seed", "images_per_prompt"):
            if pa.get(key) != pb.get(key):
                skipped.append(f"{ea.model} vs {eb.model}: other {key.replace('_', ' ')} ({pa.get(key)} vs "
                               f"{pb.get(key)}), so images with one index are not one seed")
                break
        else:
            for category in [c for c in COLUMN_NAMES if c in set(ea.per_image["category"]) & set(eb.per_image["category"])]:
                row = compare(ea.per_image, eb.per_image, category)
                if row is None:
                    skipped.append(f"{ea.model} vs {eb.model}, {category}: no image in common")
                    continue
                metrics = row.pop("metrics")
                if metrics[0] != metrics[1]:
                    skipped.append(f"{ea.model} vs {eb.model}, {category}: other metrics "
                                   f"({', '.join(sorted(metrics[0]))} vs {', '.join(sorted(metrics[1]))})")
                    continue
                data.append({"model_a": ea.model, "model_b": eb.model, "category": category, **row})
                shown.append({"A": ea.model, "B": eb.model, "category": COLUMN_NAMES[category],
                              "prompts": f"{row['prompts']:,}", "images": f"{row['images']:,}",
                              "A − B": f"{row['difference']:+.4f}",
                              "95% CI": f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
                              "p": f"{row['p_value']:.3g}", "verdict": verdict(row, ea.model, eb.model)})
    columns = ["A", "B", "category", "prompts", "images", "A − B", "95% CI", "p", "verdict"]
    notes = [("Images matched on category, prompt and file (index, hence seed); the CI is a paired percentile "
              "bootstrap over prompts, p its two-sided test of no difference. A verdict needs the CI to exclude 0."),
             files_note(runs)]
    notes += [f"Not compared: {s}." for s in skipped]
    return Table("compbench_paired", "T2I-CompBench: paired differences", pd.DataFrame(shown, columns=columns),
                 notes, data=pd.DataFrame(data, columns=["model_a", "model_b", "category", "images", "prompts",
                                                         "difference", "ci_low", "ci_high", "p_value"]))
