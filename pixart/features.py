"""Feature cache for training: T5 features and VAE posteriors, precomputed once, in safetensors shards.

Layout of ``DIR``::

    features.json                       what made the cache (T5, VAE, max_length, resolution, buckets)
    shard-r00-00000.safetensors         items of process 0; per item i: "{i}.mean", "{i}.std" [4, h, w]
    ...                                 (VAE posterior at the item's bucket) and "{i}.y" [n_tokens, C]
                                        (T5 features of the real tokens only); metadata maps item keys → i

As in the official ``tools/extract_features.py`` we store the posterior's mean and std, and the
trainer draws ``mean + std · ε`` at every use, so caching does not remove the VAE's sampling noise.
Padding tokens are not stored: they are rebuilt as zeros with mask 0 (T5 is never run on them by
the model, the mask hides them).

Resumable: a shard is written atomically when full; items found in existing shards are skipped.
Items are keyed by image path and caption (``Item.key``): after a caption changes, the item is
encoded again (the old entry stays in its shard, unused).
Multi-process (accelerate): process r takes items r, r + world, ...; shards are per process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from pixart.data import Bucketer, DataError, Item, load_image, to_tensor
from pixart.files import atomic_write, write_json_atomic

META = "features.json"


def extract_features(items: list[Item], out: str | os.PathLike, *, text_encoder, vae, bucketer: Bucketer,
                     rank: int = 0, world: int = 1, batch_size: int = 8, shard_size: int = 256,
                     progress: bool = True) -> int:
    """Encode this process's missing items, each at ``bucketer``'s size for it; returns how many were
    encoded now."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"t5": text_encoder.name, "max_length": text_encoder.max_length,
            "vae": str(getattr(vae.model.config, "_name_or_path", "")), "resolution": bucketer.resolutions[0],
            "multi_scale": bucketer.multi_scale}
    if len(bucketer.resolutions) > 1:  # only then, so caches made before mixed scales existed stay valid
        meta["scales"] = list(bucketer.resolutions[1:])
    _check_meta(out, meta, write=rank == 0)
    done = set(FeatureStore(out, check=False).index)
    mine = [it for i, it in enumerate(items) if i % world == rank and it.key not in done]
    bucket_for = {it.key: bucketer(it) for it in mine}
    mine.sort(key=lambda it: bucket_for[it.key])
    shard_no = len(list(out.glob(f"shard-r{rank:02d}-*.safetensors")))
    buffer: dict[str, torch.Tensor] = {}
    keys: dict[str, int] = {}
    bar = tqdm(total=len(mine), desc=f"features (process {rank})", disable=not progress)
    i = 0
    while i < len(mine):
        bucket = bucket_for[mine[i].key]
        batch = [mine[i]]
        while i + len(batch) < len(mine) and len(batch) < batch_size and bucket_for[mine[i + len(batch)].key] == bucket:
            batch.append(mine[i + len(batch)])
        images = torch.stack([to_tensor(load_image(it.path), bucket) for it in batch])
        mean, std = posterior(vae, images)
        y, mask = text_encoder.encode([it.caption for it in batch])
        for j, it in enumerate(batch):
            n = len(keys)
            keys[it.key] = n
            buffer[f"{n}.mean"], buffer[f"{n}.std"] = mean[j].cpu().contiguous(), std[j].cpu().contiguous()
            buffer[f"{n}.y"] = y[j, : int(mask[j].sum())].float().cpu().contiguous()
        i += len(batch)
        bar.update(len(batch))
        if len(keys) >= shard_size or i == len(mine):
            _write_shard(out / f"shard-r{rank:02d}-{shard_no:05d}.safetensors", buffer, keys)
            shard_no += 1
            buffer, keys = {}, {}
    bar.close()
    return len(mine)


@torch.no_grad()
def posterior(vae, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled posterior mean and std of the VAE for images in [-1, 1]: latents = mean + std · ε."""
    dist = vae.model.encode(images.to(vae.model.device, vae.model.dtype)).latent_dist
    return dist.mean * vae.scaling_factor, dist.std * vae.scaling_factor


def _write_shard(path: Path, tensors: dict, keys: dict):
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"keys": json.dumps(keys)}))


def _check_meta(out: Path, meta: dict, write: bool):
    path = out / META
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in meta if old.get(k) != meta[k]]
        if diff:
            raise DataError(f"{out} caches features made with different {', '.join(diff)}: {[old.get(k) for k in diff]}; "
                            "use another folder")
    elif write:
        write_json_atomic(path, meta)


class FeatureStore:
    """Read side: ``get(key, max_length)`` → (mean, std, y [max_length, C], mask [max_length])."""

    def __init__(self, root: str | os.PathLike, check: bool = True):
        self.root = Path(root)
        if check and not (self.root / META).is_file():
            raise DataError(f"no feature cache at {self.root} (missing {META}); run `pixart-bench extract-features`")
        self.index: dict[str, tuple[Path, int]] = {}
        for shard in sorted(self.root.glob("shard-*.safetensors")):
            with safe_open(shard, "pt") as f:
                for key, n in json.loads(f.metadata()["keys"]).items():
                    self.index[key] = (shard, n)
        self._open: dict[Path, object] = {}

    def meta(self) -> dict:
        return json.loads((self.root / META).read_text())

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def get(self, key: str, max_length: int):
        if key not in self.index:
            raise DataError(f"{key} is not in the feature cache {self.root}; run extract-features again")
        shard, n = self.index[key]
        f = self._open.get(shard) or self._open.setdefault(shard, safe_open(shard, "pt"))
        y_real = f.get_tensor(f"{n}.y")
        y = torch.zeros(max_length, y_real.shape[1])
        y[: len(y_real)] = y_real
        mask = torch.zeros(max_length, dtype=torch.long)
        mask[: len(y_real)] = 1
        return f.get_tensor(f"{n}.mean"), f.get_tensor(f"{n}.std"), y, mask
