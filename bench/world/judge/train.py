"""Train ``BlobNet`` on rendered objects distorted like a generative model's, and on objects the model redraws.

**Distorted renders** (``synth_example``): one object drawn the way ``bench.world.render`` draws
(``shape_mask``, ``texture_pattern``, the dark shade; 2× supersampling in a window around it), then

- an elastic warp: a random displacement field smooth over ``WARP_SMOOTH`` of the object's side,
  amplitude up to ``WARP_MAX`` of it (ragged, not reshaped, outlines; textures not quite straight);
- with probability ``P_BLOCKY``, outlines that step in blocks of 2–8 pixels (the model's patch grid);
- box aspect within ±``POS_ASPECT`` (log), size 0.2–0.56 of the side, any place; Gaussian blur up to
  1.2 px; background noise up to 6; a small colour shift;
- with probability ``P_VAE``, a round trip through a pipeline's own VAE (``vae``: its folder).

One object in five (``P_NONE``) is a **"none"**, a blob no one would call a world shape: a clear
rectangle (aspect 1.3–2.2), an ellipse (aspect ≥ ``ELLIPSE_MIN_ASPECT``), a rounded square or a
random lump. (The judge decides "is it still that shape" with per-shape limits fitted on people's
labels; "none" keeps the network from forcing such blobs into a shape while it trains.)

**Redrawn objects** (``_sdedit_chunk``, ``n_sdedit`` of them): a clean render of one object,
encoded by a pipeline's VAE, noised to 35–60% of the schedule and denoised by its transformer with
the object's caption (``PixArtPipeline.sample_latents(init=..., strength=...)``): the model's own
artefacts, with the render's shape as the label (no texture label: the model redraws textures).

The network reads every image through ``blobs.find_blobs`` (the largest blob), exactly as when
judging. Seeded; the record beside the weights says how it was trained. The judge is validated on
people's labels of model images (``tests/data/world_judge/``), never on these images.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage as ndi

from bench.world.judge.blobs import find_blobs
from bench.world.judge.network import ARCH, SHAPE_CLASSES, TEXTURE_CLASSES, BlobNet, config_path_for
from bench.world.render import dark_shade, render, shape_mask, texture_pattern
from bench.world.scene import BACKGROUNDS, COLORS, SHAPES, TEXTURES, Obj, Scene

WARP_MAX = 0.06  # elastic displacement amplitude, fraction of the object's side
WARP_SMOOTH = (0.06, 0.2)  # smoothness of the displacement field, fraction of the object's side
P_BLOCKY = 0.4
ELLIPSE_MIN_ASPECT = 1.2
POS_ASPECT = 0.08  # positives: |log aspect| up to this
P_NONE = 0.2
P_VAE = 0.5
NONE_KINDS = ("rectangle", "ellipse", "rounded", "lump")


def _warp(a: np.ndarray, rng: np.random.Generator, amp: float, smooth: float, order: int) -> np.ndarray:
    """``a`` [H, W] or [H, W, C] warped by a smooth random displacement field (pixels)."""
    h, w = a.shape[:2]
    field = [ndi.gaussian_filter(rng.normal(size=(h, w)), smooth) for _ in range(2)]
    field = [f / (np.abs(f).max() + 1e-9) * amp for f in field]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [yy + field[0], xx + field[1]]
    if a.ndim == 2:
        return ndi.map_coordinates(a, coords, order=order, mode="nearest")
    return np.stack([ndi.map_coordinates(a[..., c], coords, order=order, mode="nearest") for c in range(a.shape[2])], -1)


def _object_mask(rng: random.Random, nrng: np.random.Generator, shape: str, kind: str | None, hw, box) -> np.ndarray:
    """Supersampled boolean mask of one object (or a "none" of ``kind``) in ``box`` (x0, y0, w, h)."""
    x0, y0, bw, bh = box
    if kind == "rounded":  # a square with rounded corners: not a square, not a circle
        r = rng.uniform(0.25, 0.45) * bw
        yy, xx = np.mgrid[0:hw[0], 0:hw[1]] + 0.5
        dx = np.maximum(np.maximum(x0 + r - xx, xx - (x0 + bw - r)), 0)
        dy = np.maximum(np.maximum(y0 + r - yy, yy - (y0 + bh - r)), 0)
        inside = (xx >= x0) & (xx <= x0 + bw) & (yy >= y0) & (yy <= y0 + bh)
        return inside & (dx**2 + dy**2 <= r**2)
    if kind == "lump":
        h, w = hw
        m = np.zeros(hw, bool)
        noise = ndi.gaussian_filter(nrng.normal(size=hw), 0.18 * bw)
        yy, xx = np.mgrid[0:h, 0:w]
        inside = ((xx - x0 - bw / 2) / (bw / 2)) ** 2 + ((yy - y0 - bh / 2) / (bh / 2)) ** 2 < 1.0
        m[inside] = noise[inside] > np.percentile(noise[inside], rng.uniform(10, 45))
        return m
    return shape_mask(shape, hw, box)


def synth_example(rng: random.Random, side: int = 128, vae=None) -> tuple[Image.Image, int, int, dict]:
    """(image, shape class index, texture class index, meta) of one distorted object."""
    nrng = np.random.default_rng(rng.getrandbits(32))
    shape, color, texture = rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(TEXTURES)
    kind = rng.choice(NONE_KINDS) if rng.random() < P_NONE else None
    rel = rng.uniform(0.2, 0.56)
    aspect = math.exp(rng.uniform(-POS_ASPECT, POS_ASPECT))
    if kind == "rectangle":
        shape = "square"
        aspect = rng.uniform(1.3, 2.2) ** rng.choice((-1, 1))
    elif kind == "ellipse":
        shape = "circle"
        aspect = rng.uniform(ELLIPSE_MIN_ASPECT, 2.0) ** rng.choice((-1, 1))
    elif kind == "rounded":
        shape = "square"
    bw, bh = rel * side * math.sqrt(aspect), rel * side / math.sqrt(aspect)
    if max(bw, bh) > 0.85 * side:
        f = 0.85 * side / max(bw, bh)
        bw, bh = bw * f, bh * f
    x0 = rng.uniform(0.04 * side, side - bw - 0.04 * side)
    y0 = rng.uniform(0.04 * side, side - bh - 0.04 * side)
    # draw only a window around the object, at 2x supersampling (the warp moves it a little)
    s = 2
    m = 0.3 * max(bw, bh) + 3
    rx0, ry0 = max(0, int(x0 - m)), max(0, int(y0 - m))
    rx1, ry1 = min(side, int(math.ceil(x0 + bw + m))), min(side, int(math.ceil(y0 + bh + m)))
    hw = ((ry1 - ry0) * s, (rx1 - rx0) * s)
    box = ((x0 - rx0) * s, (y0 - ry0) * s, bw * s, bh * s)
    mask = _object_mask(rng, nrng, shape, kind, hw, box)
    dark = texture_pattern(texture, hw, box)
    bg = np.array(BACKGROUNDS[rng.choice(list(BACKGROUNDS))], np.float64)
    canvas = np.empty((*hw, 3))
    canvas[:] = bg
    fg = np.where(dark[..., None], np.array(dark_shade(color), float), np.array(COLORS[color], float))
    canvas[mask] = fg[mask]
    amp = rng.uniform(0, WARP_MAX) * max(bw, bh) * s
    if amp > 0.5:  # ragged, not reshaped: the field varies over a fraction of the object's side
        canvas = _warp(canvas, nrng, amp, rng.uniform(*WARP_SMOOTH) * max(bw, bh) * s, order=1)
    if rng.random() < P_BLOCKY:  # the model's patch grid: outlines that step in blocks of a few pixels
        g = rng.randint(2, max(2, min(8, int(max(bw, bh) / 6)))) * s
        inside = np.linalg.norm(canvas - bg, axis=-1) > 20
        ph, pw = -(-hw[0] // g) * g, -(-hw[1] // g) * g
        padded = np.zeros((ph, pw))
        padded[:hw[0], :hw[1]] = inside
        cells = padded.reshape(ph // g, g, pw // g, g).mean(axis=(1, 3))
        coarse = np.repeat(np.repeat(cells > rng.uniform(0.35, 0.65), g, 0), g, 1)[:hw[0], :hw[1]]
        fill = np.where(dark[..., None], np.array(dark_shade(color), float), np.array(COLORS[color], float))
        canvas = np.where(coarse[..., None], np.where(inside[..., None], canvas, fill), bg)
    img = np.empty((side, side, 3))
    img[:] = bg
    img[ry0:ry1, rx0:rx1] = canvas.reshape(ry1 - ry0, s, rx1 - rx0, s, 3).mean(axis=(1, 3))
    img = img + np.array([rng.gauss(0, 6) for _ in range(3)]) * (img != bg).any(-1, keepdims=True)
    blur = rng.uniform(0, 1.2)
    if blur > 0.2:
        img = ndi.gaussian_filter(img, (blur, blur, 0))
    noise = rng.choice((0, 0, rng.uniform(0, 6)))
    if noise:
        img = img + nrng.normal(0, noise, img.shape)
    image = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    if vae is not None and rng.random() < P_VAE:
        from bench.world.demo import vae_round_trip

        with torch.no_grad():
            image = vae_round_trip(vae, image)
    label = SHAPE_CLASSES.index("none" if kind else shape)
    return image, label, TEXTURE_CLASSES.index(texture), {"shape": shape, "kind": kind, "texture": texture}


def _chunk(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, seed, vae_path = args
    torch.set_num_threads(1)
    vae = None
    if vae_path:
        from pixart.pipeline import PixArtPipeline

        vae = PixArtPipeline.from_pretrained(vae_path).vae
    rng = random.Random(seed)
    xs, ys, ts = [], [], []
    while len(xs) < n:
        image, y, t, _ = synth_example(rng, rng.choice((64, 128, 128, 128)), vae)
        _, blobs = find_blobs(image)
        if not blobs:
            continue
        xs.append(blobs[0].inputs)
        ys.append(y)
        ts.append(t)
    return np.stack(xs), np.array(ys), np.array(ts)


def _sdedit_chunk(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n examples redrawn by a pipeline from rendered objects (SDEdit): a clean render of one object,
    encoded by the pipeline's VAE, noised to strength 0.35–0.6 of the schedule and denoised by its
    transformer with the object's own caption. The shape label is the render's; the texture label is
    left out (-100: the model redraws textures freely)."""
    n, seed, pipeline = args
    from diffusers.image_processor import VaeImageProcessor

    from bench.world.scene import a_, noun_phrase
    from pixart.data import to_tensor
    from pixart.pipeline import PixArtPipeline, SampleSettings

    torch.set_num_threads(1)
    pipe = PixArtPipeline.from_pretrained(pipeline)
    side = pipe.transformer.config.input_size * pipe.vae.downsample
    settings = SampleSettings(sampler="sde-dpm-solver", steps=20, guidance_scale=2.0, height=side,
                              width=side).resolved(pipe)
    post = VaeImageProcessor(do_normalize=True)
    rng = random.Random(seed)
    xs, ys = [], []
    while len(xs) < n:
        objs = [Obj(rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(TEXTURES), rng.choice(("small", "large")),
                    rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)) for _ in range(8)]
        scenes = [Scene((o,), background=rng.choice(list(BACKGROUNDS))) for o in objs]
        x = torch.cat([to_tensor(render(sc, side, seed=0), (side, side))[None] for sc in scenes])
        y, mask = pipe.encode_prompts([a_(noun_phrase(o, with_size=False)) for o in objs])
        y_null, mask_null = pipe.null_condition(mask, settings.null_caption)
        gens = [torch.Generator().manual_seed(rng.getrandbits(32)) for _ in objs]
        with torch.no_grad():
            lat = pipe.sample_latents(y, mask, y_null, mask_null, gens, settings, (side, side),
                                      init=pipe.vae.encode(x), strength=rng.uniform(0.35, 0.6))
            images = post.postprocess(pipe.vae.decode(lat), output_type="pil")
        for o, image in zip(objs, images):
            _, blobs = find_blobs(image)
            if blobs and len(xs) < n:
                xs.append(blobs[0].inputs)
                ys.append(SHAPE_CLASSES.index(o.shape))
    return np.stack(xs), np.array(ys), np.full(len(ys), -100)


def make_set(n: int, seed: int, vae_path: str | None = None, workers: int = 2, log=print, n_sdedit: int = 0,
             sdedit: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n distorted renders (+ ``n_sdedit`` redrawn by the pipeline folder ``sdedit``) → (inputs
    [N, 2, 32, 32], shape labels, texture labels (-100: none)), made in seeded chunks across
    ``workers`` processes; an image whose blob is lost is redrawn."""
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    jobs = [(min(1000, n - i), seed * 100_003 + i // 1000, vae_path) for i in range(0, n, 1000)]
    sd = [(min(500, n_sdedit - i), seed * 100_003 + 50_000 + i // 500, sdedit) for i in range(0, n_sdedit, 500)]
    if workers <= 1:
        parts = [_chunk(j) for j in jobs] + [_sdedit_chunk(j) for j in sd]
    else:
        with ProcessPoolExecutor(workers) as ex:
            parts = list(ex.map(_chunk, jobs)) + list(ex.map(_sdedit_chunk, sd))
    log(f"  {n} + {n_sdedit} (SDEdit) examples in {time.perf_counter() - t0:.0f} s")
    return (torch.from_numpy(np.concatenate([p[0] for p in parts])), torch.from_numpy(np.concatenate([p[1] for p in parts])),
            torch.from_numpy(np.concatenate([p[2] for p in parts])))


def train(out: str | Path, *, n: int = 16000, steps: int = 3000, batch: int = 128, lr: float = 2e-3, seed: int = 0,
          vae: str | None = None, workers: int = 2, n_sdedit: int = 0, sdedit: str | None = None, log=print) -> dict:
    """Train and save ``out`` (float16 safetensors) with its json record; returns the record."""
    from safetensors.torch import save_file

    from pixart.files import write_json_atomic

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    x, y, t = make_set(n, seed, vae, workers, log, n_sdedit=n_sdedit, sdedit=sdedit)
    n = len(y)
    data_s = time.perf_counter() - t0
    net = BlobNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        xb = x[idx]
        flip = torch.rand(batch, generator=g) < 0.5  # mirror left-right: every shape and texture is symmetric
        xb[flip] = xb[flip].flip(-1)
        ls, lt = net(xb)
        loss = F.cross_entropy(ls, y[idx]) + F.cross_entropy(lt, t[idx], ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            log(f"  step {step}: loss {loss.item():.3f}")
    net.eval()
    n_check = min(2000, max(64, n // 8))
    xv, yv, tv = make_set(n_check, seed + 1, vae, workers, log=lambda *_: None)
    with torch.no_grad():
        ls, lt = net(xv)
    acc = {"shape": float((ls.argmax(1) == yv).float().mean()), "texture": float((lt.argmax(1) == tv).float().mean())}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items() if v.is_floating_point()}
              | {k: v for k, v in net.state_dict().items() if not v.is_floating_point()}, str(out))
    record = {"arch": ARCH, "network": {}, "examples": n, "steps": steps, "batch": batch, "lr": lr, "seed": seed,
              "warp_max": WARP_MAX, "pos_aspect": POS_ASPECT, "p_none": P_NONE, "none_kinds": list(NONE_KINDS),
              "p_vae": P_VAE if vae else 0.0, "vae": vae, "sdedit_examples": n_sdedit, "sdedit_pipeline": sdedit,
              "sdedit_strength": [0.35, 0.6] if n_sdedit else None,
              "synthetic_accuracy": acc, "data_seconds": round(data_s, 1),
              "seconds": round(time.perf_counter() - t0, 1),
              "synthetic_check_examples": n_check,
              "note": "synthetic_accuracy: on fresh synthetic renders (seed + 1); the judge's agreement with people "
                      "is measured on tests/data/world_judge (benchmarks/world_judge.py agreement)"}
    write_json_atomic(config_path_for(out), record)
    log(f"synthetic accuracy: shape {acc['shape']:.3f}, texture {acc['texture']:.3f}; {record['seconds']:.0f} s")
    return record
