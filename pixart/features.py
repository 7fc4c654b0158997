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

A damaged cache (``features.json`` or a shard that is not safetensors) and a cache made with other
settings are ``DataError``s naming the file and what to do; nothing in the folder is changed then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from pixart.data import Bucketer, DataError, Item, check_images, load_image, to_tensor
from pixart.errors import read_json
from pixart.files import atomic_write, write_json_atomic

META = "features.json"


def cache_settings(bucketer: Bucketer, max_length: int) -> dict:
    """The settings a cache is made with that training must share (``features.json``, less T5 and VAE)."""
    settings = {"max_length": max_length, "resolution": bucketer.resolutions[0], "multi_scale": bucketer.multi_scale}
    if len(bucketer.resolutions) > 1:  # only then, so caches made before mixed scales existed stay valid
        settings["scales"] = list(bucketer.resolutions[1:])
    return settings


def extract_features(items: list[Item], out: str | os.PathLike, *, text_encoder, vae, bucketer: Bucketer,
                     rank: int = 0, world: int = 1, batch_size: int = 8, shard_size: int = 256,
                     progress: bool = True, skip_bad: bool = False, log=print) -> int:
    """Encode this process's missing items, each at ``bucketer``'s size for it; returns how many were
    encoded now. Their images are checked first (``check_images``: ``skip_bad`` leaves unreadable ones out)."""
    if batch_size < 1 or shard_size < 1:
        raise DataError(f"batch_size and shard_size must be at least 1, got {batch_size} and {shard_size}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"feature cache {out} is a file, not a folder; give another folder")
    meta = {"t5": text_encoder.name, "vae": str(getattr(vae.model.config, "_name_or_path", "")),
            **cache_settings(bucketer, text_encoder.max_length)}
    _check_meta(out, meta)
    done = set(FeatureStore(out, check=False).index)
    mine = [it for i, it in enumerate(items) if i % world == rank and it.key not in done]
    mine = check_images(mine, skip_bad, log)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0 and not (out / META).is_file():
        write_json_atomic(out / META, meta)
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


def _shard_keys(shard: Path) -> dict[str, int]:
    """A shard's item keys → item numbers (its metadata), or DataError naming the damaged shard."""
    fix = "delete it and run `pixart-bench extract-features` again (it encodes only the items missing)"
    try:
        with safe_open(shard, "pt") as f:
            keys = json.loads((f.metadata() or {}).get("keys", "null"))
    except (SafetensorError, OSError) as e:
        raise DataError(f"feature cache shard {shard} is truncated or not a safetensors file ({e}); {fix}") from None
    except json.JSONDecodeError:
        keys = None
    if not isinstance(keys, dict):
        raise DataError(f"feature cache shard {shard} has no item index (metadata 'keys'); {fix}")
    return keys


def _check_meta(out: Path, meta: dict):
    """A cache in ``out`` must have been made with ``meta``'s settings (keys it lacks are not compared)."""
    if (out / META).exists():
        FeatureStore(out, check=False).check(meta, "extract into another folder, or with the settings it was made with")


class FeatureStore:
    """Read side: ``get(key, max_length)`` → (mean, std, y [max_length, C], mask [max_length])."""

    def __init__(self, root: str | os.PathLike, check: bool = True):
        self.root = Path(root)
        if check and not (self.root / META).is_file():
            raise DataError(f"no feature cache at {self.root} (missing {META}); run `pixart-bench extract-features`")
        self.index: dict[str, tuple[Path, int]] = {}
        for shard in sorted(self.root.glob("shard-*.safetensors")):
            for key, n in _shard_keys(shard).items():
                self.index[key] = (shard, n)
        self._open: dict[Path, object] = {}

    def meta(self) -> dict:
        return read_json(self.root / META, DataError, "feature cache index")

    def check(self, settings: dict, fix: str = "extract features with this config into another folder "
              "(data.features)"):
        """DataError when the cache was made with settings other than ``settings`` (its keys, and ``scales``)."""
        meta = self.meta()
        keys = [*settings, *(["scales"] if "scales" not in settings else [])]
        diff = [k for k in keys if meta.get(k) != settings.get(k)]
        if diff:
            made = ", ".join(f"{k}={meta.get(k)!r}" for k in diff)
            wanted = ", ".join(f"{k}={settings.get(k)!r}" for k in diff)
            raise DataError(f"feature cache {self.root} was made with different {', '.join(diff)} ({made}; "
                            f"the config has {wanted}); {fix}")

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
