"""The world model's tokenizer, text encoder and VAE, made from the world's own data.

- ``build_tokenizer``: sentencepiece trained on the world's captions and prompts, as transformers'
  ``T5Tokenizer``;
- ``build_t5``: a small ``T5EncoderModel``, frozen at its seeded random initialisation: its features
  still identify every word and position, and the transformer learns to read them;
- ``train_vae``: a small ``AutoencoderKL`` (/4, 4 latent channels) trained on world images, with
  ``scaling_factor`` = 1 / std of its latents and its held-out PSNR;
- ``reuse_components``: the three copied from a pipeline folder instead;
- ``ensure_components``: the recipe's ``components/`` folder, made, copied or kept.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.errors import BenchError
from bench.world.budget import ReferenceBudget
from bench.world.dataset import make_suites, medium_caption
from bench.world.scene import sample_scene
from pixart.errors import read_json
from pixart.files import write_json_atomic
from pixart.random_components import corpus_tokenizer, small_t5

PARTS = ("tokenizer", "text_encoder", "vae")


def build_tokenizer(captions: list[str], vocab_size: int = 160):
    """The world's tokenizer: sentencepiece on its captions and prompts, as a ``T5Tokenizer``."""
    return corpus_tokenizer(captions, vocab_size, hard_vocab_limit=False)


def build_t5(vocab: int, dim: int, seed: int):
    """The world's text encoder: a 2-layer T5, frozen at its seeded random initialisation."""
    return small_t5(vocab, dim, num_layers=2, num_heads=4, d_kv=dim // 4, buckets=16, seed=seed)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Images in [-1, 1]."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def train_vae(data_dirs: list[Path], steps: int, batch: int, seed: int, crop: int = 32, log=print,
              max_images: list[int] | None = None):
    """A small AutoencoderKL (/4, 4 latent channels) trained on world images: MSE + 1e-6 KL.

    It is fully convolutional (plus one attention block), so it trains on random ``crop``² crops of
    the 64 px and 128 px images: 4–16× cheaper per sample than whole images, and it sees the
    objects at both scales the transformer will generate. Held-out PSNR is measured on whole 64 px
    and 128 px images. It reads the first ``max_images[i]`` images of folder i (default 4,096).
    """
    from diffusers import AutoencoderKL

    from pixart.data import load_image, read_folder, to_tensor

    torch.manual_seed(seed)
    pools, held_out = [], []
    for d, limit in zip(data_dirs, max_images or [4096] * len(data_dirs)):
        imgs = []
        for it in tqdm(read_folder(d)[:limit], desc=f"load {d.name}", leave=False):
            im = load_image(it.path)
            imgs.append(to_tensor(im, (im.height, im.width)))
        held_out.append(imgs[:64])
        pools.extend(imgs[64:])
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(32, 64, 64), layers_per_block=1,
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        latent_channels=4, norm_num_groups=8, sample_size=64)
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    g = torch.Generator().manual_seed(seed)

    def crops(n):
        out = []
        for k in torch.randint(0, len(pools), (n,), generator=g).tolist():
            im = pools[k]
            y = int(torch.randint(0, im.shape[1] - crop + 1, (1,), generator=g))
            x = int(torch.randint(0, im.shape[2] - crop + 1, (1,), generator=g))
            out.append(im[:, y : y + crop, x : x + crop])
        return torch.stack(out)

    for step in tqdm(range(steps), desc="VAE"):
        x = crops(batch)
        dist = vae.encode(x).latent_dist
        rec = vae.decode(dist.sample(generator=g)).sample
        loss = (rec - x).square().mean() + 1e-6 * dist.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0:
            log(f"vae step {step}: loss {loss.item():.5f}")
    vae.eval()
    psnrs = {}
    with torch.no_grad():
        for d, imgs in zip(data_dirs, held_out):
            vals = [psnr(vae.decode(vae.encode(im[None]).latent_dist.mean).sample, im[None]) for im in imgs]
            psnrs[d.name] = sum(vals) / len(vals)
        std = torch.cat([vae.encode(im[None]).latent_dist.mean.flatten() for im in pools[:512]]).std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    return vae, psnrs


def check_components(src: Path) -> dict:
    """BenchError unless ``src`` is a pipeline folder with tokenizer/, text_encoder/ and vae/ (with its
    config.json); returns its ``training.json`` record ({} when it has none)."""
    if not src.is_dir():
        raise BenchError(f"--components {src}: {'no such folder' if not src.exists() else 'a file, not a folder'}; "
                         "give a pipeline folder such as bench/world/reference")
    missing = [f"{part}/" for part in PARTS if not (src / part).is_dir()]
    if missing:
        raise BenchError(f"--components {src}: no {', '.join(missing)} there (need tokenizer/, text_encoder/, vae/)")
    read_json(src / "vae" / "config.json", BenchError, "VAE config")
    record = src / "training.json"
    return read_json(record, BenchError, "training record") if record.exists() else {}


def reuse_components(src: Path, comp: Path, log) -> None:
    """Copy tokenizer, T5 and VAE from a pipeline folder (e.g. the bundled reference) into ``comp``
    instead of making them: the VAE's training is the recipe's slowest CPU-only part. Its PSNR is
    taken from ``src/training.json`` when that records one."""
    record = check_components(src)
    tmp = comp.with_name(comp.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part in PARTS:
        shutil.copytree(src / part, tmp / part)
    # a record without a budget (the bundle's) lists each stage's settings instead: the last one's scale
    stages = list((record.get("stages") or {}).values())
    scale = (record.get("budget") or {}).get("latent_scale_128", stages[-1].get("latent_scale", 1.0) if stages else 1.0)
    if scale != 1.0:  # the pipeline's VAE carries its stage 3's latent scale; the components do not
        config = read_json(tmp / "vae" / "config.json", BenchError, "VAE config")
        config["scaling_factor"] /= scale
        write_json_atomic(tmp / "vae" / "config.json", config)
        log(f"VAE scaling_factor divided by the source's latent_scale_128 {scale:g}")
    write_json_atomic(tmp / "vae_metrics.json", {"psnr_db": record.get("vae_psnr_db", float("nan")),
                                                 "seconds": 0.0, "copied_from": str(src)}, indent=None)
    tmp.rename(comp)
    log(f"components (tokenizer, T5, VAE) copied from {src}")


def ensure_components(work: Path, b: ReferenceBudget, log, source: Path | None = None) -> dict:
    """``work/components``: tokenizer, T5 and VAE, and the VAE's metrics (``vae_metrics.json``, returned).
    A finished folder is kept; else they are copied from the pipeline folder ``source`` when given,
    else made: the tokenizer on ``work/data64``'s captions, the suites' prompts and 2,000 more
    captions, the VAE on ``work/data64`` and the first ``b.vae_images_128`` images of ``work/data128``."""
    comp = work / "components"
    if source is not None and not (comp / "vae" / "config.json").is_file():
        reuse_components(Path(source), comp, log)
    if not (comp / "vae" / "config.json").is_file():
        captions = [p.read_text().strip() for p in sorted((work / "data64").glob("*.txt"))]
        suites = make_suites(work / "suites")
        corpus = captions + [s["prompt"] for specs in suites.values() for s in specs]
        corpus += [medium_caption(sample_scene(random.Random(i))) for i in range(2000)]
        tokenizer = build_tokenizer(corpus)
        t5 = build_t5(len(tokenizer), b.t5_dim, b.seed)
        t0 = time.perf_counter()
        vae, psnrs = train_vae([work / "data64", work / "data128"], b.vae_steps, b.vae_batch_size, b.seed, log=log,
                                max_images=[4096, b.vae_images_128])
        vae_seconds = time.perf_counter() - t0
        log("VAE held-out PSNR " + ", ".join(f"{k} {v:.2f} dB" for k, v in psnrs.items()))
        tokenizer.save_pretrained(comp / "tokenizer")
        t5.save_pretrained(comp / "text_encoder")
        vae.save_pretrained(comp / "vae")
        write_json_atomic(comp / "vae_metrics.json", {"psnr_db": min(psnrs.values()), "psnr_db_by_set": psnrs,
                                                      "seconds": vae_seconds}, indent=None)
    return read_json(comp / "vae_metrics.json", BenchError, "VAE metrics")
