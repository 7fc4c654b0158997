"""The trainer's batches: this process's share of each step, from raw images (encoded by T5 and
the VAE on the fly) or from a feature cache (read item by item, or preloaded into memory).

A batch is one aspect bucket; the order is ``pixart.data.BucketBatches``' (a function of seed and
epoch), and the latents' noise comes from the step's generator, so a resumed run sees the batches
and draws of the uninterrupted one.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from pixart.data import BucketBatches, DataError, check_images, load_image, to_tensor
from pixart.errors import PipelineError
from pixart.features import FeatureStore, cache_settings, posterior
from pixart.model import trim_text_padding
from pixart.train_config import TrainConfig


class Batches:
    """Yields this process's (latents-or-images, y, mask, labels, bucket) for a step; raw or cached."""

    def __init__(self, cfg: TrainConfig, items, rank: int, world: int, device, log):
        self.cfg, self.items, self.rank, self.world, self.device, self.log = cfg, items, rank, world, device, log
        d = cfg.data
        bucketer = d.bucketer()
        self.store = FeatureStore(d.features) if d.features else None
        if self.store is not None:
            self.store.check(cache_settings(bucketer, cfg.max_length))
            missing = [it.key for it in items if it.key not in self.store]
            if missing:
                raise DataError(f"{len(missing)} items are not in the feature cache {d.features} (e.g. {missing[0]}); "
                                "run `pixart-bench extract-features` first")
            self.text_encoder = self.vae = None
            self.table = PreloadedFeatures(self.store, items, cfg.max_length, device) if d.preload_features else None
        else:
            if not d.skip_bad:  # with skip_bad, an unreadable image is left out of its batch when met
                check_images(items)
            self.text_encoder, self.vae = load_encoders(cfg, device)
        bucket_of = [bucketer(it) for it in items]
        self.order = BucketBatches(bucket_of, cfg.batch_size * world, cfg.seed)

    def get(self, step: int, gen: torch.Generator, device_gen: torch.Generator | None = None):
        """``device_gen`` (on the training device) draws the latents' noise instead of ``gen``.

        Captions come trimmed of the padding slots no caption of the batch uses (``trim_text_padding``),
        by the batch source rather than the loop: for the preloaded cache the trim is worked out on the host."""
        bucket, idx = self.order.batch(step, self.rank, self.world)
        items = [self.items[i] for i in idx]
        labels = to_device([int(it.label or 0) for it in items], self.device)
        if self.store is not None and self.table is not None:
            mean, std, y, mask = self.table.get(idx)
        elif self.store is not None:
            parts = [self.store.get(it.key, self.cfg.max_length) for it in items]
            mean, std = torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])
            y, mask = trim_text_padding(torch.stack([p[2] for p in parts]), torch.stack([p[3] for p in parts]))
        else:
            images, kept, bad = [], [], []
            for it in items:
                try:
                    images.append(to_tensor(load_image(it.path), bucket))
                    kept.append(it)
                except DataError as e:
                    if not self.cfg.data.skip_bad:
                        raise
                    self.log(f"skipping: {e}")
                    bad.append(e)
            if not images:
                raise DataError(f"every image of step {step}'s batch was unreadable (data.skip_bad skipped them), "
                                f"e.g. {bad[0]}")
            labels = to_device([int(it.label or 0) for it in kept], self.device)
            items = kept
            mean, std = posterior(self.vae, torch.stack(images))
            y, mask = (trim_text_padding(*self.text_encoder.encode([it.caption for it in items]))
                       if not self.cfg.class_conditional else (None, None))
            mean, std = mean.float().cpu(), std.float().cpu()
        if device_gen is not None:
            mean, std = mean.to(self.device), std.to(self.device)
            eps = torch.randn(mean.shape, generator=device_gen, device=self.device)
        else:
            eps = torch.randn(mean.shape, generator=gen).to(mean.device)
        latents = (mean + std * eps) * self.cfg.latent_scale
        if y is not None:
            y, mask = y.float().to(self.device), mask.to(self.device)
        return latents.to(self.device), y, mask, labels, bucket


def to_device(values, device) -> torch.Tensor:
    """A host list as a tensor on ``device``. To a GPU through pinned memory without waiting: a plain
    ``torch.tensor(..., device="cuda")`` copy synchronises the stream, so the host could not queue
    the next step's kernels while the GPU works."""
    t = torch.tensor(values)
    if torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


class PreloadedFeatures:
    """The feature cache of ``items``, read once into one stacked tensor per latent shape, so a batch
    is an index into memory instead of 4 × batch reads from the safetensors shards (at batch 1,024
    those reads, not the GPU, set the pace). Same tensors as ``FeatureStore.get`` item by item, and
    trimmed as ``trim_text_padding`` trims them, from text lengths kept on the host."""

    def __init__(self, store: FeatureStore, items, max_length: int, device="cpu"):
        rows: dict[tuple, list] = {}
        self.where = []  # item index -> (latent shape, row)
        self.text_len = []  # item index -> 1 + its last real text slot (0: no real token)
        for it in tqdm(items, desc="loading feature cache", leave=False):
            part = store.get(it.key, max_length)
            group = rows.setdefault(tuple(part[0].shape), [])
            self.where.append((tuple(part[0].shape), len(group)))
            real = part[3].bool().nonzero()
            self.text_len.append(int(real.max()) + 1 if len(real) else 0)
            group.append(part)
        # kept on the training device: a batch is then an index there, with no host-to-device copy
        self.tables = {shape: [torch.stack([p[k] for p in group]).to(device) for k in range(4)]
                       for shape, group in rows.items()}

    def get(self, idx):
        shapes = {self.where[i][0] for i in idx}
        if len(shapes) != 1:  # a batch is one aspect bucket, so one latent shape
            raise DataError(f"a batch mixes latent shapes {sorted(shapes)}; the feature cache does not match the buckets")
        tables = self.tables[shapes.pop()]
        rows = to_device([self.where[i][1] for i in idx], tables[0].device)
        mean, std, y, mask = [t.index_select(0, rows) for t in tables]
        lengths = [self.text_len[i] for i in idx]
        if min(lengths) > 0:  # trim_text_padding's rule, without reading the mask back from the GPU
            y, mask = y[:, : max(lengths)], mask[:, : max(lengths)]
        return mean, std, y, mask


def load_encoders(cfg: TrainConfig, device):
    """The config's (T5 text encoder, VAE) on ``device``; no text encoder for class-conditional training."""
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    if not cfg.vae:
        raise DataError("config.vae is not set: images are encoded with a VAE folder (vae: PATH); or train from a "
                        "feature cache (data.features)")
    if not cfg.class_conditional and not cfg.t5:
        raise DataError("config.t5 is not set: captions are encoded with a T5 folder (t5: PATH); or train from a "
                        "feature cache (data.features)")
    vae = _loaded("vae", lambda: VAE.from_pretrained(cfg.vae, device=device))
    if cfg.class_conditional:
        return None, vae
    return _loaded("t5", lambda: TextEncoder.from_pretrained(cfg.t5, max_length=cfg.max_length, device=device)), vae


def _loaded(key: str, load):
    try:
        return load()
    except PipelineError as e:  # a missing or damaged folder, named by the loader; say which setting gave it
        raise PipelineError(f"config.{key}: {e}") from None

