"""The study's result files: results.json, CSV tables and the user-study bar chart.

``human_study.aggregate.write_results`` calls the two writers here on the dict ``aggregate`` returns:

- ``write_tables``: ``results.json`` (the whole dict), and flat CSVs for spreadsheets and reports:
  ``first_place.csv`` and ``mean_rank.csv`` (criterion, model, estimate, ci_low, ci_high),
  ``plackett_luce.csv`` (the same columns for the log-strength, then p_first and its interval),
  ``win_matrix_<criterion>.csv`` (row model beats column model; the diagonal is empty) and
  ``agreement.csv`` (Kendall's W and Krippendorff's alpha per criterion, with a note where alpha
  is undefined).
- ``write_figure``: ``user_study.png`` and ``user_study.svg``, PixArt-α's user-study figure: the
  share of rankings placing each model first, grouped by criterion, with the bootstrap interval as
  error bars on a percent axis. ``user_study_figure`` returns the matplotlib Figure itself (drawn on
  a plain ``Figure``, so no pyplot state or GUI backend is involved; saving uses Agg).

Every file is written atomically (``pixart.files``): a reader never sees half of one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from human_study.errors import StudyError
from pixart.files import atomic_write, write_json_atomic

ESTIMATE_COLUMNS = ("criterion", "model", "estimate", "ci_low", "ci_high")


def _per_model_rows(result: dict, pick) -> list[dict]:
    """One row per (criterion, model) of the {model: {estimate, ci_low, ci_high}} that ``pick``
    selects from a criterion's results."""
    return [{"criterion": c, "model": m, **pick(r)[m]} for c, r in result["criteria"].items() for m in result["models"]]


def _write_csv(path: Path, frame: pd.DataFrame, index: bool = False) -> Path:
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=index))


def _plackett_luce_rows(result: dict) -> list[dict]:
    rows = _per_model_rows(result, lambda r: r["plackett_luce"]["log_strength"])
    first = _per_model_rows(result, lambda r: r["plackett_luce"]["p_first"])
    for row, p in zip(rows, first):
        row.update(p_first=p["estimate"], p_first_ci_low=p["ci_low"], p_first_ci_high=p["ci_high"])
    return rows


def _agreement_rows(result: dict) -> list[dict]:
    rows = []
    for c, r in result["criteria"].items():
        w, alpha = r["agreement"]["kendall_w"], r["agreement"]["krippendorff_alpha"]
        rows.append({"criterion": c, "statistic": "kendall_w", "estimate": w["estimate"], "ci_low": w["ci_low"],
                     "ci_high": w["ci_high"], "n": w["n_rankings"], "note": "n = rankings; tie-corrected"})
        rows.append({"criterion": c, "statistic": "krippendorff_alpha_ordinal", "estimate": alpha["estimate"],
                     "ci_low": None, "ci_high": None, "n": alpha["n_raters"],
                     "note": alpha.get("reason", f"n = raters; {alpha['n_units']} (prompt, model) units")})
    return rows


def write_tables(result: dict, out: Path) -> list[Path]:
    """results.json and the CSV tables in the folder ``out``; their paths."""
    paths = [write_json_atomic(out / "results.json", result)]
    tables = {
        "first_place.csv": _per_model_rows(result, lambda r: r["first_place_share"]),
        "mean_rank.csv": _per_model_rows(result, lambda r: r["mean_rank"]),
        "plackett_luce.csv": _plackett_luce_rows(result),
        "agreement.csv": _agreement_rows(result),
    }
    for name, rows in tables.items():
        paths.append(_write_csv(out / name, pd.DataFrame(rows)))
    for c, r in result["criteria"].items():
        matrix = pd.DataFrame(r["win_matrix"]["share"], index=pd.Index(result["models"], name="model"),
                              columns=result["models"], dtype=float)  # None (the diagonal) → NaN → empty cell
        paths.append(_write_csv(out / f"win_matrix_{c}.csv", matrix, index=True))
    return paths


def user_study_figure(result: dict):
    """A matplotlib Figure: grouped bars of the first-place share per model (one group per
    criterion, one bar per model), with the bootstrap interval as error bars, on a percent axis."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    try:
        models, criteria = list(result["models"]), list(result["criteria"])
        share = {c: result["criteria"][c]["first_place_share"] for c in criteria}
        level = result["settings"]["level"]
    except (KeyError, TypeError) as e:
        raise StudyError(f"user_study_figure needs the dict aggregate() returns; it lacks {e}") from None
    value = lambda x: np.nan if x is None else x  # None: undefined, drawn as nothing
    fig = Figure(figsize=(max(5.5, 2.5 + 0.55 * len(models) * len(criteria)), 4.2), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(models)
    top = 0.0
    for i, m in enumerate(models):
        est = np.array([value(share[c][m]["estimate"]) for c in criteria])
        low = np.array([value(share[c][m]["ci_low"]) for c in criteria])
        high = np.array([value(share[c][m]["ci_high"]) for c in criteria])
        # error bars are distances from the estimate; a missing interval draws none
        err = np.nan_to_num(np.vstack([est - low, high - est]).clip(min=0))
        x = np.arange(len(criteria)) + (i - (len(models) - 1) / 2) * width
        bars = ax.bar(x, est, width, yerr=err, capsize=3, label=m)
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.0%}" for v in est], label_type="center", fontsize=8)
        top = max(top, np.nanmax(np.concatenate([est, high, [0.0]])))
    ax.set_xticks(np.arange(len(criteria)), [c.capitalize() for c in criteria])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, min(1.0, top * 1.15) if top > 0 else 1.0)
    ax.set_ylabel("Rankings placing the model first")
    ax.set_title(f"First-place share per model\n({level:.0%} bootstrap intervals over raters and prompts)", fontsize=10)
    ax.legend(title="Model", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def write_figure(result: dict, out: Path) -> list[Path]:
    """user_study.png and user_study.svg in the folder ``out``; their paths."""
    fig = user_study_figure(result)
    # the temporary file ends in .tmp, so the format is named; no date in the SVG keeps reruns identical
    png = atomic_write(out / "user_study.png", lambda tmp: fig.savefig(tmp, format="png", dpi=150))
    svg = atomic_write(out / "user_study.svg", lambda tmp: fig.savefig(tmp, format="svg", metadata={"Date": None}))
    return [png, svg]
