"""Score T2I-CompBench categories: images in the official layout → per-image scores → results.

For each category, ``score_category`` lists ``FOLDER/samples/`` (``bench.compbench.samples``), runs
the category's official metric, writes the official ``vqa_result.json`` files where the official
scripts write them (so existing tooling reads our output), and summarises the scores with a CI over
prompts (``bench.compbench.results``). ``run_compbench`` does that for several categories, after
generating the images with any model through the generation store (``bench.generate``) when
asked, and writes ``OUT/results.json`` and ``OUT/per_image.csv``.

Scores are cached per category (``FOLDER/compbench_scores.json``): a rerun with the same images
(by SHA-256) and the same evaluators reuses them, so an interrupted run resumes where it stopped.

Metric per category (``METRICS``): color / shape / texture → B-VQA; spatial → UniDet's 2D rules;
non_spatial → CLIPScore; complex → 3-in-1 of B-VQA, the 2D rules on the complex parser and the
adjective-free CLIPScore; 3d_spatial → UniDet's 3D rules with a depth model; numeracy → counting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from bench.compbench.results import per_image_rows, summarise
from bench.compbench.samples import ImageScore, SampleImage, list_samples, write_vqa_result
from bench.errors import BenchError
from pixart.errors import read_json
from pixart.files import sha256_files, write_json_atomic

SCORES_FILE = "compbench_scores.json"
# what each category needs, as the CLI options that provide it
NEEDS = {"color": ("blip",), "shape": ("blip",), "texture": ("blip",), "spatial": ("detector",),
         "non_spatial": ("clip",), "complex": ("blip", "detector", "clip"), "3d_spatial": ("detector", "depth"),
         "numeracy": ("detector",)}
OPTION = {"blip": "--blip PATH (BLIP VQA: Salesforce/blip-vqa-capfilt-large)",
          "clip": "--clip PATH (CLIP ViT-B/32: openai/clip-vit-base-patch32, or OpenAI's ViT-B-32.pt)",
          "detector": "--detections FILE or --detector owlv2:PATH | grounding-dino:PATH",
          "depth": "--depth PATH (DPT-Hybrid MiDaS: Intel/dpt-hybrid-midas) or --depth-dir DIR"}
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


@dataclass
class Evaluators:
    """The evaluator models and settings a run uses (CLI options of ``pixart-bench compbench``)."""

    blip: str | None = None
    clip: str | None = None
    clip_backend: str = "auto"
    detector: str | None = None  # "owlv2:PATH" or "grounding-dino:PATH"
    detections: str | None = None  # a JSON file of detections made by any detector (e.g. UniDet)
    depth: str | None = None
    depth_dir: str | None = None  # depth maps made elsewhere, instead of a depth model
    threshold: float = 0.5  # detector confidence (UniDet's calibration)
    np_num: int = 8
    spacy_model: str = "en_core_web_sm"
    device: str = "cpu"
    batch_size: int = 32

    def has(self, need: str) -> bool:
        if need == "detector":
            return bool(self.detector or self.detections)
        if need == "depth":
            return bool(self.depth or self.depth_dir)
        return bool(getattr(self, need))

    def check(self, categories: list[str]) -> None:
        """BenchError naming every option the chosen categories need and lack, before any work."""
        if self.detector and self.detections:
            raise BenchError("give one of --detector and --detections, not both")
        missing = {need: [c for c in categories if need in NEEDS[c]] for need in ("blip", "clip", "detector", "depth")}
        lacking = [f"{OPTION[need]} for {', '.join(cats)}" for need, cats in missing.items() if cats and not self.has(need)]
        if lacking:
            raise BenchError("missing evaluators: " + "; ".join(lacking) + ". Weights come from local folders or the "
                             "Hugging Face cache; choose fewer categories with --categories")


def make_scorer(category: str, ev: Evaluators):
    """The category's official metric as a ``Scorer`` (``bench.compbench.samples``)."""
    from bench.compbench.parse import Parser

    parser = Parser(ev.spacy_model)
    if category in ("color", "shape", "texture"):
        return _blip(ev, parser)
    if category == "non_spatial":
        return _clip(ev, parser, complex=False)
    if category == "spatial":
        return _spatial(ev, parser, complex=False)
    if category == "complex":
        from bench.compbench.three_in_one import ThreeInOne

        return ThreeInOne(_blip(ev, parser), _spatial(ev, parser, complex=True), _clip(ev, parser, complex=True))
    if category == "3d_spatial":
        from bench.compbench.spatial3d import Spatial3DScorer

        return Spatial3DScorer(_detector(ev), ev.depth, depth_dir=ev.depth_dir, device=ev.device, parser=parser,
                               threshold=ev.threshold)
    if category == "numeracy":
        from bench.compbench.numeracy import NumeracyScorer

        return NumeracyScorer(_detector(ev), parser=parser, threshold=ev.threshold)
    raise BenchError(f"unknown category {category!r}")


def _blip(ev: Evaluators, parser):
    from bench.compbench.blip_vqa import BlipVqaScorer

    return BlipVqaScorer(ev.blip, device=ev.device, batch_size=ev.batch_size, np_num=ev.np_num, parser=parser)


def _clip(ev: Evaluators, parser, complex: bool):
    from bench.compbench.clipscore import ClipScorer

    return ClipScorer(ev.clip, backend=ev.clip_backend, complex=complex, device=ev.device,
                      batch_size=ev.batch_size, parser=parser)


def _spatial(ev: Evaluators, parser, complex: bool):
    from bench.compbench.spatial import Spatial2DScorer

    return Spatial2DScorer(_detector(ev), complex=complex, parser=parser, threshold=ev.threshold)


def _detector(ev: Evaluators):
    from bench.compbench.open_vocab import load_detector

    return load_detector(ev.detector, detections=ev.detections, device=ev.device)


def image_hashes(images: list[SampleImage]) -> dict[str, str]:
    return {im.file: sha256_files([im.path]) for im in images}


def score_category(folder: str | Path, category: str, scorer, *, progress: bool = True, log=print) -> dict:
    """Score ``folder/samples/`` with ``scorer``; write the official vqa_result.json files and the cache.
    Returns ``summarise``'s dict plus "provenance" and "rows" (the per-image rows)."""
    folder = Path(folder)
    images = list_samples(folder)
    hashes = image_hashes(images)
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
