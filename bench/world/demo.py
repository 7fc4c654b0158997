"""``pixart-bench demo``'s measurements: the whole product on the bundled world model, offline, on a CPU,
in minutes.

bundled reference pipeline → the world's compositional prompt suites through the real sampler and
the resumable generation store (``pixart.sample_run``) → the world judge's scores per category
(``bench.world.judge``: it reads model images as people do; the exact oracle's score is kept beside
it) with bootstrap 95% confidence intervals and the judge's measured agreement with people on
held-out labelled model images → world-FID (``bench.fid.world.score_world``, the scoring of
``pixart-bench fid world``: torch-fidelity with the world feature extractor; real images are renderings
of scenes that satisfy the same prompts, kept in ``world-fid/reference/``) → parameter table →
``results.json`` (``run_demo``). The report is a layer above: ``reports.build.write_demo_report`` (the
tables and files of ``pixart-bench report``) writes ``report.md`` and the self-contained
``report.html`` in the same folder from ``results.json``: score tables, an image grid (prompt →
samples), and the reference model's training loss curves. The ``demo`` command runs both.

Each category also gets a *VAE ceiling*: the judge's score of the ground-truth renderings after a
round trip through the pipeline's own VAE. No transformer decoded by that VAE can be expected to
score above it, so a low score with a high ceiling points at the transformer, and a low ceiling
at the autoencoder.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image

import bench.world
from bench.errors import BenchError, check_out_folder, check_range
from bench.stats import bootstrap_ci
from bench.world.dataset import CATEGORIES, check_side, load_suite, scene_from_spec
from bench.world.render import render
from pixart.errors import read_json
from pixart.files import write_json_atomic

REFERENCE = Path(bench.world.__file__).parent / "reference"
SUITES = Path(bench.world.__file__).parent / "suites"
# The demo's sampler: stochastic DPM-Solver++ (fresh noise at every step), 20 steps, guidance 2.
# On the world model (docs/experiments/reference-model.md, "Sampler and guidance") stochastic samplers at
# guidance 1.5-2.5 score about twice what deterministic DPM-Solver at guidance 4.5 does, because
# the fresh noise corrects the small model's errors instead of carrying them to the end; 20 SDE
# steps score as well as IDDPM's 100 at a fifth of the cost.
DEMO_SAMPLER, DEMO_STEPS, DEMO_CFG = "sde-dpm-solver", 20, 2.0
RESULTS = "results.json"  # OUT/results.json: what run_demo measured, which the report is made from
WORLD_FID = "world-fid"  # OUT/world-fid/: the rendered references (reference/) and fid.json


def select_categories(names: list[str] | None) -> list[str]:
    """The named suites in ``CATEGORIES`` order (all when ``names`` is empty); BenchError names unknown ones."""
    unknown = sorted(set(names or ()) - set(CATEGORIES))
    if unknown:
        raise BenchError(f"--categories: unknown categories {unknown}; choose from {', '.join(CATEGORIES)}")
    return [c for c in CATEGORIES if c in names] if names else list(CATEGORIES)


def vae_round_trip(vae, image: Image.Image) -> Image.Image:
    """Encode (posterior mean) and decode one image with the pipeline's VAE wrapper; the image is
    read as the trainer reads it and written back as the pipeline writes its samples."""
    from diffusers.image_processor import VaeImageProcessor

    from pixart.data import to_tensor

    x = to_tensor(image.convert("RGB"), (image.height, image.width))[None]
    return VaeImageProcessor(do_normalize=True).postprocess(vae.decode(vae.encode(x)), output_type="pil")[0]


def agreement_words(a: dict | None) -> str:
    """A category's held-out judge-vs-people figures in a few words (what the demo prints): precision
    and recall with their exact (Clopper–Pearson) 95% intervals, and how many images the person accepted."""
    if not a:
        return "not measured"

    def f(key):
        v, ci = a[key], a.get(f"{key}_exact95")
        return "n/a" if v is None else f"{v:.2f} ({ci[0]:.2f}-{ci[1]:.2f})"

    return (f"precision {f('precision')}, recall {f('recall')}; the person accepted {a['human_accepts']} of "
            f"{a['images']} held-out images")


def check_reference(reference: Path) -> dict:
    """BenchError unless ``reference`` is a pipeline folder; returns its ``training.json`` record ({} if none)."""
    reference = Path(reference)
    if not reference.exists():
        raise BenchError(f"--reference {reference}: no such folder; give a pipeline folder (written by "
                         "`pixart-bench world train-reference` or `export-diffusers`)")
    if not (reference / "model_index.json").is_file():
        raise BenchError(f"--reference {reference} is not a pipeline folder (no model_index.json); give one written "
                         "by `pixart-bench world train-reference` or `export-diffusers`")
    record = reference / "training.json"
    return read_json(record, BenchError, "training record") if record.exists() else {}


def check_earlier_samples(out: Path, prompts: dict[str, list[str]], settings, seed: int, images_per_prompt: int,
                          checkpoint_sha256: str) -> None:
    """BenchError when a category's samples in ``out`` were drawn by another model or with other settings
    (their manifest differs from this run's), before anything is sampled: every category is checked."""
    from pixart.sample_run import MANIFEST

    for category, texts in prompts.items():
        path = out / "images" / category / MANIFEST
        if not path.exists():
            continue
        old = read_json(path, BenchError, "sample manifest")
        now = {"settings": dataclasses.asdict(settings), "seed": seed, "images_per_prompt": images_per_prompt,
               "checkpoint_sha256": checkpoint_sha256, "prompts": texts}
        changed = [k for k, v in now.items() if old.get(k) != v]
        if changed:
            raise BenchError(f"--out {out} holds {category} samples of a run with different {', '.join(changed)} "
                             "(another --reference, sampler, size, seeds or prompts); use another --out folder")


def run_demo(out: Path, *, quick: bool = False, reference: Path = REFERENCE, prompts_per_category: int | None = None,
             seeds: int | None = None, sampler: str | None = None, steps: int | None = None,
             cfg: float | None = None, categories: list[str] | None = None, size: int | None = None,
             first_seed: int = 0, log=print) -> dict:
    """``sampler`` None: the demo's (``DEMO_SAMPLER``, ``DEMO_STEPS`` steps unless ``steps``); a named
    sampler takes its own default steps unless ``steps``. ``cfg`` None: ``DEMO_CFG``.
    ``categories``: a subset of the suites (default all, in ``CATEGORIES`` order); ``size``: square
    image side in pixels (default the model's own, 128 for the bundle); ``first_seed``: image ``k``
    of a category uses seed ``first_seed + k`` (fresh seeds check a setting chosen on others).
    Bad options, a ``reference`` that is not a pipeline folder, or an ``out`` holding samples of
    another model or settings are a ``BenchError`` (``PipelineError`` for the sampler's settings and
    the pipeline itself) before anything is sampled or written. Writes and returns ``out/results.json``'s
    record; ``reports.build.write_demo_report(out)`` makes the report from it."""
    from bench.ablate.params import parameter_table
    from bench.fid.world import score_world
    from bench.world.judge import judge_agreement_record, judge_score
    from bench.world.oracle import detect, score
    from pixart.pipeline import PipelineError, PixArtPipeline, SampleSettings
    from pixart.sample_run import run_sampling

    t0 = time.perf_counter()
    out = check_out_folder(out, "--out")
    for option, value in (("--prompts", prompts_per_category), ("--seeds", seeds)):
        if value is not None:
            check_range(option, value, 1, whole=True)
    if size is not None:
        check_side("--size", size)
    check_range("--first-seed", first_seed, 0, 2**32 - 1, whole=True)
    categories = select_categories(categories)
    reference = Path(reference)
    training = check_reference(reference)
    n_prompts = prompts_per_category or (2 if quick else 4)
    n_seeds = seeds or (1 if quick else 4)
    suites = {c: load_suite(SUITES, c) for c in categories}
    fewest = min(suites, key=lambda c: len(suites[c]))
    if n_prompts > len(suites[fewest]):
        raise BenchError(f"--prompts {n_prompts}: the {fewest} suite has {len(suites[fewest])} prompts; "
                         "ask for at most that many")
    if n_prompts * n_seeds * len(categories) < 2:
        raise BenchError("world-FID needs at least 2 images, and this run makes 1: ask for more --prompts, --seeds "
                         "or --categories")
    specs_of = {c: specs[:n_prompts] for c, specs in suites.items()}
    if sampler is None:
        sampler, steps = DEMO_SAMPLER, DEMO_STEPS if steps is None else steps
    request = SampleSettings(sampler=sampler, steps=steps, guidance_scale=DEMO_CFG if cfg is None else cfg)
    request.check()  # sampler, steps and guidance, before the model is loaded
    pipe = PixArtPipeline.from_pretrained(reference)
    base = size or pipe.transformer.config.input_size * pipe.vae.downsample
    settings = dataclasses.replace(request, height=base, width=base).resolved(pipe)
    try:
        pipe.generation_size(base, base, settings.resolution_binning)
    except PipelineError as e:  # the model's own rule for the side (a multiple of its VAE factor x patch)
        where = f"--size {base}" if size else f"the model's own size {base}"
        raise BenchError(f"{where}: {e}") from None
    check_earlier_samples(out, {c: [s["prompt"] for s in specs] for c, specs in specs_of.items()}, settings,
                          first_seed, n_seeds, pipe.checkpoint_hash())
    out.mkdir(parents=True, exist_ok=True)

    judge = judge_agreement_record()
    results, generated, specs_used, seeds_used = {}, [], [], []
    for category, specs in specs_of.items():
        folder = out / "images" / category
        manifest = run_sampling(pipe, [s["prompt"] for s in specs], folder, settings, seed=first_seed,
                                images_per_prompt=n_seeds, batch_size=8, checkpoint=str(reference))
        per_image, exact, ceiling, n_found, extra = [], [], [], [], 0
        for entry in manifest["images"]:
            spec = specs[entry["index"] // n_seeds]
            image = Image.open(folder / entry["file"]).convert("RGB")
            found = detect(image)  # the exact oracle's reading, scored as it is and handed to the judge
            verdict = judge_score(image, spec, exact=found)
            per_image.append(verdict["score"])
            exact.append(score(image, spec, detections=found)["score"])
            n_found.append(len(verdict["details"]["detections"]))
            extra += n_found[-1] > len(spec["objects"])
            generated.append(folder / entry["file"])
            specs_used.append(spec)
            seeds_used.append(entry["seed"])
            truth = render(scene_from_spec(spec, random.Random(entry["seed"])), (image.height, image.width),
                           seed=entry["seed"])
            ceiling.append(judge_score(vae_round_trip(pipe.vae, truth), spec)["score"])
        mean = float(np.mean(per_image))
        lo, hi = bootstrap_ci(per_image)
        results[category] = {"score": mean, "ci95": [lo, hi], "images": len(per_image), "prompts": len(specs),
                             "vae_ceiling": float(np.mean(ceiling)), "exact_oracle_score": float(np.mean(exact)),
                             # the judge's score of each image, by file (the report marks the grid with them)
                             "per_image": {e["file"]: float(v) for e, v in zip(manifest["images"], per_image)},
                             "judge_agreement": judge["categories"].get(category) if judge else None,
                             # what the judge found, right or wrong: more objects than the prompt names
                             # means fragments or copies (docs/experiments/reference-model.md, "Stage 3 (128 px) loses what stage 2 learned")
                             "objects_per_image": float(np.mean(n_found)), "images_with_extra_objects": extra}
        log(f"{category:8s} {mean:.3f}  [{lo:.3f}, {hi:.3f}]  ({len(per_image)} images; VAE ceiling "
            f"{results[category]['vae_ceiling']:.3f}; {extra} with extra objects)  judge vs people: "
            f"{agreement_words(results[category]['judge_agreement'])}")

    # the world-FID of `pixart-bench fid world`: each image against the rendering of its own spec and seed
    world = score_world(generated, specs_used, seeds_used, out / WORLD_FID)
    fid = world["fid"]
    log(f"world-FID {fid:.2f} ({world['n_gen']} generated vs {world['n_ref']} rendered images)")
    n_params = sum(p.numel() for p in pipe.transformer.parameters())
    report = {"quick": quick, "prompts_per_category": n_prompts, "seeds": n_seeds, "first_seed": first_seed,
              "size": base, "sampler": settings.sampler,
              "steps": settings.steps, "cfg": settings.guidance_scale, "scores": results, "judge": judge, "world_fid": fid, "reference_parameters": n_params,
              "reference": str(reference), "seconds": time.perf_counter() - t0, "parameter_table": parameter_table(),
              "reference_training": {k: v for k, v in training.items() if k != "loss_curves"}}
    write_json_atomic(out / RESULTS, report)
    return report
