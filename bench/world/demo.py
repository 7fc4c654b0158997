"""``pixart-bench demo``: the whole product on the bundled world model, offline, on a CPU, in minutes.

bundled reference pipeline → the world's compositional prompt suites through the real sampler and
the resumable generation store (``pixart.sample_run``) → oracle scores per category with
bootstrap 95% confidence intervals → world-FID (torch-fidelity with the world feature extractor;
real images are renderings of scenes that satisfy the same prompts) → parameter table →
``results.json``, from which ``reports.demo`` writes the Markdown report in ``demo-report/``:
score tables, an image grid (prompt → samples), and the reference model's training loss curves.

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
from PIL import Image

import bench.world
from bench.stats import bootstrap_ci
from bench.world.dataset import CATEGORIES, load_suite, scene_from_spec
from bench.world.render import render
from pixart.files import write_json_atomic
from reports.demo import write_demo_report

REFERENCE = Path(bench.world.__file__).parent / "reference"
SUITES = Path(bench.world.__file__).parent / "suites"
# The demo's sampler: stochastic DPM-Solver++ (fresh noise at every step), 20 steps, guidance 2.
# On the world model (docs/experiments/reference-model.md, "Sampler and guidance") stochastic samplers at
# guidance 1.5-2.5 score about twice what deterministic DPM-Solver at guidance 4.5 does, because
# the fresh noise corrects the small model's errors instead of carrying them to the end; 20 SDE
# steps score as well as IDDPM's 100 at a fifth of the cost.
DEMO_SAMPLER, DEMO_STEPS, DEMO_CFG = "sde-dpm-solver", 20, 2.0


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

    results, real, generated = {}, [], []
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
                             # means fragments or copies (docs/experiments/reference-model.md, "Stage 3 (128 px) loses what stage 2 learned")
                             "objects_per_image": float(np.mean(n_found)), "images_with_extra_objects": extra}
        log(f"{category:8s} {mean:.3f}  [{lo:.3f}, {hi:.3f}]  ({len(per_image)} images; VAE ceiling "
            f"{results[category]['vae_ceiling']:.3f}; {extra} with extra objects)")

    fid = world_fid(real, generated)["fid"]
    log(f"world-FID {fid:.2f} ({len(generated)} generated vs {len(real)} rendered images)")
    n_params = sum(p.numel() for p in pipe.transformer.parameters())
    training = json.loads((reference / "training.json").read_text()) if (reference / "training.json").is_file() else {}
    report = {"quick": quick, "prompts_per_category": n_prompts, "seeds": n_seeds, "first_seed": first_seed,
              "size": base, "sampler": settings.sampler,
              "steps": settings.steps, "cfg": settings.guidance_scale, "scores": results, "world_fid": fid, "reference_parameters": n_params,
              "reference": str(reference), "seconds": time.perf_counter() - t0, "parameter_table": parameter_table(),
              "reference_training": {k: v for k, v in training.items() if k != "loss_curves"}}
    write_json_atomic(out / "results.json", report)
    write_demo_report(out)
    return report

