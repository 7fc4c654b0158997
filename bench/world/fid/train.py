"""Training ``WorldCNN``: the rendered training set, the loss, ``attribute_accuracy``, ``train_feature_extractor``.

``train_feature_extractor``'s defaults are the recipe of the bundled weights (``pixart-bench world
train-extractor``): seed 0, 10,000 rendered scenes (5 % rendered at 128 px and resized), 2,500
AdamW steps of batch 64 (lr 3e-3, cosine, random left-right mirroring), one thread; a rerun with
the same seed reproduced its losses and accuracies exactly. The config written beside the weights
keeps a "training" record of the run: sizes, torch version, wall times and held-out accuracy on
1,000 fresh 64 px scenes from an independent stream (multi-label groups count as right only if
the whole label set is exactly right). Binding colour to shape with 2–3 objects (the "pair"
group) is the network's weakest skill.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from bench.errors import check_out_file, check_range, check_room
from bench.world.fid.labels import HEADS, MULTI_LABEL, NUM_LOGITS, SINGLE_LABEL, scene_targets
from bench.world.fid.network import (
    ARCH,
    DEFAULT_WEIGHTS,
    FEATURE_LAYER,
    INPUT_SIZE,
    LOGITS_LAYER,
    WorldCNN,
    config_path_for,
    pil_to_uint8,
    preprocess,
)
from bench.world.render import render
from bench.world.scene import Scene, sample_scene


def sample_scene_retry(rng: random.Random) -> Scene:
    """``sample_scene``, drawing again if it raises RuntimeError (it gives up on unplaceable layouts)."""
    for _ in range(100):
        try:
            return sample_scene(rng)
        except RuntimeError:
            continue
    raise RuntimeError("sample_scene failed 100 times in a row")


def render_training_set(n: int, seed: int, frac_128: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` random scenes as (uint8 [n, 3, 64, 64], multi-hot [n, M], classes [n, S]).

    A fraction ``frac_128`` is rendered at 128 px and brought to 64 by the extractor's own
    resize (then re-quantised), so the features also fit images generated at 128 px.
    """
    rng = random.Random(seed)
    images = torch.empty(n, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)
    multi = np.empty((n, HEADS["noise"][1]), np.float32)
    single = np.empty((n, len(SINGLE_LABEL)), np.int64)
    for i in range(n):
        scene = sample_scene_retry(rng)
        big = rng.random() < frac_128
        image = pil_to_uint8(render(scene, 2 * INPUT_SIZE if big else INPUT_SIZE, seed=rng.randrange(2**31)))
        if big:
            image = ((preprocess(image[None]) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)[0]
        images[i] = image
        multi[i], single[i] = scene_targets(scene)
    return images, torch.from_numpy(multi), torch.from_numpy(single)


_GRID_HFLIP = [HEADS["grid"][0] + r * 3 + (2 - c) for r in range(3) for c in range(3)]


def hflip_batch(images: torch.Tensor, multi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror left↔right. Every shape is left-right symmetric, so only the grid columns change."""
    multi = multi.clone()
    a, b = HEADS["grid"]
    multi[:, a:b] = multi[:, _GRID_HFLIP]
    return images.flip(-1), multi


def _loss(logits: torch.Tensor, multi: torch.Tensor, single: torch.Tensor) -> torch.Tensor:
    losses = []
    for group in MULTI_LABEL:
        a, b = HEADS[group]
        # summed over a group's labels (mean over the batch): with a mean, the rare positives of
        # the 48 shape×colour labels get almost no gradient
        losses.append(F.binary_cross_entropy_with_logits(logits[:, a:b], multi[:, a:b], reduction="sum") / len(logits))
    for j, group in enumerate(SINGLE_LABEL):
        a, b = HEADS[group]
        losses.append(F.cross_entropy(logits[:, a:b], single[:, j]))
    return torch.stack(losses).sum()


@torch.no_grad()
def attribute_accuracy(model: WorldCNN, images: torch.Tensor, multi: torch.Tensor, single: torch.Tensor,
                       batch_size: int = 256) -> dict[str, float]:
    """Per group: exact-set accuracy for multi-label groups, top-1 accuracy for single-label ones."""
    model.eval()
    logits = torch.cat([model(preprocess(images[i : i + batch_size]))[1] for i in range(0, len(images), batch_size)])
    out = {}
    for group in MULTI_LABEL:
        a, b = HEADS[group]
        out[group] = float(((logits[:, a:b] > 0).float() == multi[:, a:b]).all(dim=1).float().mean())
    for j, group in enumerate(SINGLE_LABEL):
        a, b = HEADS[group]
        out[group] = float((logits[:, a:b].argmax(dim=1) == single[:, j]).float().mean())
    return out


def train_feature_extractor(out_path: str | Path = DEFAULT_WEIGHTS, n_images: int = 10000, steps: int = 2500,
                            seed: int = 0, batch_size: int = 64, lr: float = 3e-3, n_heldout: int = 1000,
                            channels: Sequence[int] = (32, 64, 96, 128), feat_dim: int = 128,
                            frac_128: float = 0.05, threads: int | None = 1, log_every: int = 250,
                            verbose: bool = True) -> dict:
    """Render ``n_images`` scenes, train ``WorldCNN`` for ``steps`` AdamW steps on CPU, save it.

    Random left-right mirroring (grid labels remapped) augments the set. ``threads`` sets
    torch's intra-op threads for the run (1 was the fastest on a busy 2-core CPU; None keeps the current
    setting). The weights are stored as float16 (the file stays < 1 MB) and the held-out
    accuracy is measured after that rounding, i.e. for exactly what is saved.

    Writes ``out_path`` (safetensors) and its json config beside it; returns the config, whose
    "training" entry records the seed, sizes, wall times and held-out accuracy (on ``n_heldout``
    64 px scenes from an independent random stream). Options out of range, or an ``out_path`` that is
    not a ``.safetensors`` file that can be written, are a ``BenchError`` before anything is rendered.
    """
    out_path = check_out_file(out_path, "--out", ".safetensors")
    check_out_file(config_path_for(out_path), "--out's config")
    check_range("--n-images", n_images, 2, whole=True, why="the features are centred and scaled on them")
    check_range("--steps", steps, 1, whole=True)
    for option, value in (("batch_size", batch_size), ("n_heldout", n_heldout), ("log_every", log_every)):
        check_range(option, value, 1, whole=True)
    check_range("lr", lr, 0)
    check_range("frac_128", frac_128, 0, 1)
    check_room((n_images + n_heldout) * 3 * INPUT_SIZE**2, f"{n_images + n_heldout:,} rendered 64 px scenes",
               "--n-images")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t0 = time.time()
        torch.manual_seed(seed)
        images, multi, single = render_training_set(n_images, seed, frac_128)
        held = render_training_set(n_heldout, seed + 7_919_000_003, frac_128=0.0)
        t_render = time.time() - t0
        if verbose:
            print(f"rendered {n_images}+{n_heldout} images in {t_render:.0f}s", flush=True)

        model = WorldCNN(channels, feat_dim, convs=[1] * len(channels))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        warmup = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        gen = torch.Generator().manual_seed(seed)
        perm, pos = torch.randperm(n_images, generator=gen), 0
        t1 = time.time()
        model.train()
        for step in range(steps):
            if pos + batch_size > n_images:
                perm, pos = torch.randperm(n_images, generator=gen), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            x, y = images[idx], multi[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x[flip], y[flip] = hflip_batch(x[flip], y[flip])
            _, logits = model(preprocess(x))
            loss = _loss(logits, y, single[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if verbose and (step % log_every == 0 or step == steps - 1):
                print(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - t1:.0f}s", flush=True)
        t_train = time.time() - t1

        model.eval()
        with torch.no_grad():
            raw = torch.cat([model(preprocess(images[i : i + 500]))[0] for i in range(0, n_images, 500)]).double()
        model.feat_center.copy_(raw.mean(dim=0).float())
        model.feat_scale.fill_(float(raw.var(dim=0).mean().rsqrt()))
        state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
                 for k, v in model.state_dict().items()}
        model.load_state_dict(state)  # evaluate exactly the float16-rounded weights that are saved
        acc = attribute_accuracy(model, *held)
        train_acc = attribute_accuracy(model, images[:n_heldout], multi[:n_heldout], single[:n_heldout])
    finally:
        torch.set_num_threads(old_threads)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_path), metadata={"arch": ARCH})
    config = {
        "arch": ARCH,
        "input_size": INPUT_SIZE,
        "input": "uint8 RGB [B,3,H,W]; resized to 64x64 (bilinear, antialias) then x/127.5-1",
        "stem": model.stem,
        "channels": list(channels),
        "convs": [1] * len(channels),
        "feat_dim": feat_dim,
        "num_logits": NUM_LOGITS,
        "feature_layers": [FEATURE_LAYER, LOGITS_LAYER],
        "heads": {g: [*HEADS[g], list(names)] for g, names in (*MULTI_LABEL.items(), *SINGLE_LABEL.items())},
        "training": {
            "command": "pixart-bench world train-extractor",
            "seed": seed, "n_images": n_images, "steps": steps, "batch_size": batch_size, "lr": lr,
            "frac_128": frac_128, "n_heldout": n_heldout, "threads": threads, "torch": torch.__version__,
            "render_s": round(t_render, 1), "train_s": round(t_train, 1), "wall_s": round(time.time() - t0, 1),
            "heldout_accuracy": {k: round(v, 4) for k, v in acc.items()},
            "train_accuracy": {k: round(v, 4) for k, v in train_acc.items()},
            "accuracy_metric": "multi-label groups: whole label set exactly right; background/count: top-1",
        },
    }
    config_path_for(out_path).write_text(json.dumps(config, indent=1) + "\n")
    if verbose:
        print(json.dumps(config["training"], indent=1))
    return config
