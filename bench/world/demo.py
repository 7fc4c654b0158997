"""``pixart-bench demo``: the whole product on the bundled world model, offline, on a CPU, in minutes.

bundled reference pipeline → the world's compositional prompt suites through the real sampler and
the resumable generation store (``pixart.sample_run``) → oracle scores per category with
bootstrap 95% confidence intervals → world-FID (torch-fidelity with the world feature extractor;
real images are renderings of scenes that satisfy the same prompts) → parameter table → a
Markdown report in ``demo-report/`` with score tables, an image grid (prompt → samples), and the
reference model's training loss curves.

Each category also gets a *VAE ceiling*: the oracle score of the ground-truth renderings after a
round trip through the pipeline's own VAE. No transformer decoded by that VAE can be expected to
score above it, so a low score with a high ceiling points at the transformer, and a low ceiling
at the autoencoder.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import bench.world
from bench.world.dataset import CATEGORIES, load_suite, scene_from_spec
from bench.world.render import render

REFERENCE = Path(bench.world.__file__).parent / "reference"
SUITES = Path(bench.world.__file__).parent / "suites"
# The demo's sampler: stochastic DPM-Solver++ (fresh noise at every step), 20 steps, guidance 2.
# Measured on the world model (docs/world.md, "Sampler and guidance"): stochastic samplers at
# guidance 1.5-2.5 score about twice what deterministic DPM-Solver at guidance 4.5 does, because
# the fresh noise corrects the small model's errors instead of carrying them to the end; 20 SDE
# steps score as well as IDDPM's 100 at a fifth of the cost.
DEMO_SAMPLER, DEMO_STEPS, DEMO_CFG = "sde-dpm-solver", 20, 2.0


def bootstrap_ci(values: list[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (resampling images)."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def select_categories(names: list[str] | None) -> list[str]:
    """The named suites in ``CATEGORIES`` order (all when ``names`` is empty); ValueError names unknown ones."""
    unknown = sorted(set(names or ()) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; choose from {', '.join(CATEGORIES)}")
    return [c for c in CATEGORIES if c in names] if names else list(CATEGORIES)


def vae_round_trip(vae, image: Image.Image) -> Image.Image:
    """Encode (posterior mean) and decode one image with the pipeline's VAE wrapper; the image is
    read as the trainer reads it and written back as the pipeline writes its samples."""
    from diffusers.image_processor import VaeImageProcessor

    from pixart.data import to_tensor

    x = to_tensor(image.convert("RGB"), (image.height, image.width))[None]
    return VaeImageProcessor(do_normalize=True).postprocess(vae.decode(vae.encode(x)), output_type="pil")[0]


def run_demo(out: Path, *, quick: bool = False, reference: Path = REFERENCE, prompts_per_category: int | None = None,
             seeds: int | None = None, sampler: str | None = None, steps: int | None = None,
             cfg: float | None = None, categories: list[str] | None = None, size: int | None = None,
             first_seed: int = 0, log=print) -> dict:
    """``sampler`` None: the demo's (``DEMO_SAMPLER``, ``DEMO_STEPS`` steps unless ``steps``); a named
    sampler takes its own default steps unless ``steps``. ``cfg`` None: ``DEMO_CFG``.
    ``categories``: a subset of the suites (default all, in ``CATEGORIES`` order); ``size``: square
    image side in pixels (default the model's own, 128 for the bundle); ``first_seed``: image ``k``
    of a category uses seed ``first_seed + k`` (fresh seeds check a setting chosen on others)."""
    from bench.ablate.params import parameter_table
    from bench.world.fid import world_fid
    from bench.world.oracle import score
    from pixart.pipeline import PixArtPipeline, SampleSettings
    from pixart.sample_run import run_sampling

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (reference / "model_index.json").is_file():
        raise FileNotFoundError(f"no bundled reference pipeline at {reference}; run `pixart-bench world train-reference`")
    n_prompts = prompts_per_category or (2 if quick else 4)
    n_seeds = seeds or (1 if quick else 4)
    categories = select_categories(categories)
    pipe = PixArtPipeline.from_pretrained(reference)
    base = size or pipe.transformer.config.input_size * pipe.vae.downsample
    if sampler is None:
        sampler, steps = DEMO_SAMPLER, steps or DEMO_STEPS
    settings = SampleSettings(sampler=sampler, steps=steps, guidance_scale=DEMO_CFG if cfg is None else cfg,
                              height=base, width=base).resolved(pipe)

    results, grid_rows, real, generated = {}, [], [], []
    for category in categories:
        specs = load_suite(SUITES, category)[:n_prompts]
        folder = out / "images" / category
        manifest = run_sampling(pipe, [s["prompt"] for s in specs], folder, settings, seed=first_seed,
                                images_per_prompt=n_seeds, batch_size=8, checkpoint=str(reference))
        per_image, ceiling, n_found, extra = [], [], [], 0
        for entry in manifest["images"]:
            spec = specs[entry["index"] // n_seeds]
            image = Image.open(folder / entry["file"]).convert("RGB")
            verdict = score(image, spec)
            per_image.append(verdict["score"])
            n_found.append(len(verdict["details"]["detections"]))
            extra += n_found[-1] > len(spec["objects"])
            generated.append(image)
            truth = render(scene_from_spec(spec, random.Random(entry["seed"])), (image.height, image.width),
                           seed=entry["seed"])
            real.append(truth)
            ceiling.append(score(vae_round_trip(pipe.vae, truth), spec)["score"])
        mean = float(np.mean(per_image))
        lo, hi = bootstrap_ci(per_image)
        results[category] = {"score": mean, "ci95": [lo, hi], "images": len(per_image), "prompts": len(specs),
                             "vae_ceiling": float(np.mean(ceiling)),
                             # what the oracle found, right or wrong: more objects than the prompt names
                             # means fragments or copies (docs/world.md, "Why stage 3 loses quality")
                             "objects_per_image": float(np.mean(n_found)), "images_with_extra_objects": extra}
        log(f"{category:8s} {mean:.3f}  [{lo:.3f}, {hi:.3f}]  ({len(per_image)} images; VAE ceiling "
            f"{results[category]['vae_ceiling']:.3f}; {extra} with extra objects)")
        first = specs[0]["prompt"]
        grid_rows.append((first, [Image.open(folder / e["file"]) for e in manifest["images"][:n_seeds]]))

    fid = world_fid(real, generated)["fid"]
    log(f"world-FID {fid:.2f} ({len(generated)} generated vs {len(real)} rendered images)")
    n_params = sum(p.numel() for p in pipe.transformer.parameters())
    training = json.loads((reference / "training.json").read_text()) if (reference / "training.json").is_file() else {}
    report = {"quick": quick, "prompts_per_category": n_prompts, "seeds": n_seeds, "first_seed": first_seed,
              "size": base, "sampler": settings.sampler,
              "steps": settings.steps, "cfg": settings.guidance_scale, "scores": results, "world_fid": fid, "reference_parameters": n_params,
              "reference": str(reference), "seconds": time.perf_counter() - t0, "parameter_table": parameter_table(),
              "reference_training": {k: v for k, v in training.items() if k != "loss_curves"}}
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    _grid(grid_rows, out / "grid.png")
    if training.get("loss_curves"):
        (out / "loss_curves.svg").write_text(_svg_curves(training["loss_curves"]))
    (out / "report.md").write_text(_markdown(report, bool(training.get("loss_curves"))))
    return report


def _grid(rows, path: Path, cell: int = 96):
    width = 260 + cell * max(len(r[1]) for r in rows)
    grid = Image.new("RGB", (width, cell * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, (prompt, images) in enumerate(rows):
        draw.text((4, i * cell + cell // 2 - 6), prompt[:42], fill=(0, 0, 0))
        for j, im in enumerate(images):
            grid.paste(im.convert("RGB").resize((cell, cell), Image.NEAREST), (260 + j * cell, i * cell))
    grid.save(path)


def _svg_curves(curves: dict, w: int = 640, h: int = 240) -> str:
    """Training loss per stage as an SVG line chart (no plotting library needed for a few polylines).
    Every stage gets a line; colours repeat after six (a continued bundle has seven stages or more)."""
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    all_loss = [p[1] for pts in curves.values() for p in pts]
    lo, hi = min(all_loss), max(all_loss)
    total = sum(len(p) for p in curves.values())
    parts, offset = [], 0
    for i, (name, pts) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        xy = " ".join(f"{40 + (offset + k) / max(total - 1, 1) * (w - 60):.1f},"
                      f"{h - 30 - (p[1] - lo) / max(hi - lo, 1e-9) * (h - 50):.1f}" for k, p in enumerate(pts))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1" points="{xy}"/>')
        parts.append(f'<text x="{40 + offset / max(total - 1, 1) * (w - 60):.0f}" y="14" font-size="11" fill="{color}">{name}</text>')
        offset += len(pts)
    axes = (f'<text x="2" y="{h - 30}" font-size="10">{lo:.3f}</text><text x="2" y="24" font-size="10">{hi:.3f}</text>'
            f'<line x1="40" y1="{h - 30}" x2="{w - 20}" y2="{h - 30}" stroke="#888"/>'
            f'<text x="{w // 2 - 60}" y="{h - 8}" font-size="11">training step (stages in order)</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">{axes}{"".join(parts)}</svg>\n'


def _markdown(r: dict, curves: bool) -> str:
    lines = ["# pixart-bench demo report", "",
             f"Bundled reference model ({r['reference_parameters']:,} transformer parameters) on the shapes world's "
             f"prompt suites: {r['prompts_per_category']} prompts per category × {r['seeds']} seeds "
             f"(from seed {r['first_seed']}), {r['size']}×{r['size']} px, "
             f"{r['sampler']} {r['steps']} steps, cfg {r['cfg']}. Scores come from the pixel oracle with "
             "T2I-CompBench's per-image definitions; 95% CIs are percentile bootstraps over images.", "",
             "| category | score | 95% CI | images | VAE ceiling | objects found per image | images with extra objects |",
             "|---|---|---|---|---|---|---|"]
    for cat, v in r["scores"].items():
        lines.append(f"| {cat} | {v['score']:.3f} | [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] | {v['images']} "
                     f"| {v['vae_ceiling']:.3f} | {v['objects_per_image']:.2f} | {v['images_with_extra_objects']} |")
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
    lines += ["## Parameters (adaLN ablation, XL-2)", "", "| model | parameters |", "|---|---|"]
    lines += [f"| {row['model']} | {row['total']:,} |" for row in r["parameter_table"]]
    lines += ["", f"Made in {r['seconds']:.0f} s. Raw figures: results.json; images and manifests: images/."]
    return "\n".join(lines) + "\n"
