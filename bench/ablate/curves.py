"""The training ablation's curves as a table (CSV) and as plots (matplotlib PNG + SVG).

``rows(curves)``: one row per arm, seed and evaluated step with every scalar metric;
``write_csv``; ``plot_claims``: one figure per claim, a panel per metric against training steps,
one line per arm (the mean across seeds) with a band (the bootstrap 95% CI of that mean across
seeds; no band with one seed).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bench.ablate.arms import CLAIMS
from bench.stats import bootstrap_ci
from pixart.files import atomic_write

COLUMNS = ("arm", "seed", "step", "train_loss", "val_mse", "val_mse_null", "text_gain", "oracle", "oracle_single",
           "oracle_color", "oracle_texture", "oracle_spatial", "binding_spatial", "colour_recall", "world_fid",
           "images")
LABELS = {"val_mse": "held-out ε-MSE (lower is better)", "text_gain": "text gain: MSE(null) − MSE(caption)",
          "oracle": "oracle score, all prompts", "binding_spatial": "oracle: colour, texture, spatial",
          "colour_recall": "colour recall", "world_fid": "world-FID (lower is better)",
          "train_loss": "training loss (trainer's metrics)", "oracle_color": "oracle: colour binding",
          "oracle_texture": "oracle: texture binding", "oracle_spatial": "oracle: spatial"}
PANELS = {1: ("val_mse", "text_gain", "oracle", "colour_recall", "world_fid", "train_loss"),
          2: ("val_mse", "text_gain", "oracle", "colour_recall", "world_fid", "train_loss"),
          3: ("text_gain", "val_mse", "binding_spatial", "colour_recall", "oracle_spatial", "world_fid")}


def rows(curves: dict) -> list[dict]:
    out = []
    for arm, seeds in curves.items():
        for seed, records in sorted(seeds.items()):
            for r in records:
                out.append({"arm": arm, "seed": seed, **{k: r.get(k) for k in COLUMNS[2:]}})
    return out


def write_csv(path: Path, curves: dict) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows(curves))

    atomic_write(path, write)


def _band(curves: dict, arm: str, metric: str):
    """(steps, mean, low, high) across the arm's seeds at the steps every seed has."""
    per_seed = [{r["step"]: r.get(metric) for r in records} for records in curves.get(arm, {}).values()]
    if not per_seed:
        return None
    steps = sorted(set.intersection(*(set(s) for s in per_seed)))
    mean, lo, hi = [], [], []
    for step in steps:
        values = [s[step] for s in per_seed if s[step] is not None and np.isfinite(s[step])]
        if not values:
            return None
        mean.append(float(np.mean(values)))
        low, high = bootstrap_ci(values) if len(values) > 1 else (mean[-1], mean[-1])
        lo.append(low)
        hi.append(high)
    return steps, mean, lo, hi


def plot_claims(curves: dict, claims: list[int], folder: Path, title_note: str = "") -> list[Path]:
    """``folder/claim{n}.png`` and ``.svg`` for each claim; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in claims:
        claim = CLAIMS[number]
        arms = list(dict.fromkeys(a for comp in claim.comparisons for a in (comp.a, comp.b)))
        panels = PANELS[number]
        fig, axes = plt.subplots(2, 3, figsize=(13, 7.2))
        for ax, metric in zip(axes.flat, panels):
            for k, arm in enumerate(arms):
                band = _band(curves, arm, metric)
                if band is None:
                    continue
                steps, mean, lo, hi = band
                color = f"C{k}"
                ax.plot(steps, mean, marker="o", ms=3, color=color, label=arm)
                ax.fill_between(steps, lo, hi, color=color, alpha=0.18, linewidth=0)
            ax.set_title(LABELS.get(metric, metric), fontsize=10)
            ax.set_xlabel("training steps (stage 2)")
            ax.grid(alpha=0.3)
        axes.flat[0].legend(fontsize=8)
        fig.suptitle(f"Claim {number}: {claim.title}" + (f"\n{title_note}" if title_note else ""), fontsize=11)
        fig.tight_layout()
        for suffix in ("png", "svg"):
            path = folder / f"claim{number}.{suffix}"
            atomic_write(path, lambda tmp, s=suffix, f=fig: f.savefig(tmp, format=s, dpi=110))
            files.append(path)
        plt.close(fig)
    return files
