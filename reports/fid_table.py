"""The zero-shot FID table: a row per measured model (FID-N, N, reference, resize, extractor), then,
with ``published``, the published FID-30K rows of PixArt-α's comparison (``bench.fid.published``),
marked and never bold. The lowest measured FID is bold."""

from __future__ import annotations

import pandas as pd

from bench.fid import published as pub
from reports.provenance import fid_settings, provenance_notes, short, where
from reports.tables import MEASURED, PUBLISHED, Table, best_cells

COLUMNS = ["model", "source", "FID", "N", "reference id", "resize", "extractor", "parameters", "training images",
           "A100 GPU days"]


def fid_table(entries, *, published: bool = True, strict: bool = False) -> Table:
    notes, _ = provenance_notes(entries, fid_settings, strict, "FID")
    shown, data = [], []
    for e in entries:
        d = e.data
        row = {"model": e.model, "source": MEASURED, "FID": d["fid"], "N": d["n_gen"],
               "reference id": short(d["reference"].get("id")), "resize": d["settings"].get("resize", "-"),
               "extractor": d["extractor"].get("name", "-")}
        data.append({**row, "reference_n": d.get("n_ref"), "file": where(e.path)})
        shown.append({**row, "FID": f"{d['fid']:.2f}", "N": f"{d['n_gen']:,}", "parameters": "-",
                      "training images": "-", "A100 GPU days": "-"})
    measured = list(range(len(shown)))
    if published:
        for r in pub.FID_30K:
            shown.append({"model": r["model"], "source": PUBLISHED, "FID": f"{r['fid']:.2f}", "N": f"{pub.N:,}",
                          "reference id": "MS-COCO", "resize": "256×256", "extractor": "-",
                          "parameters": r["parameters"], "training images": r["images"],
                          "A100 GPU days": f"{r['gpu_days']:,}" if r["gpu_days"] else "-"})
            data.append({"model": r["model"], "source": PUBLISHED, "FID": r["fid"], "N": pub.N,
                         "reference id": "MS-COCO", "resize": "256x256", "extractor": None,
                         "parameters": r["parameters"], "training images": r["images"],
                         "A100 GPU days": r["gpu_days"], "reference_n": None, "file": ""})
        notes.append(f"Rows marked \"{PUBLISHED}\": {pub.PROTOCOL}; {pub.SOURCE}. PixArt-α's 7.32 needs the "
                     "checkpoint fine-tuned for the benchmark; each paper used its own FID code and references.")
    values = pd.DataFrame({"FID": [r["FID"] for r in data]})
    notes.insert(0, "FID-N of N generated images against the reference (lower is better; bold: the best measured).")
    return Table("fid", "Zero-shot FID", pd.DataFrame(shown, columns=COLUMNS), notes,
                 best_cells(values, {"FID": False}, measured), set(range(len(measured), len(shown))),
                 pd.DataFrame(data))
