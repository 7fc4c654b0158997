"""The table of ``compbench --suite world`` results: T2I-CompBench's per-image definitions on the shapes
world, a row per model.

Per suite (single, color, shape, texture, spatial, complex: those the runs have), the score of the
pixel reader that made it, ± half the width of its 95% CI (a bootstrap over prompts; the CSV holds the
exact bounds): the world judge (results.json version 2, "reader" key "judge"; its held-out agreement
with people is in docs/world.md and in the record) or the exact oracle (version 2 with key "oracle",
and every version 1 record), each in its own column, "(world judge)" or "(oracle)". Where the run had
the evaluator, the learned metric that scored the same images (B-VQA, or UniDet's 2D rules for
spatial) follows, with its Pearson correlation with the reader over images. The best reader score of a
column is bold. The footnotes name the files, models, shared settings (the reader among them) and versions.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.provenance import provenance_notes, where
from reports.tables import Table, best_cells

READERS = {"judge": "world judge", "oracle": "oracle"}  # results.json's reader key -> what columns say
ORACLE_NAME = "exact oracle (bench.world.oracle)"


def world_reader(data: dict) -> dict:
    """The reader that scored a world record: its "reader" (version 2), or the exact oracle (version 1,
    which has none: every suite's result is under "oracle")."""
    reader = data.get("reader")
    return reader if isinstance(reader, dict) else {"key": "oracle", "name": ORACLE_NAME}


def world_settings(entry) -> dict:
    """{setting: value} of a world run that decides whether its scores compare with another's."""
    protocol, ev = entry.data["protocol"], entry.data.get("evaluators") or {}
    reader = world_reader(entry.data)
    settings = {"reader": reader.get("name"), "images per prompt": protocol.get("images_per_prompt"),
                "seed": protocol.get("seed"), "prompts per suite": protocol.get("limit") or "all"}
    if reader["key"] == "judge" and reader.get("weights_sha256"):
        settings["judge weights sha256"] = str(reader["weights_sha256"])[:12]
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


def _people_note(reader: dict, suites: list[str]) -> str:
    """What the record says of the judge's held-out agreement with people, per suite."""
    record = reader.get("agreement")
    sha = str(reader.get("weights_sha256") or "?")[:12]
    if not isinstance(record, dict):
        return (f"The {reader.get('name', 'world judge')} (weights sha256 {sha}): its agreement with people was not "
                "measured for these weights (docs/world.md).")
    from bench.compbench.world import people_words  # the same words the compbench command prints

    parts = [f"{s} {people_words(reader, s)}" for s in suites]
    return (f"The {reader.get('name', 'world judge')} (weights sha256 {sha}) against people on held-out labelled "
            f"model images ({record.get('split', 'held-out')} split), precision / recall of its accept [95% CI]: "
            + "; ".join(parts) + " ('n/a': undefined; docs/world.md).")


def world_table(entries, *, strict: bool = False) -> Table:
    notes, _ = provenance_notes(entries, world_settings, strict, "T2I-CompBench on the shapes world")
    suites = list(dict.fromkeys(s for e in entries for s in e.data["suites"]))
    readers = {id(e): world_reader(e.data) for e in entries}
    keys = [k for k in READERS if any(r["key"] == k for r in readers.values())]  # the judge's columns first
    learned_metric = {s: sorted({e.data["suites"][s]["learned"]["metric"] for e in entries
                                 if "learned" in e.data["suites"].get(s, {})}) for s in suites}
    reader_col = {(s, k): f"{s} ({READERS[k]})" for s in suites for k in keys}
    learned_col = {s: f"{s} ({m[0] if len(m) == 1 else 'learned'})" for s, m in learned_metric.items() if m}
    columns = ["model", *(c for s in suites for c in (*(reader_col[s, k] for k in keys), learned_col.get(s)) if c)]
    shown, values, data = [], [], []
    for e in entries:
        key = readers[id(e)]["key"]
        cells, numbers = {"model": e.model}, {}
        raw = {"model": e.model, "file": where(e.path), "reader": readers[id(e)].get("name")}
        for s in suites:
            result = e.data["suites"].get(s)
            read = result[key] if result else None
            for k in keys:
                cells[reader_col[s, k]] = _cell(read) if read and k == key else "-"
                numbers[reader_col[s, k]] = read["score"] if read and k == key else None
            raw.update({f"{s}_{key}": read["score"] if read else None,
                        f"{s}_{key}_ci_low": read["ci95"][0] if read else None,
                        f"{s}_{key}_ci_high": read["ci95"][1] if read else None,
                        f"{s}_images": read["images"] if read else None})
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
    bold = best_cells(pd.DataFrame(values, columns=list(reader_col.values())),
                      {c: True for c in reader_col.values()}, list(range(len(shown))))
    said = {"judge": "the world judge (bench.world.judge: it reads model images as people do; its measured agreement "
                     "with people on held-out labelled model images is in docs/world.md)",
            "oracle": "the exact oracle (bench.world.oracle: T2I-CompBench's per-image definitions on the exact facts "
                      "of each scene; exact on renders, it rejects most objects a model draws)"}
    lead = [f"The shapes world's own prompt suites, scored per image by {' or '.join(said[k] for k in keys)}, "
            "not T2I-CompBench's prompts: these numbers do not compare with the paper's"
            + (", and the world judge's do not compare with the oracle's" if len(keys) > 1 else "")
            + ". Score ± half the width of its 95% CI (percentile bootstrap over prompts); the CSV has the exact "
            "bounds. Bold: the best score of a column."]
    judges = {}
    for e in entries:
        r = readers[id(e)]
        if r["key"] == "judge":
            judges.setdefault((r.get("name"), r.get("weights_sha256")), r)
    lead += [_people_note(r, suites) for r in judges.values()]
    if learned_col:
        lead.append("Learned columns: the learned metric on the same images (B-VQA for the attribute suites, UniDet's "
                    "2D rules for spatial), with r its Pearson correlation over images with the reader that scored "
                    "the run ('-': a side is constant); '-' in a cell: the run had no evaluator for it.")
    return Table("compbench_world", "T2I-CompBench on the shapes world", pd.DataFrame(shown, columns=columns),
                 lead + notes, bold, set(), pd.DataFrame(data))
