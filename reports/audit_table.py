"""The parity table of ``compbench audit`` results: per audited run and category, our per-image scores
against the official scripts' ``vqa_result.json`` answers for the same images.

A row per compared category: the images matched, both category scores (the mean of each side's
per-image scores) and their difference, the largest and mean absolute difference over images, the Pearson
correlation, and the images differing by more than the audit's tolerance (1e-4; one step of the
official B-VQA answer's 4-decimal rounding is not counted). The footnotes name the run's files and
every official file with their SHA-256, the categories that had no official output, and where our
metric is not the official one. No cell is bold: agreement is not a ranking.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.provenance import provenance_notes, short, where
from reports.tables import Table

COLUMNS = ["model", "category", "our metric", "images", "ours", "theirs", "ours − theirs", "max abs diff",
           "mean abs diff", "Pearson r", "over tolerance"]


def _r(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _official_file(entry, result: dict) -> str:
    """An official file as a footnote names it: relative to the audited DIR when inside it."""
    path, root = Path(str(result.get("official_file", ""))), Path(str(entry.data["official"].get("path", "")))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def audit_table(entries, *, strict: bool = False) -> Table:
    notes, _ = provenance_notes(entries, None, strict, "T2I-CompBench audit")
    shown, data, missing, metric_notes, text = [], [], [], [], False
    for e in entries:
        none = []
        for category, c in e.data["categories"].items():
            if c["status"] != "compared":
                none.append(category)
                continue
            text = text or c.get("answers") in ("text", "mixed")
            if c.get("note"):
                metric_notes.append(f"{e.model}, {category}: {c['note']}.")
            shown.append({"model": e.model, "category": category, "our metric": c["metric"],
                          "images": f"{c['images']:,}", "ours": f"{c['ours']:.4f}", "theirs": f"{c['theirs']:.4f}",
                          "ours − theirs": f"{c['ours'] - c['theirs']:+.4f}",
                          "max abs diff": f"{c['max_abs_diff']:.2e}",
                          "mean abs diff": f"{c['mean_abs_diff']:.2e}", "Pearson r": _r(c.get("pearson_r")),
                          "over tolerance": f"{c['over_tolerance']:,}"})
            data.append({"model": e.model, "category": category, "metric": c["metric"], "images": c["images"],
                         "ours": c["ours"], "theirs": c["theirs"], "difference": c["ours"] - c["theirs"],
                         "max_abs_diff": c["max_abs_diff"], "mean_abs_diff": c["mean_abs_diff"],
                         "pearson_r": c.get("pearson_r"), "over_tolerance": c["over_tolerance"],
                         "tolerance": e.data.get("tolerance"), "question_id": c.get("question_id"),
                         "answers": c.get("answers"), "official_file": _official_file(e, c),
                         "official_sha256": c.get("official_sha256"), "run": e.data["run"].get("path"),
                         "file": where(e.path)})
        if none:
            missing.append(f"{e.model}: {', '.join(none)}")
    lead = [f"Per image, our score against the official script's answer for the same image (vqa_result.json, "
            f"matched by question_id through the file names). ours, theirs: the category means; abs diff: the "
            f"absolute difference per image; over tolerance: images differing by more than {_tolerance(entries)}. "
            "Pearson r over images ('-': a side is constant)."]
    if text:
        lead.append("The official B-VQA answers are 4-decimal text: rounding alone makes a difference up to 5e-5 "
                    "against an unrounded score; ours is rounded the same way, and one rounding step (1e-4) is not "
                    "counted above the tolerance.")
    lead.append("theirs: the vqa_result.json files given to compbench audit as the official scripts' output; "
                "the audit does not check which code wrote them.")
    for e in entries:
        run = e.data["run"]
        files = "; ".join(f"{_official_file(e, c)} sha256 {short(c.get('official_sha256'))}"
                          for c in e.data["categories"].values() if c["status"] == "compared")
        lead.append(f"{e.model}: run {_name(run.get('path'))} (results.json sha256 {short(run.get('results_sha256'))}, "
                    f"per_image.csv sha256 {short(run.get('per_image_sha256'))}); official files in "
                    f"{_name(e.data['official'].get('path'))}: {files}.")
    if missing:
        lead.append("No official output (not compared): " + "; ".join(missing) + ".")
    return Table("compbench_audit", "T2I-CompBench: parity with the official scripts",
                 pd.DataFrame(shown, columns=COLUMNS), lead + metric_notes + notes, data=pd.DataFrame(data))


def _name(path) -> str:
    """A folder as a footnote names it: its own name (audit.json and the CSV keep the whole path)."""
    return f"{Path(str(path)).name}/" if path else "-"


def _tolerance(entries) -> str:
    values = sorted({float(e.data.get("tolerance", 1e-4)) for e in entries})
    return " / ".join(f"{v:.0e}".replace("e-0", "e-") for v in values)
