"""The demo's report from its folder: ``report.md``, ``grid.png`` and ``loss_curves.svg``.

Reads what ``pixart-bench demo`` wrote: ``results.json`` (scores with CIs, world-FID, settings,
parameter table), ``images/<category>/manifest.json`` with the samples, and the reference
pipeline's ``training.json`` (loss curves, wall times, VAE PSNR) when it has one.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from reports.figures import image_grid, loss_curves_svg
from reports.tables import markdown_table


def write_demo_report(folder: str | Path) -> Path:
    """(Re)write the report files of a demo folder; returns the path of ``report.md``."""
    folder = Path(folder)
    results = json.loads((folder / "results.json").read_text())
    rows = []
    for category in results["scores"]:
        manifest = json.loads((folder / "images" / category / "manifest.json").read_text())
        first = [e for e in manifest["images"] if e["index"] < results["seeds"]]  # the first prompt's images
        rows.append((manifest["prompts"][0], [Image.open(folder / "images" / category / e["file"]) for e in first]))
    image_grid(rows, folder / "grid.png")
    training_file = Path(results["reference"]) / "training.json"
    curves = json.loads(training_file.read_text()).get("loss_curves") if training_file.is_file() else None
    if curves:
        (folder / "loss_curves.svg").write_text(loss_curves_svg(curves))
    report = folder / "report.md"
    report.write_text(demo_markdown(results, curves=bool(curves)))
    return report


def demo_markdown(r: dict, curves: bool) -> str:
    """The demo's Markdown report from its results (``run_demo``'s dict / results.json)."""
    lines = ["# pixart-bench demo report", "",
             f"Bundled reference model ({r['reference_parameters']:,} transformer parameters) on the shapes world's "
             f"prompt suites: {r['prompts_per_category']} prompts per category × {r['seeds']} seeds "
             f"(from seed {r['first_seed']}), {r['size']}×{r['size']} px, "
             f"{r['sampler']} {r['steps']} steps, cfg {r['cfg']}. Scores come from the pixel oracle with "
             "T2I-CompBench's per-image definitions; 95% CIs are percentile bootstraps over images.", ""]
    lines += markdown_table(
        ["category", "score", "95% CI", "images", "VAE ceiling", "objects found per image", "images with extra objects"],
        [[cat, f"{v['score']:.3f}", f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]", v["images"], f"{v['vae_ceiling']:.3f}",
          f"{v['objects_per_image']:.2f}", v["images_with_extra_objects"]] for cat, v in r["scores"].items()])
    lines += ["", "VAE ceiling: the oracle score of the ground-truth renderings after a round trip through the "
                  "pipeline's VAE, the most a model decoded by it can be expected to reach. Objects found: every "
                  "object the oracle detects, right or wrong; more than the prompt names means fragments or copies."]
    lines += ["", f"World-FID (world feature extractor via torch-fidelity; generated vs rendered ground truth): "
                  f"**{r['world_fid']:.2f}**", "", "## Samples", "", "![grid](grid.png)", ""]
    if curves:
        lines += ["## Reference training", "", "![loss curves](loss_curves.svg)", ""]
        t = r.get("reference_training", {})
        if t:
            lines.append(f"VAE reconstruction PSNR {t.get('vae_psnr_db', float('nan')):.2f} dB; wall time (s): "
                         + ", ".join(f"{k} {v:.0f}" for k, v in t.get("seconds", {}).items()))
            lines.append("")
    lines += ["## Parameters (adaLN ablation, XL-2)", ""]
    lines += markdown_table(["model", "parameters"], [[row["model"], f"{row['total']:,}"] for row in r["parameter_table"]])
    lines += ["", f"Made in {r['seconds']:.0f} s. Raw figures: results.json; images and manifests: images/."]
    return "\n".join(lines) + "\n"
