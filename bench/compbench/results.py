"""A category's per-image scores → its score, a 95% CI over prompts, and the result files.

- The category score is the mean over all images, as the official scripts compute it.
- The CI is a percentile bootstrap over *prompts* (``bench.stats.bootstrap_ci`` of the per-prompt
  means): the 10 images of a prompt share its difficulty, so resampling images would understate the
  uncertainty of a 300-prompt benchmark. With the same number of images per prompt, the mean of
  the per-prompt means is the category score.
- ``OUT/per_image.csv``: one row per scored image (``category,file,prompt,score,metric``), ``file``
  being the image's name in ``samples/``.
- ``OUT/results.json``: every category's score, CI, counts, metric and the provenance of its
  evaluators, with the run's settings (written by the caller, ``bench.compbench.run``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from bench.compbench.published import COLUMN_NAMES, PIXART_ALPHA
from bench.compbench.samples import ImageScore, SampleImage
from bench.markdown import markdown_table
from bench.stats import bootstrap_ci
from pixart.files import write_text_atomic

CSV_COLUMNS = ("category", "file", "prompt", "score", "metric")


def summarise(category: str, metric: str, images: list[SampleImage], scores: list[ImageScore]) -> dict:
    """{"score", "ci95", "images", "prompts", "metric", "per_prompt": {prompt: mean}} of one category."""
    values = np.array([s.score for s in scores], dtype=float)
    by_prompt: dict[str, list[float]] = {}
    for im, s in zip(images, scores, strict=True):
        by_prompt.setdefault(im.prompt, []).append(s.score)
    per_prompt = {p: float(np.mean(v)) for p, v in by_prompt.items()}
    lo, hi = bootstrap_ci(list(per_prompt.values()))
    return {"category": category, "metric": metric, "score": float(values.mean()), "ci95": [lo, hi],
            "images": len(values), "prompts": len(per_prompt), "per_prompt": per_prompt}


def per_image_rows(category: str, metric: str, images: list[SampleImage], scores: list[ImageScore]) -> list[dict]:
    return [{"category": category, "file": im.file, "prompt": im.prompt, "score": s.score, "metric": metric}
            for im, s in zip(images, scores, strict=True)]


def write_per_image_csv(path: str | Path, rows: list[dict]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.6f}" if k == "score" else row[k]) for k in CSV_COLUMNS})
    return write_text_atomic(path, buf.getvalue())


def table(results: dict[str, dict], model: str, published: tuple[str, ...] = ("current",),
          protocol: dict | None = None) -> str:
    """The paper's layout (categories as columns) in Markdown: this run's row with its 95% CIs (and, with
    ``protocol``, what it verified of the official protocol: "official", "incomplete (2 of 300
    prompts)", ...), and the published PixArt-α rows, marked "published". Categories not run are left out."""
    from bench.compbench.protocol import describe

    cats = [c for c in COLUMN_NAMES if c in results]
    label = f"{model} ({describe(protocol, results)})" if protocol is not None else model
    rows = [[label, *(f"{results[c]['score']:.4f} [{results[c]['ci95'][0]:.4f}, {results[c]['ci95'][1]:.4f}]"
                      for c in cats)]]
    for key in published:
        row = PIXART_ALPHA[key]
        rows.append([row["label"], *(f"{row['scores'][c]:.4f}" if c in row["scores"] else "-" for c in cats)])
    header = ["model", *(f"{COLUMN_NAMES[c]} ({results[c]['metric']})" for c in cats)]
    return "\n".join(markdown_table(header, rows)) + "\n"
