"""``pixart-bench extract-features`` / ``accelerate launch -m bench extract-features``: fill a feature cache.

Each process encodes its share of the items (see ``pixart.features``); the config supplies the
data source, T5, VAE, resolution, buckets and max_length, so the cache matches training.
"""

from __future__ import annotations

from pathlib import Path

from pixart.data import read_items
from pixart.features import extract_features
from pixart.train_config import load_config
from pixart.train_data import load_encoders


def run_extract(out, config=None, overrides=(), *, batch_size=8, shard_size=256, progress=True) -> int:
    from accelerate import PartialState

    import torch

    cfg = load_config(config, list(overrides))
    cfg.class_conditional = False  # captions are encoded even for labelled data
    state = PartialState(cpu=not torch.cuda.is_available())
    log = print if state.is_main_process else (lambda msg: None)
    items = read_items(root=cfg.data.root, manifest=cfg.data.manifest, shards=cfg.data.shards,
                       shard_dir=Path(cfg.output_dir) / "shards", skip_bad=cfg.data.skip_bad, log=log)
    text_encoder, vae = load_encoders(cfg, state.device)
    n = extract_features(items, Path(out), text_encoder=text_encoder, vae=vae, bucketer=cfg.data.bucketer(),
                         rank=state.process_index, world=state.num_processes, batch_size=batch_size,
                         shard_size=shard_size, progress=progress, skip_bad=cfg.data.skip_bad, log=log)
    state.wait_for_everyone()
    return n

