"""The user-study table from a study's ``results.json`` (``human_study.aggregate``): per model and
criterion, the share of rankings that put it first and its mean rank, each with its bootstrap
interval. The highest share and the lowest mean rank of a column are bold."""

from __future__ import annotations

import pandas as pd

from reports.provenance import files_note, short
from reports.tables import Table, best_cells


def _interval(v: dict, fmt: str, scale: float = 1.0) -> str:
    if v.get("estimate") is None:
        return "-"
    text = format(v["estimate"] * scale, fmt)
    if v.get("ci_low") is None or v.get("ci_high") is None:
        return text
    return f"{text} ({format(v['ci_low'] * scale, fmt)}–{format(v['ci_high'] * scale, fmt)})"


def study_table(entry, models: list[str] | None = None, key: str = "study") -> Table:
    d = entry.data
    chosen = [m for m in (models or d["models"]) if m in d["models"]]
    shown, values, data = [], [], []
    higher = {}
    for m in chosen:
        cells, numbers, raw = {"model": m}, {}, {"model": m}
        for criterion, r in d["criteria"].items():
            share, rank = r["first_place_share"][m], r["mean_rank"][m]
            first, mean = f"{criterion}: first place", f"{criterion}: mean rank"
            cells[first], cells[mean] = _interval(share, ".1f", 100), _interval(rank, ".2f")
            numbers[first], numbers[mean] = share.get("estimate"), rank.get("estimate")
            higher[first], higher[mean] = True, False
            for name, v in ((f"{criterion}_first_place_share", share), (f"{criterion}_mean_rank", rank)):
                raw.update({name: v.get("estimate"), f"{name}_ci_low": v.get("ci_low"),
                            f"{name}_ci_high": v.get("ci_high")})
        shown.append(cells), values.append(numbers), data.append(raw)
    settings = d.get("settings", {})
    level = settings.get("level", 0.95)
    replicates = f", {settings['n_boot']} replicates" if "n_boot" in settings else ""
    notes = [(f"First place: % of rankings placing the model first (ties share); mean rank: 1 = best. Intervals: "
              f"{level:.0%} {settings.get('bootstrap', 'bootstrap')}{replicates}. Bold: the best.")]
    counts = d.get("counts", {})
    for criterion, r in d["criteria"].items():
        w = (r.get("agreement") or {}).get("kendall_w") or {}
        text = f"{criterion}: {r.get('n_rankings', '?')} rankings by {r.get('n_raters', '?')} raters of " \
               f"{r.get('n_prompts', '?')} prompts"
        if w.get("estimate") is not None:
            text += f"; Kendall's W {w['estimate']:.3f}"
        notes.append(text + ".")
    if counts.get("excluded"):
        notes.append(f"{counts['excluded']} rater(s) excluded after failed attention checks.")
    study = d.get("study") or {}
    notes.append(files_note([entry]) + (f" Study {short(study['study_id'])}." if study.get("study_id") else ""))
    columns = list(shown[0]) if shown else ["model"]
    bold = best_cells(pd.DataFrame(values, columns=columns[1:]), higher, list(range(len(shown))))
    return Table(key, "User study" + (f" ({entry.model or entry.path.parent.name})" if key != "study" else ""),
                 pd.DataFrame(shown, columns=columns), notes, bold, data=pd.DataFrame(data))

