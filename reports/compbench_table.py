"""The T2I-CompBench table in the paper's layout: a row per model, the categories as columns.

Cells are the score ± half the width of its 95% CI (a bootstrap over prompts; the CSV holds the exact
bounds). The paper's six categories always appear; 3D-Spatial and Numeracy when a measured row has
them. The best measured score of a column is bold. With ``published``, the published rows of the
same version of the official code follow (``bench.compbench.published``), marked and never bold: the
current set always, and the set of the code as first released too when a run used its settings
(``--np-num 2`` or ``--color-list 2023``).
"""

from __future__ import annotations

import pandas as pd

from bench.compbench.prompts import PAPER_CATEGORIES
from bench.compbench.protocol import describe
from bench.compbench.published import COLUMN_NAMES, PEER_SETS, PEERS
from reports.provenance import compbench_settings, provenance_notes, where
from reports.tables import MEASURED, PUBLISHED, Table, best_cells

EXTRA_CATEGORIES = ("3d_spatial", "numeracy")


def first_release_settings(entry) -> bool:
    """Whether a run used the settings closest to the official code as first released."""
    return entry.data.get("evaluators", {}).get("np_num") == 2 or entry.data["protocol"].get("color_list") == "2023"


def compbench_table(entries, *, published: bool = True, strict: bool = False) -> Table:
    notes, _ = provenance_notes(entries, compbench_settings, strict, "T2I-CompBench")
    categories = [*PAPER_CATEGORIES, *(c for c in EXTRA_CATEGORIES if any(c in e.data["categories"] for e in entries))]
    shown, values, data = [], [], []
    for e in entries:
        protocol = describe(e.data["protocol"], e.data["categories"])
        cells, numbers = {"model": e.model, "source": MEASURED, "protocol": protocol}, {}
        raw = {"model": e.model, "source": MEASURED, "protocol": protocol, "file": where(e.path)}
        for c in categories:
            s = e.data["categories"].get(c)
            lo, hi = s["ci95"] if s else (None, None)
            cells[COLUMN_NAMES[c]] = f"{s['score']:.4f} ± {(hi - lo) / 2:.4f}" if s else "-"
            numbers[COLUMN_NAMES[c]] = s["score"] if s else None
            raw.update({c: numbers[COLUMN_NAMES[c]], f"{c}_ci_low": lo, f"{c}_ci_high": hi})
        shown.append(cells), values.append(numbers), data.append(raw)
    measured = list(range(len(shown)))
    sets = []
    if published:
        sets = ["current", *(["first-release"] if any(first_release_settings(e) for e in entries) else [])]
    for name in sets:
        for row in PEERS[name]:
            label = f"{row['model']} ({PEER_SETS[name]})"
            scores = {COLUMN_NAMES[c]: row["scores"].get(c) for c in categories}
            shown.append({"model": label, "source": PUBLISHED, "protocol": "not stated",
                          **{k: "-" if v is None else f"{v:.4f}" for k, v in scores.items()}})
            values.append(scores)
            data.append({"model": label, "source": PUBLISHED, "protocol": "not stated", "file": "",
                         **{k: v for c in categories for k, v in ((c, row["scores"].get(c)), (f"{c}_ci_low", None),
                                                                   (f"{c}_ci_high", None))}})
    frame = pd.DataFrame(shown)
    columns = [COLUMN_NAMES[c] for c in categories]
    bold = best_cells(pd.DataFrame(values, columns=columns), {c: True for c in columns}, measured)
    notes.insert(0, "Score ± half the width of its 95% CI (percentile bootstrap over prompts); the CSV has the "
                    "exact bounds. Bold: the best measured score of a column.")
    notes.insert(1, "Protocol: what each run verified (bench.compbench.protocol): \"official\" only when every "
                    "prompt of each list has its 10 images with seeds 42…51 on record (made by the run, or a "
                    "generate manifest checked by SHA-256); a row that is not official compares with published "
                    "rows only for orientation.")
    for e in entries:
        for assumption in e.data["protocol"].get("assumptions", []):
            notes.append(f"Assumption of {e.model}: {assumption}.")
    if sets:
        sources = dict.fromkeys(part for name in sets for row in PEERS[name] for part in row["source"].split("; "))
        notes.append(f"Rows marked \"{PUBLISHED}\" are copied from: " + "; ".join(sources) + ". Their generation "
                     "settings are not stated, so a measured row need not land on them.")
    return Table("compbench", "T2I-CompBench", frame, notes, bold, set(range(len(measured), len(shown))),
                 pd.DataFrame(data))
