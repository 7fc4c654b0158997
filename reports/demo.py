"""The demo's part of a report: its tables and figures, from the files ``pixart-bench demo`` wrote.

A demo folder holds ``results.json`` (scores with CIs, world-FID, settings, parameter table),
``images/<category>/manifest.json`` with the samples, and names the reference pipeline whose
``training.json`` has the loss curves, wall times and VAE PSNR. ``pixart-bench report`` reads it as
an entry of kind "demo":

- ``demo_tables(entry)``: the world judge's scores per category (score, 95% CI, images, the judge's
  held-out agreement with people, the exact oracle's score, VAE ceiling, objects found; demos
  made before the judge: the oracle's) with the settings, world-FID and reference training as footnotes, and the
  adaLN parameter table;
- ``demo_table(entries)``: several demo runs side by side, a row per run (scores and world-FID);
- ``write_demo_figures(folder)``: ``grid.png`` (the first prompt of each category, one image per
  seed, each marked with the score it was given) and ``loss_curves.svg`` (the reference model's training loss), in the demo folder.

``reports.build.write_demo_report`` puts the two together at the end of ``pixart-bench demo``:
the figures, then ``report.md`` / ``report.html`` through ``reports.build.write_report``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image

from bench.world.demo import RESULTS, agreement_words
from reports.figures import image_grid, loss_curves_svg
from reports.provenance import files_note
from reports.tables import Table, best_cells

GRID = "grid.png"
LOSS_CURVES = "loss_curves.svg"
SCORE_COLUMNS = ["category", "score", "95% CI", "images", "judge vs people (held-out)", "exact oracle",
                 "VAE ceiling", "objects found per image", "images with extra objects"]
PARAMETERS_NOTE = ("Transformer parameters, counted from the model definitions: PixArt-α XL/2 with adaLN-single and "
                   "with per-block adaLN, the 1024-MS variant, and class-conditional DiT-XL/2.")


def _training_curves(results: dict) -> dict | None:
    """The reference pipeline's loss curves ({stage: [[step, loss], ...]}), None when it has none."""
    training_file = Path(results["reference"]) / "training.json"
    if not training_file.is_file():
        return None
    return json.loads(training_file.read_text()).get("loss_curves") or None


def write_demo_figures(folder: str | Path) -> list[Path]:
    """``grid.png`` and, when the reference pipeline has loss curves, ``loss_curves.svg`` in the demo
    folder; their paths."""
    folder = Path(folder)
    results = json.loads((folder / RESULTS).read_text())
    rows, marks = [], []
    for category, summary in results["scores"].items():
        manifest = json.loads((folder / "images" / category / "manifest.json").read_text())
        first = [e for e in manifest["images"] if e["index"] < results["seeds"]]  # the first prompt's images
        rows.append((manifest["prompts"][0], [Image.open(folder / "images" / category / e["file"]) for e in first]))
        verdicts = summary.get("per_image")  # demos before the judge have none
        marks.append([(f"{verdicts[e['file']]:.2f}", verdicts[e["file"]] >= 1.0) for e in first] if verdicts else [])
    paths = [image_grid(rows, folder / GRID, marks=marks if any(marks) else None)]
    curves = _training_curves(results)
    if curves:
        (folder / LOSS_CURVES).write_text(loss_curves_svg(curves))
        paths.append(folder / LOSS_CURVES)
    return paths


def scores_table(r: dict) -> Table:
    """The oracle scores per category of a demo's results (``run_demo``'s dict / results.json)."""
    frame = pd.DataFrame(
        [[cat, f"{v['score']:.3f}", f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]", v["images"],
          agreement_words(v.get("judge_agreement")) if "judge_agreement" in v else "-",
          f"{v['exact_oracle_score']:.3f}" if "exact_oracle_score" in v else "-", f"{v['vae_ceiling']:.3f}",
          f"{v['objects_per_image']:.2f}", v["images_with_extra_objects"]] for cat, v in r["scores"].items()],
        columns=SCORE_COLUMNS)
    settings = (f"Bundled reference model ({r['reference_parameters']:,} transformer parameters) on the shapes "
                f"world's prompt suites: {r['prompts_per_category']} prompts per category × {r['seeds']} seeds "
                f"(from seed {r['first_seed']}), {r['size']}×{r['size']} px, {r['sampler']} {r['steps']} steps, "
                f"cfg {r['cfg']}. " + _reader_note(r) + " 95% CIs are percentile bootstraps over images.")
    ceiling = ("VAE ceiling: the same reader's score of the ground-truth renderings after a round trip through the "
               "pipeline's VAE, the most a model decoded by it can be expected to reach. Objects found: every object "
               "the reader detects, right or wrong; more than the prompt names means fragments or copies.")
    fid = (f"World-FID (world feature extractor via torch-fidelity; generated vs rendered ground truth): "
           f"{r['world_fid']:.2f}.")
    notes = [settings, ceiling, fid]
    t = r.get("reference_training") or {}
    if t.get("vae_psnr_db") is not None or t.get("seconds"):
        parts = []
        if t.get("vae_psnr_db") is not None:
            parts.append(f"VAE reconstruction PSNR {t['vae_psnr_db']:.2f} dB")
        if t.get("seconds"):
            parts.append("wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in t["seconds"].items()))
        notes.append("Reference training: " + "; ".join(parts) + ".")
    notes.append(f"Made in {r['seconds']:.0f} s. In the demo folder: raw figures in results.json, images and "
                 f"manifests in images/, the first prompt of each category in {GRID}, the reference model's "
                 f"training loss in {LOSS_CURVES}.")
    title = "Demo: world judge scores per category" if "judge" in r else "Demo: oracle scores per category"
    return Table(key="demo_scores", title=title, frame=frame, notes=notes)


def _reader_note(r: dict) -> str:
    """Which reader scored a demo's images: the world judge (with where its agreement with people is
    measured) or, for demos made before it, the exact oracle."""
    if "judge" not in r:
        return "Scores come from the pixel oracle with T2I-CompBench's per-image definitions."
    judge = r["judge"]
    name = judge["name"] if judge else "the world judge (agreement with people not measured for these weights)"
    return (f"Scores come from {name}, with T2I-CompBench's per-image definitions; beside each, its precision and "
            "recall against people's verdicts on held-out labelled model images (exact 95% intervals; docs/world.md), "
            "and the exact oracle's score, which rejects most model images.")


def parameters_table(r: dict) -> Table:
    """The adaLN ablation's parameter counts (XL-2) that a demo records."""
    frame = pd.DataFrame([[row["model"], f"{row['total']:,}"] for row in r["parameter_table"]],
                         columns=["model", "parameters"])
    return Table(key="demo_parameters", title="Parameters (adaLN ablation, XL-2)", frame=frame,
                 notes=[PARAMETERS_NOTE])


def demo_tables(entry, key_suffix: str = "") -> list[Table]:
    """The tables of a "demo" report entry (anything with the demo's results.json dict as ``.data``).
    ``key_suffix`` tells the tables of several demos apart: it is added to their keys, and the
    entry's model to their titles."""
    tables = [scores_table(entry.data), parameters_table(entry.data)]
    if key_suffix:
        for table in tables:
            table.key += key_suffix
            table.title += f" ({getattr(entry, 'model', None) or key_suffix.strip('_')})"
    return tables


def demo_table(entries) -> Table:
    """The demo's oracle scores per category (± half the 95% CI) and world-FID, a row per demo run."""
    categories = list(dict.fromkeys(c for e in entries for c in e.data["scores"]))
    shown, values, data = [], [], []
    for e in entries:
        d = e.data
        cells = {"model": e.model, "sampler": f"{d.get('sampler')} {d.get('steps')} steps, cfg {d.get('cfg')}"}
        numbers, raw = {}, {"model": e.model, "sampler": d.get("sampler"), "steps": d.get("steps"), "cfg": d.get("cfg")}
        for c in categories:
            s = d["scores"].get(c)
            cells[c] = f"{s['score']:.3f} ± {(s['ci95'][1] - s['ci95'][0]) / 2:.3f}" if s else "-"
            numbers[c] = s["score"] if s else None
            raw.update({c: numbers[c], f"{c}_ci_low": s["ci95"][0] if s else None,
                        f"{c}_ci_high": s["ci95"][1] if s else None})
        cells["world-FID"], numbers["world-FID"] = f"{d['world_fid']:.2f}", d["world_fid"]
        raw["world_fid"] = d["world_fid"]
        shown.append(cells), values.append(numbers), data.append(raw)
    higher = {**{c: True for c in categories}, "world-FID": False}
    notes = [("Oracle score per category ± half the width of its 95% CI (bootstrap over images); world-FID against "
              "renderings of the same prompts (lower is better). Bold: the best."), files_note(entries)]
    bold = best_cells(pd.DataFrame(values), higher, list(range(len(shown))))
    return Table("demo", "Shapes-world demo", pd.DataFrame(shown), notes, bold, data=pd.DataFrame(data))
