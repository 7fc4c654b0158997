"""Score T2I-CompBench categories: images in the official layout → per-image scores → results.

For each category, ``score_category`` lists ``FOLDER/samples/`` (``bench.compbench.samples``), runs
the category's official metric, writes the official ``vqa_result.json`` files where the official
scripts write them (so existing tooling reads our output), and summarises the scores with a CI over
prompts (``bench.compbench.results``). ``run_compbench`` does that for several categories, after
generating the images with any model through the generation store (``bench.generate``) when
asked, and writes ``OUT/results.json`` and ``OUT/per_image.csv``.

Scores are cached per category (``FOLDER/compbench_scores.json``): a rerun with the same images
(by SHA-256) and the same evaluators reuses them, so an interrupted run resumes where it stopped.

Which metric scores which category, with which evaluators: ``bench.compbench.metrics``.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import asdict
from pathlib import Path

from bench.compbench.metrics import Evaluators, Scorers
from bench.compbench.prompts import list_file, list_sha256, load_prompts
from bench.compbench.protocol import OFFICIAL_IMAGES_PER_PROMPT, category_protocol, run_protocol, seeds_of
from bench.compbench.published import PIXART_ALPHA
from bench.compbench.results import per_image_rows, summarise, write_per_image_csv
from bench.compbench.samples import SAMPLES, ImageScore, SampleImage, list_samples, write_vqa_result
from bench.errors import BenchError
from pixart.errors import read_json
from pixart.files import package_versions, sha256_files, write_json_atomic

RESULTS = "results.json"
PER_IMAGE = "per_image.csv"

SCORES_FILE = "compbench_scores.json"
# where the official scripts write each metric's vqa_result.json, how they number the images, and
# whether they write the answers as 4-decimal text (BLIP) or numbers
OFFICIAL_OUTPUT = {"B-VQA": ("annotation_blip", "position", True),
                   "2D": ("labels/annotation_obj_detection_2d", "index", False),
                   "CLIPScore": ("annotation_clip", "position", False),
                   "3-in-1": ("annotation_3_in_1", "position", False),
                   "3D": ("labels/annotation_obj_detection_3d", "index", False),
                   "numeracy": ("annotation_num", "index", False)}
# the 3-in-1 components, by the name ``three_in_one`` keeps them under
COMPONENT_KIND = {"attribute": "B-VQA", "spatial": "2D", "action": "CLIPScore"}


def image_hashes(images: list[SampleImage]) -> dict[str, str]:
    return {im.file: sha256_files([im.path]) for im in images}


def score_category(folder: str | Path, category: str, scorer, *, images: list[SampleImage] | None = None,
                   hashes: dict[str, str] | None = None, progress: bool = True, log=print) -> dict:
    """Score ``folder/samples/`` (its ``images``, when already listed, and their SHA-256 ``hashes``, when
    known) with ``scorer``; write the official vqa_result.json files and the cache. Returns
    ``summarise``'s dict plus "provenance" and "rows"."""
    folder = Path(folder)
    images = images if images is not None else list_samples(folder)
    hashes = hashes if hashes is not None else image_hashes(images)
    provenance = scorer.provenance()
    cache_file = folder / SCORES_FILE
    cached = read_json(cache_file, BenchError, "score cache") if cache_file.is_file() else None
    if cached and cached.get("images") == hashes and cached.get("provenance") == provenance:
        scores = [ImageScore(s["score"], s.get("details", {})) for s in cached["scores"]]
        log(f"{category}: {len(images)} images scored before with the same evaluators (cache {cache_file})")
    else:
        scores = scorer.score(images, progress=progress)
        write_json_atomic(cache_file, {"category": category, "metric": scorer.metric, "provenance": provenance,
                                       "images": hashes, "scores": [asdict(s) for s in scores]})
    write_official_outputs(folder, scorer, images, scores)
    summary = summarise(category, scorer.metric, images, scores)
    summary.update(provenance=provenance, rows=per_image_rows(category, scorer.metric, images, scores))
    return summary


def write_official_outputs(folder: Path, scorer, images: list[SampleImage], scores: list[ImageScore]) -> None:
    """The metric's vqa_result.json (and, for 3-in-1, each component's) where the official scripts write them."""
    outputs = [(official_kind(scorer.metric), scores)]
    if scorer.metric == "3-in-1":
        from bench.compbench.three_in_one import components

        outputs += [(COMPONENT_KIND[name], part) for name, part in components(scores).items()]
    for kind, part in outputs:
        place, numbering, as_text = OFFICIAL_OUTPUT[kind]
        write_vqa_result(folder / place / "vqa_result.json", images, part, numbering, as_text)


def official_kind(metric: str) -> str:
    for kind in OFFICIAL_OUTPUT:
        if metric.startswith(kind):
            return kind
    raise ValueError(f"no official output place for metric {metric!r}")


def category_folder(images: Path, category: str, categories: list[str]) -> Path:
    """The folder of ``category``'s images under ``--images DIR``: ``DIR/<category>/samples/``, or
    ``DIR/samples/`` itself when one category is scored."""
    if (images / category / SAMPLES).is_dir():
        return images / category
    if len(categories) == 1 and (images / SAMPLES).is_dir():
        return images
    raise BenchError(f"--images {images}: no {category}/{SAMPLES}/ folder there (the official layout, one folder "
                     f"per category: {images}/{category}/{SAMPLES}/<prompt>_<NNNNNN>.png)")


def run_compbench(categories: list[str], out: str | Path, ev: Evaluators, *, source=None, images: Path | None = None,
                  color_list: str = "2025", limit: int | None = None,
                  images_per_prompt: int = OFFICIAL_IMAGES_PER_PROMPT, seed: int = 42, generation_batch: int = 4,
                  model: dict | None = None, assume_official_seeds: bool = False, progress: bool = True,
                  log=print) -> dict | None:
    """Generate (``source``) or find (``images``) each category's images, score them, and write
    ``OUT/results.json`` and ``OUT/per_image.csv``; returns the results (None in the processes of a
    multi-process launch other than the main one, which only share the generation).

    The protocol is recorded from evidence (``bench.compbench.protocol``): images counted per prompt,
    seeds from the folders' generate manifests checked by SHA-256 (or, with ``assume_official_seeds``
    for ``images``, assumed and said so)."""
    from bench.compbench.preflight import compbench_preflight
    from bench.generate import generate

    ev.check(categories)
    if (source is None) == (images is None):
        raise ValueError("give a source to generate from, or a folder of images")
    if assume_official_seeds and source is not None:
        raise BenchError("--assume-official-seeds is for --images: the images this run makes have their seeds "
                         "on record")
    out = Path(out)
    if source is not None:  # every evaluator and the spaCy pipeline checked before an image is made
        compbench_preflight(ev, categories, color_list=color_list, limit=limit, out=out)
    folders, lists = {}, {}
    for category in categories:
        lists[category] = {"file": list_file(category, color_list), "sha256": list_sha256(category, color_list)}
        if images is not None:
            folders[category] = category_folder(Path(images), category, categories)
            continue
        prompts = load_prompts(category, color_list)[:limit]
        folders[category] = out / category
        generate(source, prompts, folders[category], images_per_prompt=images_per_prompt, seed=seed,
                 batch_size=generation_batch, progress=progress, prompt_source={"category": category, **lists[category]},
                 log=log)
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    listed = {category: list_samples(folders[category]) for category in categories}  # every folder, before models load
    if images is not None:  # the images' prompts are known now; nothing is read yet
        compbench_preflight(ev, categories, prompts={c: [im.prompt for im in listed[c]] for c in categories})
    hashes = {category: image_hashes(listed[category]) for category in categories}
    facts = {}
    for category in categories:
        seeds, evidence, why = seeds_of(folders[category], listed[category], hashes[category],
                                        generated=source is not None, assume_official=assume_official_seeds)
        facts[category] = category_protocol(listed[category], load_prompts(category, color_list), seeds, evidence, why)
    protocol = run_protocol(facts, color_list=color_list, limit=limit)
    scorers = Scorers(ev)
    results, rows = {}, []
    for category in categories:
        summary = score_category(folders[category], category, scorers(category), images=listed[category],
                                 hashes=hashes[category], progress=progress, log=log)
        rows += summary.pop("rows")
        summary.update(folder=str(folders[category]), prompt_list=lists[category], protocol=facts[category],
                       complete=facts[category]["complete"])
        results[category] = summary
        log(f"{category}: {summary['score']:.4f} [{summary['ci95'][0]:.4f}, {summary['ci95'][1]:.4f}] "
            f"({summary['images']:,} images, {summary['prompts']} prompts; {summary['metric']})")
    record = {"format": "pixart-bench compbench", "version": 2,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "model": model or {"images": str(images)}, "protocol": protocol,
              "evaluators": asdict(ev), "categories": results, "published": PIXART_ALPHA,
              "versions": package_versions(("pixart-bench", "torch", "transformers", "diffusers", "spacy",
                                            "openai-clip"))}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / RESULTS, record)
    write_per_image_csv(out / PER_IMAGE, rows)
    return record


