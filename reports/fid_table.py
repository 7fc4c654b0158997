"""The FID tables, one per kind of number, from ``fid.json`` files:

- ``fid``, "COCO-30K zero-shot FID": the files whose protocol record (``bench.fid.labels``) says
  ``coco-30k zero-shot`` and whose figures bear it out (``fid coco``, 30,000 generated images, torch-fidelity's
  Inception with its standard weights); then, with ``published``, the published FID-30K rows of PixArt-α's
  comparison (``bench.fid.published``), marked and never bold. Made only when a measured row qualifies.
- ``fid_folders``, "FID (image folders)": every other file (``fid folder``, ``fid coco`` at another N or with
  another extractor, ``fid world``, ``ablate fid``, and files without a protocol record: "unknown"), with N,
  the reference, resize and extractor.

Both show KID (± std) where the file records it. Bold is the lowest FID among rows that compare: the same
protocol, extractor and weights, reference statistics (``reference.id``, which covers its content and
resize), resize and N; the "group" column gives such rows one letter. A row with nothing comparable (and a
row of unknown protocol) is not bold. The footnotes warn (``strict``: a BenchError) where rows of the
COCO-30K table, or rows of one protocol in the image-folder table, were made with other settings; rows of
different protocols stand in the image-folder table by design, each labelled.
"""

from __future__ import annotations

import string

import pandas as pd

from bench.fid import published as pub
from bench.fid.labels import COCO_30K, SMALL_N, UNKNOWN, protocol_of
from reports.provenance import check_settings, fid_settings, provenance_notes, settings_note, short, where
from reports.tables import MEASURED, PUBLISHED, Table, best_cells

COCO_COLUMNS = ["model", "source", "FID", "KID", "group", "N", "reference id", "resize", "extractor", "parameters",
                "training images", "A100 GPU days"]
FOLDER_COLUMNS = ["model", "protocol", "FID", "KID", "group", "N", "reference N", "reference id", "resize",
                  "extractor", "extractor weights"]
NO_GROUP = "-"


def fid_table(entries, *, published: bool = True, strict: bool = False) -> list[Table]:
    """The FID tables of ``entries`` (see the module's docstring): the COCO-30K zero-shot table when a row
    qualifies, then the image-folder table when any other row is there."""
    coco = [e for e in entries if protocol_of(e.data) == COCO_30K]
    folders = [e for e in entries if protocol_of(e.data) != COCO_30K]
    tables = []
    if coco:
        tables.append(coco_table(coco, published, strict))
    if folders:
        tables.append(folder_table(folders, strict))
    return tables


def comparable_key(data: dict):
    """What two FIDs must share to compare; None for a file of unknown protocol (it compares with nothing)."""
    protocol = protocol_of(data)
    if protocol == UNKNOWN:
        return None
    e = data["extractor"]
    return (protocol, e.get("name"), e.get("weights_sha256"), data["reference"].get("id"),
            data["settings"].get("resize"), data["n_gen"])


def group_letters(keys: list) -> list[str]:
    """A letter per group of at least two rows with the same key (in order of first appearance); "-" else."""
    counts = {k: keys.count(k) for k in keys if k is not None}
    letters: dict = {}
    for k in keys:
        if k is not None and counts[k] > 1 and k not in letters:
            i = len(letters)
            letters[k] = string.ascii_uppercase[i] if i < 26 else f"G{i + 1}"
    return [letters.get(k, NO_GROUP) for k in keys]


def bold_cells(values: list[float], groups: list[str]) -> set[tuple[int, str]]:
    """The lowest FID of each group (ties all bold); rows without a group are never bold."""
    frame = pd.DataFrame({"FID": values})
    cells = set()
    for letter in dict.fromkeys(g for g in groups if g != NO_GROUP):
        cells |= best_cells(frame, {"FID": False}, [i for i, g in enumerate(groups) if g == letter])
    return cells


def kid_cell(d: dict) -> str:
    if "kid_mean" in d and "kid_std" in d:
        return f"{d['kid_mean']:.4f} ± {d['kid_std']:.4f}"
    return "-"


def small_n_note(entries) -> str | None:
    """A footnote naming the rows of fewer than ``SMALL_N`` images (stronger where N is at most the feature
    dimension), from the figures each file records."""
    small = []
    for e in entries:
        d = e.data
        n, dim = min(d["n_gen"], d.get("n_ref") or d["n_gen"]), d["extractor"].get("feature_dim")
        if n < SMALL_N:
            singular = dim is not None and n <= dim
            small.append(f"{e.model} (N = {n:,}" + (f", at most the {dim:,} feature dimensions: singular covariance"
                                                    if singular else "") + ")")
    if not small:
        return None
    return (f"Small N: {'; '.join(small)}. Below {SMALL_N:,} images FID is biased upward, more the smaller N, so "
            "FIDs of different N do not compare; where N is at most the feature dimension the FID says more about "
            "N than about the images. KID is unbiased.")


def measured_row(e, groups: list[str], i: int) -> tuple[dict, dict]:
    """(the cells shown, the numbers for CSV) of a measured file; columns common to both tables."""
    d = e.data
    shown = {"model": e.model, "FID": f"{d['fid']:.2f}", "KID": kid_cell(d), "group": groups[i],
             "N": f"{d['n_gen']:,}", "reference id": short(d["reference"].get("id")),
             "resize": d["settings"].get("resize", "-"), "extractor": d["extractor"].get("name", "-")}
    data = {"model": e.model, "FID": d["fid"], "KID": d.get("kid_mean"), "KID std": d.get("kid_std"),
            "group": groups[i], "N": d["n_gen"], "reference N": d.get("n_ref"),
            "reference id": d["reference"].get("id"), "resize": d["settings"].get("resize"),
            "extractor": d["extractor"].get("name"), "extractor weights": d["extractor"].get("weights_sha256"),
            "file": where(e.path)}
    return shown, data


def coco_table(entries, published: bool, strict: bool) -> Table:
    notes, _ = provenance_notes(entries, fid_settings, strict, "FID")
    groups = group_letters([comparable_key(e.data) for e in entries])
    shown, data = [], []
    for i, e in enumerate(entries):
        cells, numbers = measured_row(e, groups, i)
        shown.append({**cells, "source": MEASURED, "parameters": "-", "training images": "-", "A100 GPU days": "-"})
        data.append({**numbers, "source": MEASURED, "protocol": COCO_30K})
    bold = bold_cells([d["FID"] for d in data], groups)
    if published:
        for r in pub.FID_30K:
            shown.append({"model": r["model"], "source": PUBLISHED, "FID": f"{r['fid']:.2f}", "KID": "-",
                          "group": NO_GROUP, "N": f"{pub.N:,}", "reference id": "MS-COCO", "resize": "256×256",
                          "extractor": "-", "parameters": r["parameters"], "training images": r["images"],
                          "A100 GPU days": f"{r['gpu_days']:,}" if r["gpu_days"] else "-"})
            data.append({"model": r["model"], "source": PUBLISHED, "protocol": "published", "FID": r["fid"],
                         "N": pub.N, "reference id": "MS-COCO", "resize": "256x256", "parameters": r["parameters"],
                         "training images": r["images"], "A100 GPU days": r["gpu_days"], "file": ""})
        notes.append(f"Rows marked \"{PUBLISHED}\": {pub.PROTOCOL}; {pub.SOURCE}. PixArt-α's 7.32 needs the "
                     "checkpoint fine-tuned for the benchmark; each paper used its own FID code and references, so "
                     "they are never bold.")
    notes.insert(0, "COCO-30K zero-shot FID: `pixart-bench fid coco` with 30,000 generated images and "
                    "torch-fidelity's inception-v3-compat with its standard weights, both checked from each fid.json "
                    "(lower is better). KID: mean ± std over subsets (unbiased), where computed. Bold: the lowest FID "
                    "among rows that compare (one group letter: the same reference statistics, resize and "
                    "extractor weights); a row with nothing comparable is not bold.")
    columns = ["model", "source", "protocol", "FID", "KID", "KID std", "group", "N", "reference N", "reference id",
               "resize", "extractor", "extractor weights", "parameters", "training images", "A100 GPU days", "file"]
    return Table("fid", "COCO-30K zero-shot FID", pd.DataFrame(shown, columns=COCO_COLUMNS), notes, bold,
                 set(range(len(entries), len(shown))), whole_numbers(pd.DataFrame(data, columns=columns)))


def whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as whole numbers in CSV, blank where a row has none (not 30000.0)."""
    for column in ("N", "reference N", "A100 GPU days"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def folder_notes(entries, strict: bool) -> list[str]:
    """Provenance footnotes of the image-folder table: the settings every row shares, and a warning where two
    rows of one protocol differ in a setting (rows of different protocols differ by design)."""
    table = "FID (image folders)"
    notes, _ = provenance_notes(entries, None, strict, table)
    shared, _ = check_settings(entries, fid_settings, False, table)
    if settings_note(shared):
        notes.insert(2, settings_note(shared))
    for protocol in dict.fromkeys(protocol_of(e.data) for e in entries):
        same = [e for e in entries if protocol_of(e.data) == protocol]
        notes += check_settings(same, fid_settings, strict, f"{table}, {protocol} rows")[1]
    return notes


def folder_table(entries, strict: bool) -> Table:
    notes = folder_notes(entries, strict)
    groups = group_letters([comparable_key(e.data) for e in entries])
    shown, data = [], []
    for i, e in enumerate(entries):
        d = e.data
        protocol = protocol_of(d)
        cells, numbers = measured_row(e, groups, i)
        shown.append({**cells, "protocol": protocol, "reference N": f"{d['n_ref']:,}" if d.get("n_ref") else "-",
                      "extractor weights": short(d["extractor"].get("weights_sha256"))})
        data.append({**numbers, "protocol": protocol})
    notes.insert(0, "FID-N between image sets, by protocol: folder (`fid folder`), coco zero-shot (`fid coco` at "
                    "another N or with another extractor than COCO-30K's), world (`fid world`), ablate (`ablate fid`), "
                    "unknown (a fid.json without a protocol record). Lower is better. KID: mean ± std over subsets "
                    "(unbiased), where computed. Bold: the lowest FID among rows that compare (one group letter: the "
                    "same protocol, extractor and weights, reference statistics, resize and N); a row with nothing "
                    "comparable, or of unknown protocol, is not bold.")
    note = small_n_note(entries)
    if note:
        notes.insert(1, note)
    columns = ["model", "protocol", "FID", "KID", "KID std", "group", "N", "reference N", "reference id", "resize",
               "extractor", "extractor weights", "file"]
    frame = whole_numbers(pd.DataFrame(data, columns=columns))
    return Table("fid_folders", "FID (image folders)", pd.DataFrame(shown, columns=FOLDER_COLUMNS), notes,
                 bold_cells([d["FID"] for d in data], groups), set(), frame)
