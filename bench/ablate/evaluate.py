"""One evaluation of a training-ablation checkpoint: held-out losses, oracle scores, world-FID.

``Evaluator(...)(ema_folder, out)`` measures a transformer (the EMA weights of a checkpoint) with
fixed inputs, so that every arm, seed and step is measured alike:

- ``val_mse``: the denoising loss (ε-MSE) on held-out images (never trained on) with their
  captions in the prompt suites' phrasing, at 5 noise levels (t = 100, 300, 500, 700, 900) with
  noise drawn once from a fixed seed: the same inputs for every model, so differences between
  models are not sampling noise. ``val_mse_null`` is the same with the null caption, and
  ``text_gain`` = ``val_mse_null`` − ``val_mse``: how much the caption helps the model denoise,
  a measure of text-image alignment that moves long before the oracle's scores do.
- ``oracle``: the mean oracle score (``bench.world.oracle.score``) of images sampled for the first
  prompts of the bundled suites of each category (fixed sampling seeds), per category too
  (``oracle_single`` ...), and ``binding_spatial``, the mean over colour, texture and spatial.
- ``colour_recall``: the share of the prompts' objects whose colour is the best-fitting colour of
  some blob in the image, recognised as an object or not: the oracle's lenient reading, which
  shows colour following the text before shapes are drawn well enough to be accepted.
- ``world_fid``: ``bench.fid.world.score_world`` on those images (small image counts: compare at
  equal counts only).

Oracle scoring runs in ``workers`` processes when asked (it is CPU work, slower than sampling on a GPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.world.dataset import load_suite

T_LEVELS = (100, 300, 500, 700, 900)
NOISE_SEED = 20261127
SAMPLE_SEED = 1000  # the sampling seeds: SAMPLE_SEED + j for the j-th image of a prompt
SAMPLER, GUIDANCE = "sde-dpm-solver", 2.0  # the demo's sampler (docs/world.md)
CATEGORIES = ("single", "color", "texture", "spatial")
BINDING_SPATIAL = ("color", "texture", "spatial")


def colour_recall(spec: dict, detections) -> float:
    """Share of ``spec``'s objects with a colour whose colour is some blob's (best-fitting) colour."""
    wanted = [o.get("color") for o in spec["objects"] if o.get("color")]
    if not wanted:
        return float("nan")
    seen = {d.color or d.fit.get("color_guess") for d in detections}
    return sum(c in seen for c in wanted) / len(wanted)


def score_one(job) -> tuple[float, float]:
    """(oracle score, colour recall) of one image file for one spec (a worker's task)."""
    from PIL import Image

    from bench.world.oracle import detect, score

    path, spec = job
    with Image.open(path) as im:
        image = im.convert("RGB")
    dets = detect(image)
    return score(image, spec, dets)["score"], colour_recall(spec, dets)


def eval_prompts(suites: Path, per_category: int, sample_seeds: int) -> tuple[list[dict], list[int]]:
    """The fixed evaluation set: (spec, seed) per image, the first prompts of each category."""
    specs, seeds = [], []
    for category in CATEGORIES:
        for spec in load_suite(suites, category)[:per_category]:
            for j in range(sample_seeds):
                specs.append(spec)
                seeds.append(SAMPLE_SEED + j)
    return specs, seeds


class Evaluator:
    """Loads the frozen T5 and VAE once and the held-out features; call it on a checkpoint's EMA folder.

    A context manager: the oracle's worker pool (``workers`` > 1) is closed on exit."""

    def __init__(self, components: Path, max_length: int, val_items: list, cache: Path, suites: Path, *,
                 per_category: int, sample_seeds: int, sample_steps: int, device, workers: int = 1):
        from pixart.features import FeatureStore
        from pixart.text import TextEncoder
        from pixart.vae import VAE

        self.device, self.sample_steps, self.workers = torch.device(device), sample_steps, workers
        self.text_encoder = TextEncoder.from_pretrained(components, max_length=max_length, device=self.device)
        self.vae = VAE.from_pretrained(components, device=self.device)
        store = FeatureStore(cache)
        parts = [store.get(it.key, max_length) for it in val_items]
        self.x0 = torch.stack([p[0] for p in parts])  # the posterior mean: no sampling noise
        self.y = torch.stack([p[2] for p in parts]).float()
        self.mask = torch.stack([p[3] for p in parts])
        g = torch.Generator().manual_seed(NOISE_SEED)
        self.noise = torch.randn((len(T_LEVELS), *self.x0.shape), generator=g)
        self.specs, self.seeds = eval_prompts(suites, per_category, sample_seeds)
        self.pool = None
        if workers > 1:
            from multiprocessing import get_context

            self.pool = get_context("spawn").Pool(workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None
        return False

    @torch.no_grad()
    def losses(self, model) -> dict:
        """val_mse, val_mse_null and text_gain of ``model`` on the held-out items (see the module)."""
        from pixart.diffusion import GaussianDiffusion

        diffusion = GaussianDiffusion(learn_sigma=model.config.pred_sigma)
        sums = {"val_mse": 0.0, "val_mse_null": 0.0}
        n, batch = len(self.x0), 128
        for k, level in enumerate(T_LEVELS):
            for i in range(0, n, batch):
                x0 = self.x0[i : i + batch].to(self.device)
                y, mask = self.y[i : i + batch].to(self.device), self.mask[i : i + batch].to(self.device)
                t = torch.full((len(x0),), level, device=self.device, dtype=torch.long)
                noise = self.noise[k, i : i + batch].to(self.device)
                null = model.y_embedder.y_embedding[: y.shape[1]].to(y.dtype)[None].expand_as(y)
                for key, cond in (("val_mse", y), ("val_mse_null", null)):
                    out = diffusion.training_losses(lambda x, tt, c=cond, m=mask: model(x, tt, c, m), x0, t, noise)
                    sums[key] += float(out["mse"].sum())
        result = {k: v / (n * len(T_LEVELS)) for k, v in sums.items()}
        result["text_gain"] = result["val_mse_null"] - result["val_mse"]
        return result

    def __call__(self, ema_folder: Path, out: Path) -> dict:
        """Every metric of the module's list for the transformer in ``ema_folder``; the images and the
        world-FID record are written under ``out``."""
        from bench.fid.world import score_world
        from pixart.checkpoints import load_transformer
        from pixart.pipeline import PixArtPipeline, SampleSettings

        model = load_transformer(ema_folder, device=self.device).float().eval()
        record = self.losses(model)
        pipe = PixArtPipeline(model, self.text_encoder, self.vae)
        side = model.config.input_size * self.vae.downsample
        settings = SampleSettings(sampler=SAMPLER, steps=self.sample_steps, guidance_scale=GUIDANCE, height=side,
                                  width=side, resolution_binning=False)
        images = pipe([s["prompt"] for s in self.specs], self.seeds, settings, batch_size=64, progress=False)
        (out / "images").mkdir(parents=True, exist_ok=True)
        files = []
        for i, image in enumerate(images):
            files.append(out / "images" / f"{i:04d}.png")
            image.save(files[-1])
        jobs = list(zip(files, self.specs))
        scored = self.pool.map(score_one, jobs) if self.pool is not None else [score_one(j) for j in jobs]
        scores = np.array([s for s, _ in scored])
        recall = np.array([r for _, r in scored])
        categories = np.array([s["category"] for s in self.specs])
        record["oracle"] = float(scores.mean())
        for c in CATEGORIES:
            record[f"oracle_{c}"] = float(scores[categories == c].mean())
        record["binding_spatial"] = float(scores[np.isin(categories, BINDING_SPATIAL)].mean())
        record["colour_recall"] = float(np.nanmean(recall))
        fid = score_world(files, self.specs, self.seeds, out / "world-fid")
        record["world_fid"] = float(fid["fid"])
        record["images"] = len(files)
        record["per_image"] = {"score": scores.tolist(), "colour_recall": recall.tolist()}
        return record
