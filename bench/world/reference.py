"""Build the bundled reference pipeline for the shapes world from scratch (``world train-reference``).

Every component is made by the project, in the real formats:
1. data: ``make_dataset`` at 64 px (stages 1–2) and 128 px with 1:1, 1:2 and 2:1 images (stage 3);
2. tokenizer: sentencepiece trained on the world's captions and prompts, wrapped as transformers'
   ``T5Tokenizer``;
3. text encoder: a small ``T5EncoderModel``, **frozen at its random initialisation** (seeded): its
   features still identify every word and position, and the transformer learns to read them;
4. VAE: a small ``AutoencoderKL`` (/4, 4 latent channels) trained on world images (reconstruction
   PSNR on held-out images is recorded), with ``scaling_factor`` = 1 / std of its latents;
5. PixArt (adaLN-single) trained with ``pixart.train`` through the paper's three stages:
   class-conditional 64 px → dense-caption text-to-image 64 px → multi-aspect 128 px, each stage
   from the previous stage's EMA weights, from feature caches made by ``extract-features``. Stages 2
   and 3 each end with a "b" continuation at a lower learning rate (``_low_lr``). Stage 3 may train
   on latents × ``latent_scale_128`` (input scaling, ``pixart.train.TrainConfig.latent_scale``); the
   pipeline's VAE then carries ``scaling_factor`` × that, and ``--components`` taking the VAE from
   such a pipeline divides it back out.
The result is saved as a diffusers ``PixArtAlphaPipeline`` folder (``PixArtPipeline`` and diffusers
both load it) with ``training.json`` (budgets, seed, wall times, losses, PSNR).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.world.dataset import make_dataset, make_suites, medium_caption
from bench.world.scene import NUM_CLASSES, sample_scene
from pixart.random_components import corpus_tokenizer, small_t5


@dataclass
class ReferenceBudget:
    """Defaults are the bundled model's recipe (docs/world.md has its wall times)."""

    n_images_64: int = 8000
    n_images_128: int = 1500
    and_fraction: float = 0.0  # make_dataset's: short two-object captions without the relation (docs/world.md)
    vae_steps: int = 4500
    stage1_steps: int = 500
    stage2_steps: int = 100000
    stage2_low_lr_steps: int = 6000  # then "stage 2b": from stage 2's EMA at low_lr (a step-down LR schedule)
    stage3_steps: int = 3000
    stage3_low_lr_steps: int = 3000  # then "stage 3b", likewise
    lr: float = 3e-4
    low_lr: float = 1e-4
    stage3_lr: float | None = None  # stage 3's learning rate (None: lr); its "b" continuation uses low_lr
    batch_size: int = 32
    batch_size_128: int = 16
    vae_batch_size: int = 32
    vae_images_128: int = 1500  # the VAE trains on the first N 128 px images (data128 had 1,500 when it was made)
    hidden: int = 192
    depth: int = 4
    heads: int = 3
    patch_size: int = 2  # 1: four times the tokens (a GPU option; docs/world.md, recipe sweep)
    t5_dim: int = 64
    max_length: int = 32
    seed: int = 0
    mixed_precision: str = "no"  # the trainer's: "bf16" on a GPU
    # stages whose training forward goes through torch.compile (a GPU's launch overhead; each such
    # stage pays a compile, so the long fixed-shape ones gain: e.g. ("stage2", "stage2b"))
    compile_stages: tuple = ()
    # wall-clock caps per stage ("stage1", "stage2", "stage2b", "stage3", "stage3b" -> minutes; the
    # trainer's max_seconds): a stage stops early with a checkpoint, the next starts from it. For a GPU
    # lease of fixed length; a later call with the same caps resumes the stopped stage.
    stage_minutes: dict = field(default_factory=dict)
    # stages 3 and 3b learn latents × this (1: as stage 2). 0.5 shifts every noise level's log-SNR by
    # 2·log 0.5 at twice the side, the usual rule for a higher resolution (pixart.train, latent_scale);
    # on one H200 it scored as 1 did (docs/world.md)
    latent_scale_128: float = 1.0


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
    (A first, 16-channel VAE trained on whole 64 px images for 1,200 steps reached
    25.9 dB and visibly shifted colours, which capped the oracle scores of anything decoded by it.)
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


def _loss_curve(metrics: Path, max_points: int = 500, until: int | None = None) -> list[list[float]]:
    """[[step, loss], ...] from a trainer's metrics.jsonl, at most ``max_points`` long: each point
    is the mean loss over a window of consecutive steps, placed at the window's last step (keeps
    training.json small for 50k-step runs). The trainer already drops re-logged steps when it
    resumes; should a step still appear twice, it counts once (last wins). Steps after ``until``
    (a run cut off after its last checkpoint) are left out."""
    by_step = {}
    for line in metrics.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if until is None or int(row["step"]) <= until:
                by_step[int(row["step"])] = float(row["loss"])
    steps = sorted(by_step)
    width = max(1, -(-len(steps) // max_points))
    return [[chunk[-1], sum(by_step[s] for s in chunk) / len(chunk)]
            for chunk in (steps[i:i + width] for i in range(0, len(steps), width))]


def _set_aside(stage_dir: Path, base: str, why: str, log) -> None:
    aside, n = stage_dir.with_name(base), 1
    while aside.exists():
        n += 1
        aside = stage_dir.with_name(f"{base}-{n}")
    log(f"{stage_dir.name} {why}: moved it to {aside} and starting again")
    stage_dir.rename(aside)


def _sha256(*files: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def weights_sha256(folder: Path) -> str:
    """SHA-256 of a weights folder's ``*.safetensors`` files, in name order (what inputs.json and
    training.json record of the weights a stage started from)."""
    return _sha256(*sorted(Path(folder).glob("*.safetensors")))


# what a stage's settings were when inputs.json did not record them
SETTING_DEFAULTS = {"latent_scale": 1.0}


def _set_aside_if_inputs_changed(stage_dir: Path, init_from: Path | None, data_manifest: Path | None, log,
                                 settings: dict | None = None) -> None:
    """A stage resumes from its own checkpoints, so after a longer run of the stage before it, or
    after its dataset grew (``--n-images-128``), it would go on from weights grown on the old
    parent or the old data. Move such a run aside (nothing is deleted) so that the stage starts
    again from the parent's final weights on the current data.

    ``inputs.json`` in the stage folder records what the stage was started from: the parent
    checkpoint (its path and the SHA-256 of its weight files: a parent that was itself retrained
    keeps its step name) and the SHA-256 of the data's ``manifest.jsonl`` (every image and
    caption), and ``settings`` that change what the stage learns (its ``latent_scale``). A run from
    before ``inputs.json`` existed is judged by the parent's step name only."""
    inputs = {"settings": settings} if settings else {}
    if init_from is not None:
        inputs["init_from"] = str(init_from)
        inputs["init_from_sha256"] = weights_sha256(init_from)
    if data_manifest is not None:
        inputs["data_sha256"] = _sha256(data_manifest)
    record, cfg = stage_dir / "inputs.json", stage_dir / "train_config.yaml"
    if record.is_file():
        old = json.loads(record.read_text())
    elif cfg.is_file():
        import yaml

        old = {"init_from": yaml.safe_load(cfg.read_text()).get("init_from")}
    else:
        old = {}
    old_parent = old.get("init_from")
    if old_parent is not None and init_from is not None and (
            # compare the parent's checkpoint name (step-NNNNNNN/ema), not the whole path: the same
            # --work may be given relative to another directory, or moved
            Path(old_parent).parts[-2:] != init_from.parts[-2:]
            or old.get("init_from_sha256", inputs["init_from_sha256"]) != inputs["init_from_sha256"]):
        _set_aside(stage_dir, f"{stage_dir.name}-from-{Path(old_parent).parent.name}",
                   f"was started from other weights ({old_parent}), not {init_from}", log)
    elif old.get("data_sha256", inputs.get("data_sha256")) != inputs.get("data_sha256"):
        _set_aside(stage_dir, f"{stage_dir.name}-data-{old['data_sha256'][:8]}",
                   f"was trained on other data ({data_manifest} changed)", log)
    elif old and {**SETTING_DEFAULTS, **old.get("settings", {})} != {**SETTING_DEFAULTS, **(settings or {})}:
        was = {**SETTING_DEFAULTS, **old.get("settings", {})}
        _set_aside(stage_dir, f"{stage_dir.name}-" + "-".join(f"{k}-{v:g}" for k, v in was.items()),
                   f"was trained with {was}, not {settings}", log)
    stage_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(inputs, indent=1) + "\n")


def _train_stage(name: str, overrides: list[str], log, init_from: Path | None = None,
                 data_manifest: Path | None = None, settings: dict | None = None) -> dict:
    """Train (or resume) one stage on the data listed in ``data_manifest``, starting from the
    previous stage's ``init_from`` weights; ``seconds`` is its wall time summed over the calls that
    trained it."""
    from pixart.train import load_config, train

    cfg = load_config(None, overrides + ([f"init_from={init_from}"] if init_from is not None else []))
    _set_aside_if_inputs_changed(Path(cfg.output_dir), init_from, data_manifest, log, settings)
    t0 = time.perf_counter()
    result = train(cfg, resume=True)
    wall = Path(cfg.output_dir) / "wall_seconds.json"
    total = (json.loads(wall.read_text())["seconds"] if wall.is_file() else 0.0) + time.perf_counter() - t0
    wall.write_text(json.dumps({"seconds": total}) + "\n")
    result["seconds"] = total
    log(f"{name}: {len(result['history'])} steps in {total / 60:.1f} min, "
        f"last loss {result['history'][-1]['loss'] if result['history'] else float('nan'):.4f}")
    return result


def _low_lr(stages: dict, name: str, overrides: list[str], work: Path, steps: int, b: ReferenceBudget, log,
            data_manifest: Path, settings: dict | None = None) -> str:
    """Continue stage ``name`` for ``steps`` at ``b.low_lr`` as stage ``name``b, from its final EMA with a
    fresh optimiser: a step-down learning-rate schedule. At 100,000 stage-2 steps the constant rate had
    stopped improving the oracle scores; 4,000 / 6,000 steps at a third of it took single-object
    accuracy at 64 px from 0.240 to 0.323 / 0.286 (192 images each, docs/world.md). Returns the stage
    whose weights come next."""
    if steps <= 0:
        return name
    stages[name + "b"] = _train_stage(f"{name}b ({name} at lr {b.low_lr:g})", overrides + [
        f"output_dir={work / (name + 'b')}", f"optim.lr={b.low_lr}", f"seed={b.seed + 1}", f"max_steps={steps}",
        f"save_every={min(max(steps // 3, 1), 2000)}", *_stage_overrides(b, name + "b")], log,
        init_from=Path(stages[name]["final_checkpoint"]) / "ema", data_manifest=data_manifest, settings=settings)
    return name + "b"


STAGES = ("stage1", "stage2", "stage2b", "stage3", "stage3b")


def _stopped(stages: dict, log) -> dict:
    """``stop_after``'s result: each trained stage's final checkpoint and step count."""
    done = {k: {"final_checkpoint": v["final_checkpoint"], "steps": _step_of(v["final_checkpoint"])}
            for k, v in stages.items()}
    log("stopped after " + ", ".join(f"{k} ({v['steps']} steps)" for k, v in done.items()) + "; no pipeline written")
    return {"stopped_after": list(done)[-1], "stages": done}


def _step_of(checkpoint: str | Path) -> int:
    return int(Path(checkpoint).name.removeprefix("step-"))


def _stage_overrides(b: ReferenceBudget, stage: str) -> list[str]:
    """The trainer overrides that differ per stage: its wall-clock cap, if it has one, and its compile."""
    return ([f"max_seconds={float(b.stage_minutes[stage]) * 60}"] if stage in b.stage_minutes else []) + [
        f"compile={str(stage in b.compile_stages).lower()}"]


def _stages_1_to_2b(stages: dict, model: list, common: list, b: ReferenceBudget, work: Path, m64: Path,
                    cache64: Path, log, stop_after: str | None) -> Path | None:
    """Stages 1 (class-conditional), 2 (text) and 2b (text at the low learning rate), all at 64 px, into
    ``stages``; returns the EMA weights stage 3 starts from (None when ``stop_after`` ends earlier)."""
    stages["stage1"] = _train_stage("stage 1 (class-conditional, 64 px)", model + common + [
        f"output_dir={work / 'stage1'}", "class_conditional=true", f"num_classes={NUM_CLASSES}",
        f"data.manifest={m64}", f"data.features={cache64}", "data.resolution=64",
        f"batch_size={b.batch_size}", f"max_steps={b.stage1_steps}", f"save_every={max(b.stage1_steps // 4, 1)}",
        *_stage_overrides(b, "stage1")], log, data_manifest=m64)
    if stop_after == "stage1":
        return None
    data64 = [f"data.manifest={m64}", f"data.features={cache64}", "data.resolution=64",
              f"batch_size={b.batch_size}"]
    stages["stage2"] = _train_stage("stage 2 (text, 64 px)", model + common + data64 + [
        f"output_dir={work / 'stage2'}", f"max_steps={b.stage2_steps}",
        f"save_every={min(max(b.stage2_steps // 6, 1), 1000)}", *_stage_overrides(b, "stage2")], log,
        init_from=Path(stages["stage1"]["final_checkpoint"]) / "ema", data_manifest=m64)
    if stop_after == "stage2":
        return None
    last = _low_lr(stages, "stage2", model + common + data64, work, b.stage2_low_lr_steps, b, log, m64)
    return Path(stages[last]["final_checkpoint"]) / "ema"


def _reuse_components(src: Path, comp: Path, log) -> None:
    """Copy tokenizer, T5 and VAE from a pipeline folder (e.g. the bundled reference) instead of
    making them: the VAE's training is the recipe's slowest CPU-only part. Its PSNR is taken from
    ``src/training.json`` when that records one."""
    for part in ("tokenizer", "text_encoder", "vae"):
        if not (src / part).is_dir():
            raise FileNotFoundError(f"--components {src}: no {part}/ folder there (need tokenizer/, text_encoder/, vae/)")
    tmp = comp.with_name(comp.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part in ("tokenizer", "text_encoder", "vae"):
        shutil.copytree(src / part, tmp / part)
    record = json.loads((src / "training.json").read_text()) if (src / "training.json").is_file() else {}
    # a pipeline exported from a GPU arm (benchmarks/gpu_arms_collect.py) has no budget, only its stages
    stages = list((record.get("stages") or {}).values())
    scale = (record.get("budget") or {}).get("latent_scale_128", stages[-1].get("latent_scale", 1.0) if stages else 1.0)
    if scale != 1.0:  # the pipeline's VAE carries its stage 3's latent scale; the components do not
        config = json.loads((tmp / "vae" / "config.json").read_text())
        config["scaling_factor"] /= scale
        (tmp / "vae" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        log(f"VAE scaling_factor divided by the source's latent_scale_128 {scale:g}")
    (tmp / "vae_metrics.json").write_text(json.dumps({"psnr_db": record.get("vae_psnr_db", float("nan")),
                                                      "seconds": 0.0, "copied_from": str(src)}) + "\n")
    tmp.rename(comp)
    log(f"components (tokenizer, T5, VAE) copied from {src}")


def check_request(b: ReferenceBudget, stop_after: str | None = None, stage3_from: Path | None = None) -> Path | None:
    """``train_reference``'s argument checks, all before any data is made (the CLI runs them first to
    report a bad option as a usage error): ValueError or FileNotFoundError naming the bad one. Returns
    the weights folder ``stage3_from`` points at (a pipeline folder's ``transformer/``), or None."""
    for what, names in (("stage_minutes", b.stage_minutes), ("compile_stages", b.compile_stages)):
        unknown = set(names) - set(STAGES)
        if unknown:
            raise ValueError(f"{what} names unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
    if stop_after is not None and stop_after not in STAGES:
        raise ValueError(f"stop_after {stop_after!r} is not a stage; known: {', '.join(STAGES)}")
    if not b.latent_scale_128 > 0:
        raise ValueError(f"latent_scale_128 must be positive, got {b.latent_scale_128}")
    if stage3_from is None:
        return None
    if stop_after not in (None, "stage3", "stage3b"):
        raise ValueError(f"stage3_from skips stages 1-2b, so stop_after {stop_after!r} would train nothing")
    weights = Path(stage3_from)
    if (weights / "transformer").is_dir():  # a pipeline folder
        weights = weights / "transformer"
    if not any(weights.glob("*.safetensors")):
        raise FileNotFoundError(f"stage3_from {stage3_from}: no *.safetensors weights in {weights}")
    return weights


def continued_record(parent_weights: Path, record: dict) -> dict:
    """The training record of a run whose stage 3 started from ``parent_weights`` (``stage3_from``), with
    the parent's history folded in: a bundle made by continuing another still says how all of it was
    made. ``continued_from`` names the weights (path and SHA-256 of their files) and holds the parent
    pipeline's own record from its ``training.json`` (a bare transformer folder has none), less its
    ``seconds`` and ``loss_curves``: those come first in this record's, followed by this run's, whose
    names get `` (continued)`` where the parent used them (`` (continued 2)`` on a second continuation).
    ``seconds_this_run`` is this run's own wall time."""
    parent_weights = Path(parent_weights)
    found = parent_weights.parent / "training.json"
    parent = json.loads(found.read_text()) if parent_weights.name == "transformer" and found.is_file() else {}
    taken = set(parent.get("seconds", {})) | set(parent.get("loss_curves", {}))
    rename = {}
    for name in dict.fromkeys([*record.get("seconds", {}), *record.get("loss_curves", {})]):
        new, n = name, 1
        while new in taken:
            new = f"{name} (continued)" if n == 1 else f"{name} (continued {n})"
            n += 1
        rename[name] = new
    merged = dict(record)
    for key in ("seconds", "loss_curves"):
        merged[key] = {**parent.get(key, {}), **{rename[k]: v for k, v in record.get(key, {}).items()}}
    merged["seconds_this_run"] = sum(record.get("seconds", {}).values())
    merged["continued_from"] = {
        "weights": str(parent_weights), "weights_sha256": weights_sha256(parent_weights),
        "record": {k: v for k, v in parent.items() if k not in ("seconds", "loss_curves")}}
    return merged


# each stage's step budget as a `world train-reference` option (what a copy of a stopped run is given)
STEP_OPTIONS = {"stage1": "--stage1-steps", "stage2": "--stage2-steps", "stage2b": "--stage2-low-lr-steps",
                "stage3": "--stage3-steps", "stage3b": "--stage3-low-lr-steps"}


def train_reference(out: Path, work: Path, budget: ReferenceBudget | None = None, log=print, *, workers: int = 1,
                    components: Path | None = None, prepare_only: bool = False, stop_after: str | None = None,
                    stage3_from: Path | None = None) -> dict:
    """Run the whole recipe in ``work`` (resumable: finished parts are kept) and write the pipeline to ``out``.
    ``workers`` render the images in parallel; ``components`` is a pipeline folder whose tokenizer, T5
    and VAE are used instead of making new ones; ``prepare_only`` stops once data, components and
    feature caches are ready (prepare on one machine, train on another); ``stop_after`` (a stage name)
    stops once that stage is trained, with no pipeline: later stages can then be tried several ways
    from copies of ``work`` (``benchmarks/reference_gpu_arms.sh`` with ``SHARED_UNTIL``). Such a copy
    resumes the finished stages when their step budgets are the steps they reached. ``stage3_from``
    (a 64 px text model: a transformer folder, or a pipeline folder with ``transformer/``) skips
    stages 1–2b and starts stage 3 from it, e.g. a stage 2b brought back from a GPU lease, or the
    bundle itself for a longer stage 3; ``training.json`` then holds the parent's record too
    (``continued_record``)."""
    from pixart.extract import run_extract
    from pixart.pipeline import PixArtPipeline
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    b = budget or ReferenceBudget()
    stage3_weights = check_request(b, stop_after, stage3_from)
    work, out = Path(work), Path(out)
    work.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.perf_counter()
    make_dataset(work / "data64", b.n_images_64, 64, seed=b.seed, and_fraction=b.and_fraction, workers=workers)
    make_dataset(work / "data128", b.n_images_128, 128, seed=b.seed + 1, sizes=[(128, 128), (128, 256), (256, 128)],
                 and_fraction=b.and_fraction, workers=workers)
    cache64, cache128 = work / "cache64", work / "cache128"  # keyed by path and caption: new captions are encoded
    times["data"] = time.perf_counter() - t0

    comp = work / "components"
    if components is not None and not (comp / "vae" / "config.json").is_file():
        _reuse_components(Path(components), comp, log)
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
        (comp / "vae_metrics.json").write_text(json.dumps({"psnr_db": min(psnrs.values()), "psnr_db_by_set": psnrs,
                                                           "seconds": vae_seconds}) + "\n")
    vae_metrics = json.loads((comp / "vae_metrics.json").read_text())
    times["vae"] = vae_metrics["seconds"]

    model = [f"model=S-2-256", f"model_overrides={{hidden_size: {b.hidden}, depth: {b.depth}, num_heads: {b.heads}, "
             f"patch_size: {b.patch_size}, caption_channels: {b.t5_dim}, model_max_length: {b.max_length}, input_size: 16}}"]
    common = [f"t5={comp}", f"vae={comp}", f"max_length={b.max_length}", f"seed={b.seed}", "tensorboard=false",
              f"optim.lr={b.lr}", "optim.weight_decay=0.0", "optim.grad_clip=1.0", "optim.warmup_steps=200",
              "ema_decay=0.999", "keep_checkpoints=1", "log_every=50", "data.preload_features=true",
              f"mixed_precision={b.mixed_precision}"]
    # Every stage reads its data from the manifest, not the folder: a folder reused with a smaller
    # --n-images-* still holds the earlier, larger run's images, which the manifest (and the stage's
    # data hash) leave out. The items, their order and cache keys are the folder's otherwise.
    m64, m128 = work / "data64" / "manifest.jsonl", work / "data128" / "manifest.jsonl"
    for cache, manifest, res, ms in ((cache64, m64, 64, False), (cache128, m128, 128, True)):
        run_extract(cache, None, [f"data.manifest={manifest}", f"t5={comp}", f"vae={comp}",  # resumable
                                  f"data.resolution={res}", f"data.multi_scale={str(ms).lower()}",
                                  "data.bucket_multiple=8", f"max_length={b.max_length}"], batch_size=64)
    if prepare_only:
        log(f"prepared {work}: data64/, data128/, components/, cache64/, cache128/")
        return {"prepared": str(work)}
    stages = {}
    if stage3_weights is None:
        last_weights = _stages_1_to_2b(stages, model, common, b, work, m64, cache64, log, stop_after)
        if stop_after in ("stage1", "stage2", "stage2b"):
            return _stopped(stages, log)
    else:
        last_weights = stage3_weights
        log(f"stages 1-2b skipped: stage 3 starts from {last_weights}")
    model128 = [m.replace("input_size: 16}", "input_size: 32, lewei_scale: 2.0}") for m in model]
    data128 = [f"data.manifest={m128}", f"data.features={cache128}", "data.resolution=128",
               "data.multi_scale=true", "data.bucket_multiple=8", f"batch_size={b.batch_size_128}",
               f"latent_scale={b.latent_scale_128}"]
    scaled = {"latent_scale": b.latent_scale_128}
    stages["stage3"] = _train_stage("stage 3 (multi-aspect, 128 px)", model128 + common + data128 + [
        f"output_dir={work / 'stage3'}", f"max_steps={b.stage3_steps}",
        f"save_every={min(max(b.stage3_steps // 3, 1), 500)}", *_stage_overrides(b, "stage3"),
        *([f"optim.lr={b.stage3_lr}"] if b.stage3_lr is not None else [])], log,
        init_from=last_weights, data_manifest=m128, settings=scaled)
    if stop_after == "stage3":
        return _stopped(stages, log)
    last = _low_lr(stages, "stage3", model128 + common + data128, work, b.stage3_low_lr_steps, b, log, m128,
                   settings=scaled)

    from pixart.checkpoints import load_transformer

    transformer = load_transformer(Path(stages[last]["final_checkpoint"]) / "ema")
    pipe = PixArtPipeline(transformer, TextEncoder.from_pretrained(comp, max_length=b.max_length),
                          VAE.from_pretrained(comp).rescaled(b.latent_scale_128))
    for part in ("transformer", "text_encoder", "tokenizer", "vae", "scheduler"):  # keep other files in out/
        shutil.rmtree(out / part, ignore_errors=True)
    pipe.export_diffusers(out)
    record = {
        "budget": b.__dict__, "seed": b.seed, "vae_psnr_db": vae_metrics["psnr_db"], "device": "cpu" if not torch.cuda.is_available() else "cuda",
        "seconds": {**times, **{k: v["seconds"] for k, v in stages.items()}},
        "loss_curves": {k: _loss_curve(Path(v["output_dir"]) / "metrics.jsonl") for k, v in stages.items()},
    }
    if stage3_weights is not None:
        record = continued_record(stage3_weights, record)
    (out / "training.json").write_text(json.dumps(record) + "\n")
    return record
