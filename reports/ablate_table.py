"""The ablation tables.

``ablation_table``: a row per variant of ``ablate cost`` (parameters, peak training memory, time per
step, images per second) joined with its FID-N from ``ablate fid``. The join is on the variant's name:
an ablate-fid model whose name is a cost config is that config's row; ``variants`` maps other names
(``{"block": "XL-2-256:adaln=block"}``), since ablate fid's model names cannot hold a config's ``:`` and
``=``. A FID row with no cost row gets a row of its own. The FID lands on the config's first row (ours;
a ``--diffusers`` row of the same config follows it).

``ablate_train_table``: a row per arm of ``ablate train`` (mean over seeds of the final evaluation),
the claims' verdicts as notes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.errors import BenchError
from reports.provenance import (
    ablate_cost_settings,
    ablate_fid_settings,
    check_settings,
    files_note,
    settings_note,
    versions_note,
)
from reports.tables import Table, best_cells

COLUMNS = ["variant", "implementation", "parameters", "peak memory (GiB)", "ms/step", "images/s", "FID", "N"]


def _fid_rows(fid_entries, variants: dict[str, str]) -> dict[str, dict]:
    rows = {}
    for e in fid_entries:
        for m in e.data["models"]:
            key = variants.get(m["model"], m["model"])
            if key in rows:
                raise BenchError(f"ablation table: two FIDs for variant {key!r} ({rows[key]['path']} and {e.path}); "
                                 "report one ablate fid run per variant")
            rows[key] = {**m, "path": e.path, "n": m["n"]}
    return rows


def ablation_table(cost_entries, fid_entries, *, variants: dict[str, str] | None = None, strict: bool = False) -> Table:
    variants = dict(variants or {})
    fids = _fid_rows(fid_entries, variants)
    unused = sorted(name for name in variants if name not in {m["model"] for e in fid_entries for m in e.data["models"]})
    if unused:
        raise BenchError(f"--variant: no ablate fid model is named {', '.join(unused)}")
    shown, data, placed = [], [], set()
    for e in cost_entries:
        for r in e.data["rows"]:
            measured = r["status"] == "measured"
            fid = fids.get(r["config"]) if r["config"] not in placed else None
            placed.add(r["config"])
            raw = {"variant": r["config"], "implementation": r["implementation"], "parameters": r.get("parameters"),
                   "peak memory (GiB)": r.get("memory_gib") if measured else None,
                   "ms/step": r["median_s"] * 1e3 if measured and r.get("median_s") else None,
                   "images/s": r.get("images_per_s") if measured else None,
                   "FID": fid["fid"] if fid else None, "N": fid["n"] if fid else None,
                   "status": r["status"], "reason": r.get("reason", "")}
            data.append(raw)
            shown.append(_cells(raw, measured))
    for name, fid in fids.items():
        if name not in placed:
            raw = {"variant": name, "implementation": "-", "parameters": None, "peak memory (GiB)": None,
                   "ms/step": None, "images/s": None, "FID": fid["fid"], "N": fid["n"], "status": "no cost run",
                   "reason": ""}
            data.append(raw)
            shown.append(_cells(raw, True))
    values = pd.DataFrame(data).astype({"parameters": "Int64", "N": "Int64"})
    bold = best_cells(values, {"parameters": False, "peak memory (GiB)": False, "ms/step": False, "images/s": True,
                               "FID": False}, list(range(len(data))))
    notes = [("Peak memory and time of one training step (the median of the timed steps); FID-N of each variant's "
              "checkpoint against one reference (lower is better). Bold: the best of a column.")]
    warnings = []
    for entries, settings_of, what in ((cost_entries, ablate_cost_settings, "ablate cost"),
                                       (fid_entries, ablate_fid_settings, "ablate fid")):
        if entries:
            shared, w = check_settings(entries, settings_of, strict, f"ablation ({what})")
            warnings += w
            if shared:
                notes.append(f"{what}: " + settings_note(shared))
    notes.append(files_note([*cost_entries, *fid_entries]))
    versions = versions_note([*cost_entries, *fid_entries])
    notes += ([versions] if versions else []) + warnings
    return Table("ablation", "Ablations: cost and FID per variant", pd.DataFrame(shown, columns=COLUMNS), notes, bold,
                 data=values)


def fmt(value, spec: str) -> str:
    """``value`` formatted with ``spec``; "-" for a missing one."""
    return "-" if value is None else format(value, spec)


def _cells(raw: dict, measured: bool) -> dict:
    memory = fmt(raw["peak memory (GiB)"], ".2f") if measured else f"not measured ({raw['reason'] or raw['status']})"
    return {"variant": raw["variant"], "implementation": raw["implementation"],
            "parameters": "-" if raw["parameters"] is None else f"{raw['parameters'] / 1e6:,.1f}M",
            "peak memory (GiB)": memory, "ms/step": fmt(raw["ms/step"], ".1f"), "images/s": fmt(raw["images/s"], ".3g"),
            "FID": fmt(raw["FID"], ".2f"), "N": fmt(raw["N"], ",")}


def _mean(runs: list[dict], key: str) -> float | None:
    values = [r.get(key) for r in runs]
    return float(np.mean(values)) if values and None not in values else None


def _final(curves: list, key: str) -> float | None:
    values = [c[-1].get(key) for c in curves if c and c[-1].get(key) is not None]
    return float(np.mean(values)) if values else None


def ablate_train_table(entry) -> Table:
    d = entry.data
    shown, data = [], []
    for name, arm in d["arms"].items():
        runs = [r for r in d["runs"] if r.get("run") == name]
        curves = list((d["curves"].get(name) or {}).values())
        raw = {"arm": name, "adaLN": arm.get("adaln"), "init": arm.get("init"), "captions": arm.get("captions"),
               "seeds": len(runs), "steps": max((r.get("steps", 0) for r in runs), default=None),
               "parameters": _mean(runs, "parameters"), "s/step": _mean(runs, "sec_per_step"),
               "world-FID": _final(curves, "world_fid"), "val MSE": _final(curves, "val_mse"),
               "oracle": _final(curves, "oracle")}
        data.append(raw)
        shown.append({**raw, "parameters": fmt(raw["parameters"], ",.0f"), "s/step": fmt(raw["s/step"], ".3f"),
                      "world-FID": fmt(raw["world-FID"], ".1f"), "val MSE": fmt(raw["val MSE"], ".4f"),
                      "oracle": fmt(raw["oracle"], ".3f")})
    values = pd.DataFrame(data)
    bold = best_cells(values, {"world-FID": False, "val MSE": False, "oracle": True}, list(range(len(data))))
    notes = [("Means over seeds of each run's final evaluation (world-FID and validation MSE: lower is better; "
              "oracle: higher). Bold: the best; a claim's verdict needs its interval, below.")]
    for number, claim in d["claims"].items():
        notes.append(f"Claim {number} ({claim.get('title', '')}): {claim.get('verdict', '-')}.")
    budget = (d.get("settings") or {}).get("budget") or {}
    if budget:
        notes.append("Budget: " + ", ".join(f"{k} {v}" for k, v in budget.items()) + ".")
    notes.append(files_note([entry]))
    versions = versions_note([entry])
    return Table("ablate_train", "Training ablations (shapes world)", pd.DataFrame(shown), notes + ([versions] if versions else []),
                 bold, data=values)
