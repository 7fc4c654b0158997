"""The table of ``compbench --suite world`` results: T2I-CompBench's per-image definitions on the shapes
world, a row per model.

Per suite (single, color, shape, texture, spatial, complex: those the runs have), the pixel oracle's
score ± half the width of its 95% CI (a bootstrap over prompts; the CSV holds the exact bounds) and,
where the run had the evaluator, the learned metric that scored the same images (B-VQA, or UniDet's
2D rules for spatial) with its Pearson correlation with the oracle over images. The best oracle
score of a column is bold. The footnotes name the files, models, shared settings and versions.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.provenance import provenance_notes, where
from reports.tables import Table, best_cells

ORACLE = "oracle"


def world_settings(entry) -> dict:
    """{setting: value} of a world run that decides whether its scores compare with another's."""
    protocol, ev = entry.data["protocol"], entry.data.get("evaluators") or {}
    settings = {"images per prompt": protocol.get("images_per_prompt"), "seed": protocol.get("seed"),
                "prompts per suite": protocol.get("limit") or "all"}
    learned = {suite: r["learned"]["metric"] for suite, r in entry.data["suites"].items() if "learned" in r}
    settings.update({f"learned metric ({suite})": metric for suite, metric in learned.items()})
    if learned:
        if ev.get("blip"):
            settings["BLIP"] = Path(str(ev["blip"]).rstrip("/")).name
        if ev.get("np_num") is not None:
            settings["noun phrases (np_num)"] = ev["np_num"]
    return {k: v for k, v in settings.items() if v is not None}


def _cell(result: dict) -> str:
    lo, hi = result["ci95"]
    return f"{result['score']:.3f} ± {(hi - lo) / 2:.3f}"


def world_table(entries, *, strict: bool = False) -> Table:
    notes, _ = provenance_notes(entries, world_settings, strict, "T2I-CompBench on the shapes world")
    suites = list(dict.fromkeys(s for e in entries for s in e.data["suites"]))
    learned_metric = {s: sorted({e.data["suites"][s]["learned"]["metric"] for e in entries
                                 if "learned" in e.data["suites"].get(s, {})}) for s in suites}
    oracle_col = {s: f"{s} ({ORACLE})" for s in suites}
    learned_col = {s: f"{s} ({m[0] if len(m) == 1 else 'learned'})" for s, m in learned_metric.items() if m}
    columns = ["model", *(c for s in suites for c in (oracle_col[s], learned_col.get(s)) if c)]
    shown, values, data = [], [], []
    for e in entries:
        cells, numbers, raw = {"model": e.model}, {}, {"model": e.model, "file": where(e.path)}
        for s in suites:
            result = e.data["suites"].get(s)
            oracle = result[ORACLE] if result else None
            cells[oracle_col[s]] = _cell(oracle) if oracle else "-"
            numbers[oracle_col[s]] = oracle["score"] if oracle else None
            raw.update({f"{s}_oracle": oracle["score"] if oracle else None,
                        f"{s}_oracle_ci_low": oracle["ci95"][0] if oracle else None,
                        f"{s}_oracle_ci_high": oracle["ci95"][1] if oracle else None,
                        f"{s}_images": oracle["images"] if oracle else None})
            if s not in learned_col:
                continue
            learned = result.get("learned") if result else None
            r = (learned or {}).get("agreement_with_oracle", {}).get("pearson_r")
            cells[learned_col[s]] = (f"{_cell(learned)} (r = {'-' if r is None else f'{r:.2f}'})" if learned else "-")
            raw.update({f"{s}_learned_metric": learned["metric"] if learned else None,
                        f"{s}_learned": learned["score"] if learned else None,
                        f"{s}_learned_ci_low": learned["ci95"][0] if learned else None,
                        f"{s}_learned_ci_high": learned["ci95"][1] if learned else None,
                        f"{s}_pearson_r": r})
        shown.append(cells), values.append(numbers), data.append(raw)
    bold = best_cells(pd.DataFrame(values, columns=list(oracle_col.values())),
                      {c: True for c in oracle_col.values()}, list(range(len(shown))))
    lead = ["The shapes world's own prompt suites, scored per image by the pixel oracle (T2I-CompBench's per-image "
            "definitions applied to the exact facts of each scene), not T2I-CompBench's prompts: these numbers do "
            "not compare with the paper's. Score ± half the width of its 95% CI (percentile bootstrap over prompts); "
            "the CSV has the exact bounds. Bold: the best oracle score of a column."]
    if learned_col:
        lead.append("Learned columns: the learned metric on the same images (B-VQA for the attribute suites, UniDet's "
                    "2D rules for spatial), with r its Pearson correlation with the oracle over images ('-': a side "
                    "is constant); '-' in a cell: the run had no evaluator for it.")
    return Table("compbench_world", "T2I-CompBench on the shapes world", pd.DataFrame(shown, columns=columns),
                 lead + notes, bold, set(), pd.DataFrame(data))
