"""The FID protocols end to end: zero-shot COCO FID-30K, and the same on the shapes world.

COCO (``prepare_coco`` then ``run_coco``)::

    plan = prepare_coco("out/fid-pixart", captions="captions_val2014.json", images="val2014", n=30000, seed=0)
    source = load_source("PixArt-alpha/PixArt-XL-2-512x512", device="cuda", dtype="fp16")
    record = run_coco(plan, source)          # out/fid-pixart/fid.json; record["fid"]

1. ``prepare_coco`` checks everything that can fail before a model is loaded: the captions file, the
   draw of ``n`` images and their captions (``bench.fid.coco``), the reference images under
   ``images`` (a missing one is named; each file's header is read, so one that is not an image or has
   transparency is named too), the resize policy, the feature extractor and its weights (loaded
   once, so a wrong file is named now and not after 30,000 images), the CLIP model for
   ``clip_model``, and that ``out`` holds no other run's caption list or images.
2. ``run_coco`` writes the list (``out/captions.jsonl``), generates image i from caption i with seed
   ``seed + i`` through the generation store (``bench.generate.generate(..., layout="indexed")``:
   ``out/samples/<NNNNNN>.png``, resumable, shared between the processes of ``accelerate launch``),
   then the main process computes FID with the core (``bench.fid.compute_fid``: both sides prepared
   with the same resize policy, the reference's statistics from the content-keyed cache, so a second
   model against the same reference costs only its own images) and writes ``out/fid.json``, whose
   ``protocol`` record says "coco-30k zero-shot" only when that FID used 30,000 generated images and the
   standard Inception (``bench.fid.labels``), "coco zero-shot" otherwise.

The shapes world (``prepare_world`` then ``run_world``): the prompts of the world's suites, generated
through the same store, against renderings of scenes that satisfy the same prompts, made with the
same seed at the same size (``bench.fid.world.score_world``, which the demo's world-FID uses too),
with the ``world-cnn`` extractor and no resize.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError, check_out_folder, check_range
from bench.fid.coco import (
    CAPTION_LIST,
    CAPTION_POLICIES,
    REFERENCE_POLICIES,
    CocoCaptions,
    caption_list_sha256,
    caption_list_text,
    check_policy,
    read_coco_captions,
    reference_files,
    sample_captions,
    write_caption_list,
)
from bench.fid.labels import COMMANDS, WORLD, coco_protocol
from bench.fid.world import FID_JSON, VERSIONS, score_world
from bench.world.fid import register_world_extractor
from pixart.files import package_versions, write_json_atomic


@dataclass
class FidSettings:
    """How FID is computed: the core's options, checked (``check``) before anything is generated."""

    extractor: str = "inception-v3-compat"
    weights: str | Path | None = None
    resize: str = "center-crop-256"
    kid: bool | None = False  # None: KID whenever both sides' features are at hand (the commands' default)
    cache_dir: str | Path | None = None
    device: str = "cpu"
    batch_size: int = 64

    def check(self) -> None:
        """BenchError for a bad resize policy, extractor, device, batch size or cache folder, and for
        extractor weights that are missing or do not load (named, with where to get them)."""
        from bench.fid.extractors import Extractor
        from bench.fid.images import check_resize

        check_resize(self.resize)
        check_range("--fid-batch-size", self.batch_size, 1, 4096, whole=True)
        if self.cache_dir is not None:
            check_out_folder(self.cache_dir, "--cache")
        Extractor(self.extractor, self.weights, "cpu", self.batch_size).module()  # loads: a wrong file fails now
        Extractor(self.extractor, self.weights, self.device, self.batch_size)  # the device, as the core will use it

    def compute(self, generated, reference) -> dict:
        from bench.fid import compute_fid

        return compute_fid(generated, reference, extractor=self.extractor, weights=self.weights, resize=self.resize,
                           cache_dir=self.cache_dir, kid=self.kid, device=self.device, batch_size=self.batch_size)


@dataclass
class CocoPlan:
    """A checked COCO run: what ``run_coco`` generates and compares."""

    out: Path
    coco: CocoCaptions
    rows: list[dict]
    references: list[Path]
    n: int
    seed: int
    caption_policy: str
    reference_policy: str
    images: Path
    fid: FidSettings
    clip: object | None = None  # a bench.compbench.clipscore.ClipScorer, when the CLIP score is asked for
    notes: dict = field(default_factory=dict)


def prepare_coco(out, *, captions, images, n: int = 30000, seed: int = 0, caption_policy: str = "random",
                 reference: str = "sampled", fid: FidSettings | None = None, clip_model: str | None = None) -> CocoPlan:
    """Check a COCO FID run and draw its captions (see the module's docstring); nothing is written."""
    out = check_out_folder(out, "--out")
    check_policy("--caption-policy", caption_policy, CAPTION_POLICIES)
    check_policy("--reference", reference, REFERENCE_POLICIES)
    from bench.fid.images import image_set

    fid = fid or FidSettings()
    coco = read_coco_captions(captions)
    rows = sample_captions(coco, n, seed, caption_policy)
    references = reference_files(coco, rows, images, reference)
    check_run_folder(out, rows)
    fid.check()
    image_set(references, "reference", fid.resize)  # every reference image's header: mode, size with "none"
    clip = None
    if clip_model is not None:
        from bench.compbench.clipscore import ClipScorer

        clip = ClipScorer(clip_model, device=fid.device)
    return CocoPlan(out, coco, rows, references, int(n), int(seed), caption_policy, reference, Path(images), fid, clip)


def check_run_folder(out: Path, rows: list[dict]) -> None:
    """BenchError when ``out`` holds another caption list, or generation records with none (a run of
    another command): the run would write its list or images among them."""
    from pixart.sample_run import MANIFEST, PROGRESS

    existing = out / CAPTION_LIST
    if existing.exists():
        if not existing.is_file() or existing.read_bytes() != caption_list_text(rows).encode():
            raise BenchError(f"{existing} holds another caption list (another --captions, --n, --seed or "
                             "--caption-policy made it); use another --out folder")
    elif (out / MANIFEST).exists() or (out / PROGRESS).exists():
        raise BenchError(f"--out {out} holds a generation run with no {CAPTION_LIST} (made by another command); "
                         "use another --out folder")


def main_process(rank: int | None, world: int | None) -> bool:
    """Whether this process computes FID: rank 0 of the given share, or of the launch (``RANK``)."""
    if rank is not None:
        return rank == 0
    return int(os.environ.get("RANK", "0")) == 0


def run_coco(plan: CocoPlan, source, *, batch_size: int = 4, rank: int | None = None, world: int | None = None,
             progress: bool = True, log=None) -> dict | None:
    """Write the caption list, generate the images, and (main process, once every image is made)
    compute FID and write ``fid.json``; returns its record, or None on the other processes."""
    from bench.generate import generate

    digest = write_caption_list(plan.rows, plan.out / CAPTION_LIST)
    prompts = [row["caption"] for row in plan.rows]
    where = {"coco_captions": str(plan.coco.path), "caption_list": CAPTION_LIST, "caption_list_sha256": digest,
             "n": plan.n, "seed": plan.seed, "caption_policy": plan.caption_policy}
    manifest = generate(source, prompts, plan.out, seed=plan.seed, batch_size=batch_size, rank=rank, world=world,
                        progress=progress, prompt_source=where, log=log, layout="indexed")
    if not main_process(rank, world):
        return None
    if len(manifest["images"]) < len(prompts):  # shares run one after another: FID comes after the last
        (log or print)(f"{len(manifest['images']):,} of {len(prompts):,} images are made; FID is computed once "
                       "every share has run")
        return None
    generated = [plan.out / e["file"] for e in sorted(manifest["images"], key=lambda e: e["index"])]
    result = plan.fid.compute(generated, plan.references)
    record = {**result, "protocol": coco_protocol(result, plan.n, plan.caption_policy), "n": plan.n,
              "seed": plan.seed, "caption_policy": plan.caption_policy, "reference_policy": plan.reference_policy,
              "caption_list": CAPTION_LIST,
              "caption_list_sha256": caption_list_sha256(plan.rows), "captions": len(plan.rows),
              "coco": {**plan.coco.describe(), "images_folder": str(plan.images)},
              "model": manifest["model"], "generation": {"settings": manifest["settings"], "seeds": manifest["seeds"],
                                                         "layout": manifest["layout"], "manifest": "manifest.json"}}
    if plan.clip is not None:
        record["clip_score"] = clip_score(plan.clip, generated, prompts, progress)
    record["versions"] = {**result.get("versions", {}), **package_versions(VERSIONS)}
    write_json_atomic(plan.out / FID_JSON, record)
    return record


def clip_score(scorer, files: list[Path], prompts: list[str], progress: bool = True) -> dict:
    """The mean raw cosine of each image with its caption (``ClipScorer``, T2I-CompBench's CLIPScore
    definition: no ×100, no clamp) and how it was computed."""
    import numpy as np

    from bench.compbench.samples import SampleImage

    scores = scorer.score([SampleImage(Path(f), p, i) for i, (f, p) in enumerate(zip(files, prompts))], progress)
    values = np.array([s.score for s in scores], dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "n": len(values),
            "scorer": scorer.provenance()}


# -- the shapes world --------------------------------------------------------------------------------------


@dataclass
class WorldPlan:
    out: Path
    specs: list[dict]  # image i's prompt spec
    categories: list[str]
    seed: int
    fid: FidSettings


def prepare_world(out, *, categories: list[str] | None = None, prompts_per_category: int | None = None,
                  images_per_prompt: int = 1, seed: int = 0, fid: FidSettings | None = None) -> WorldPlan:
    """Check a world FID run: the suites' first ``prompts_per_category`` prompts (all when None) of
    each category, each ``images_per_prompt`` times in a row."""
    from bench.world.dataset import load_suite
    from bench.world.demo import SUITES, select_categories

    out = check_out_folder(out, "--out")
    chosen = select_categories(categories)
    if prompts_per_category is not None:
        check_range("--prompts", prompts_per_category, 1, whole=True)
    check_range("--images-per-prompt", images_per_prompt, 1, 1000, whole=True)
    check_range("--seed", seed, 0, 2**32 - 1, whole=True)
    suites = {c: load_suite(SUITES, c) for c in chosen}
    fewest = min(suites, key=lambda c: len(suites[c]))
    if prompts_per_category is not None and prompts_per_category > len(suites[fewest]):
        raise BenchError(f"--prompts {prompts_per_category}: the {fewest} suite has {len(suites[fewest])} prompts; "
                         "ask for at most that many")
    specs = [spec for c in chosen for spec in suites[c][:prompts_per_category] for _ in range(images_per_prompt)]
    if len(specs) < 2:
        raise BenchError("world-FID needs at least 2 images, and this run makes 1: ask for more --prompts, "
                         "--images-per-prompt or --categories")
    fid = fid or FidSettings(extractor="world-cnn", resize="none")
    if (fid.extractor, fid.resize) != ("world-cnn", "none"):
        raise BenchError("world-FID uses the world-cnn extractor on images as they are (--resize none)")
    register_world_extractor()
    fid.check()
    return WorldPlan(out, specs, chosen, int(seed), fid)


def run_world(plan: WorldPlan, source, *, batch_size: int = 8, rank: int | None = None, world: int | None = None,
              progress: bool = True, log=None) -> dict | None:
    """Generate the world's prompts through the store (indexed layout, seed ``seed + i``) and score them
    against renderings (``score_world``); returns the record (None on processes other than the main one)."""
    from bench.generate import generate

    prompts = [s["prompt"] for s in plan.specs]
    where = {"world_suites": plan.categories, "prompts": len(prompts)}
    manifest = generate(source, prompts, plan.out, seed=plan.seed, batch_size=batch_size, rank=rank, world=world,
                        progress=progress, prompt_source=where, log=log, layout="indexed")
    if not main_process(rank, world) or len(manifest["images"]) < len(prompts):
        return None
    entries = sorted(manifest["images"], key=lambda e: e["index"])
    extra = {"categories": plan.categories, "seed": plan.seed,
             "model": manifest["model"], "generation": {"settings": manifest["settings"], "seeds": manifest["seeds"],
                                                        "layout": manifest["layout"], "manifest": "manifest.json"}}
    f = plan.fid
    return score_world([plan.out / e["file"] for e in entries], plan.specs, [e["seed"] for e in entries], plan.out,
                       weights=f.weights, kid=f.kid, cache_dir=f.cache_dir, device=f.device, batch_size=f.batch_size,
                       extra=extra, command=COMMANDS[WORLD])
