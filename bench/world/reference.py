"""Build the bundled reference pipeline for the shapes world from scratch (``world train-reference``).

Every component is made by the project, in the real formats:
1. data: ``make_dataset`` at 64 px (stages 1–2) and 128 px with 1:1, 1:2 and 2:1 images (stage 3);
2. tokenizer, text encoder (a small T5 frozen at its seeded random initialisation) and VAE, made
   from the world's data (``bench.world.components``);
3. PixArt (adaLN-single) trained with ``pixart.train`` through the paper's three stages:
   class-conditional 64 px → dense-caption text-to-image 64 px → multi-aspect 128 px, each stage
   from the previous stage's EMA weights, from feature caches made by ``extract-features``. Stages 2
   and 3 each end with a "b" continuation at a lower learning rate (``ReferenceBudget.low_lr``).
   Stage 3 may train on latents × ``latent_scale_128`` (input scaling,
   ``pixart.train.TrainConfig.latent_scale``); the pipeline's VAE then carries ``scaling_factor`` ×
   that, and ``--components`` taking the VAE from such a pipeline divides it back out.
``stage_configs`` gives each stage's trainer config; ``bench.world.stage_records`` keeps what each
stage started from, so that a stage whose inputs changed starts again instead of resuming.
The result is saved as a diffusers ``PixArtAlphaPipeline`` folder (``PixArtPipeline`` and diffusers
both load it) with ``training.json`` (budgets, seed, wall times, losses, PSNR).
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.errors import BenchError, check_out_folder, check_range, check_room
from bench.world.budget import ReferenceBudget
from bench.world.components import check_components, ensure_components
from bench.world.dataset import ITEM_BYTES, make_dataset
from bench.world.scene import NUM_CLASSES
from bench.world.stage_records import add_wall_seconds, continued_record, loss_curve, set_aside_if_inputs_changed
from pixart.errors import read_json
from pixart.files import write_json_atomic
from pixart.train import DataConfig, OptimConfig, TrainConfig
from pixart.train_config import COMPILE_MODES


STAGES = ("stage1", "stage2", "stage2b", "stage3", "stage3b")
SIZES_128 = [(128, 128), (128, 256), (256, 128)]  # data128's images, cycled (stage 3's aspect buckets)
VAE_FACTOR = 4  # the recipe's VAE: a latent pixel per 4x4 image pixels
# each stage's step budget as a `world train-reference` option (what a copy of a stopped run is given)
STEP_OPTIONS = {"stage1": "--stage1-steps", "stage2": "--stage2-steps", "stage2b": "--stage2-low-lr-steps",
                "stage3": "--stage3-steps", "stage3b": "--stage3-low-lr-steps"}


def stage_configs(b: ReferenceBudget, work: Path, components: Path | None = None) -> dict[str, TrainConfig]:
    """The trainer's config of every stage in ``STAGES`` for a run in ``work``, less ``init_from`` (the
    previous stage's final EMA weights, known once that stage is trained). ``components`` holds the
    frozen T5 and the VAE the feature caches are made with (default ``work/components``).

    Every stage reads its data from the manifest, not the folder: a folder reused with a smaller
    ``--n-images-*`` still holds the earlier, larger run's images, which the manifest (and the stage's
    data hash) leave out. The items, their order and cache keys are the folder's otherwise."""
    work = Path(work)
    comp = str(components or work / "components")
    model = {"hidden_size": b.hidden, "depth": b.depth, "num_heads": b.heads, "patch_size": b.patch_size,
             "caption_channels": b.t5_dim, "model_max_length": b.max_length, "input_size": 16}
    base = TrainConfig(model="S-2-256", model_overrides=model, t5=comp, vae=comp, max_length=b.max_length,
                       seed=b.seed, tensorboard=False, mixed_precision=b.mixed_precision, compile_mode=b.compile_mode,
                       optim=OptimConfig(lr=b.lr, weight_decay=0.0, grad_clip=1.0, warmup_steps=200),
                       ema_decay=0.999, keep_checkpoints=1, log_every=50)
    at64 = replace(base, batch_size=b.batch_size, data=DataConfig(
        manifest=str(work / "data64" / "manifest.jsonl"), features=str(work / "cache64"), resolution=64,
        preload_features=True))
    # 128 px: twice the latent side, and position embeddings interpolated to the 64 px model's range
    at128 = replace(base, model_overrides={**model, "input_size": 32, "lewei_scale": 2.0},
                    batch_size=b.batch_size_128, latent_scale=b.latent_scale_128, data=DataConfig(
                        manifest=str(work / "data128" / "manifest.jsonl"), features=str(work / "cache128"),
                        resolution=128, multi_scale=True, bucket_multiple=8, preload_features=True))

    def low_lr(cfg: TrainConfig, steps: int) -> TrainConfig:
        # a "b" stage: the same data at low_lr, from the stage's final EMA with a fresh optimiser
        # (a step-down learning-rate schedule) and another seed
        return replace(cfg, optim=replace(cfg.optim, lr=b.low_lr), seed=b.seed + 1,
                       save_every=min(max(steps // 3, 1), 2000))

    configs = {
        "stage1": (replace(at64, class_conditional=True, num_classes=NUM_CLASSES,
                           save_every=max(b.stage1_steps // 4, 1)), b.stage1_steps),
        "stage2": (replace(at64, save_every=min(max(b.stage2_steps // 6, 1), 1000)), b.stage2_steps),
        "stage2b": (low_lr(at64, b.stage2_low_lr_steps), b.stage2_low_lr_steps),
        "stage3": (replace(at128, save_every=min(max(b.stage3_steps // 3, 1), 500), optim=replace(
            at128.optim, lr=b.lr if b.stage3_lr is None else b.stage3_lr)), b.stage3_steps),
        "stage3b": (low_lr(at128, b.stage3_low_lr_steps), b.stage3_low_lr_steps),
    }
    # deep copies: no two stages share a nested config (model_overrides, data, optim)
    return {name: replace(copy.deepcopy(cfg), output_dir=str(work / name), max_steps=steps,
                          compile=name in b.compile_stages,
                          max_seconds=float(b.stage_minutes[name]) * 60 if name in b.stage_minutes else None)
            for name, (cfg, steps) in configs.items()}


def extract_features(cfg: TrainConfig) -> None:
    """Encode the items of ``cfg``'s data manifest into its feature cache with its T5 and VAE, each at
    the bucket the stage trains it at (resumable: an item is cached under its image path and caption,
    so new captions are encoded)."""
    from pixart.extract import run_extract

    d = cfg.data
    run_extract(d.features, None, [
        f"data.manifest={d.manifest}", f"t5={cfg.t5}", f"vae={cfg.vae}", f"data.resolution={d.resolution}",
        f"data.multi_scale={str(d.multi_scale).lower()}", f"data.bucket_multiple={d.bucket_multiple}",
        f"max_length={cfg.max_length}"], batch_size=64)


def make_data(work: Path, b: ReferenceBudget, workers: int = 1, sizes: tuple[int, ...] = (64, 128)) -> None:
    """The recipe's datasets in ``work``: ``data64/`` (square) and ``data128/`` (1:1, 1:2 and 2:1)."""
    if 64 in sizes:
        make_dataset(work / "data64", b.n_images_64, 64, seed=b.seed, and_fraction=b.and_fraction, workers=workers)
    if 128 in sizes:
        make_dataset(work / "data128", b.n_images_128, 128, seed=b.seed + 1, sizes=SIZES_128,
                     and_fraction=b.and_fraction, workers=workers)


def option_of(field: str) -> str:
    """The `world train-reference` option that sets a ``ReferenceBudget`` field (the field's name if none does)."""
    if field in ("vae_batch_size", "vae_images_128", "t5_dim", "max_length"):
        return field
    return {"compile_stages": "--compile"}.get(field, "--" + field.replace("_", "-"))


def parse_stage_minutes(text: str) -> dict:
    """--stage-minutes 'stage2=4,stage3=1.5' → {"stage2": 4.0, "stage3": 1.5}; BenchError on a malformed part."""
    caps = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            caps[name.strip()] = float(value)  # no "=": float("") fails too
        except ValueError:
            raise BenchError(f"--stage-minutes: {part!r} is not stage=minutes (e.g. 'stage2=4,stage3=1.5')") from None
    return caps


def _check_budget(b: ReferenceBudget) -> None:
    """Every number of ``b`` in its range, and a model the trainer can build (BenchError naming the option)."""
    for name in ("n_images_64", "n_images_128", "vae_steps", "stage1_steps", "stage2_steps", "stage3_steps",
                 "batch_size", "batch_size_128", "vae_batch_size", "vae_images_128", "hidden", "depth", "heads",
                 "patch_size", "t5_dim", "max_length"):
        check_range(option_of(name), getattr(b, name), 1, whole=True)
    for name in ("stage2_low_lr_steps", "stage3_low_lr_steps", "seed"):
        check_range(option_of(name), getattr(b, name), 0, whole=True)
    for name in ("lr", "low_lr", "stage3_lr"):
        if getattr(b, name) is not None:
            check_range(option_of(name), getattr(b, name), 0, 1, above=True, why="learning rates above 1 diverge")
    check_range("--and-fraction", b.and_fraction, 0, 1)
    check_range("--latent-scale-128", b.latent_scale_128, 0, 100, above=True)
    if b.mixed_precision not in ("no", "bf16", "fp16"):
        raise BenchError(f"--mixed-precision must be no, bf16 or fp16, got {b.mixed_precision!r}")
    if b.compile_mode not in COMPILE_MODES:
        raise BenchError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, got {b.compile_mode!r}")
    for option, names in (("--stage-minutes", b.stage_minutes), ("--compile", b.compile_stages)):
        unknown = set(names) - set(STAGES)
        if unknown:
            raise BenchError(f"{option} names unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
    for name, minutes in b.stage_minutes.items():
        check_range(f"--stage-minutes {name}", minutes, 0)
    if b.hidden % b.heads or b.hidden % 4:
        raise BenchError(f"--hidden {b.hidden} must be a multiple of --heads {b.heads} and of 4 (the 2D sin-cos "
                         "position embedding)")
    from pixart.data import aspect_buckets, closest_bucket

    configs = stage_configs(b, Path("work"))
    buckets = aspect_buckets(128, configs["stage3"].data.bucket_multiple)
    sides = {64 // VAE_FACTOR} | {side // VAE_FACTOR for hw in SIZES_128 for side in closest_bucket(*hw, buckets)}
    if any(side % b.patch_size for side in sides):
        fits = [p for p in range(1, min(sides) + 1) if not any(side % p for side in sides)]
        raise BenchError(f"--patch-size {b.patch_size} must divide every latent side the stages train at "
                         f"({', '.join(map(str, sorted(sides)))}): use {' or '.join(map(str, fits))}")
    for cfg in configs.values():  # the trainer's own checks of the rest (a "b" stage of 0 steps is left out)
        if cfg.max_steps > 0:
            cfg.validate()


def check_request(b: ReferenceBudget, stop_after: str | None = None, stage3_from: Path | None = None, *,
                  out: Path | None = None, work: Path | None = None, components: Path | None = None,
                  workers: int = 1) -> Path | None:
    """``train_reference``'s argument checks, all before any data is made: a ``BenchError`` naming the
    bad option. Returns the weights folder ``stage3_from`` points at (a pipeline folder's
    ``transformer/``), or None."""
    _check_budget(b)
    check_range("--workers", workers, 1, whole=True)
    if stop_after is not None and stop_after not in STAGES:
        raise BenchError(f"--stop-after {stop_after!r} is not a stage; known: {', '.join(STAGES)}")
    for option, folder in (("--out", out), ("--work", work)):
        if folder is not None:
            check_out_folder(folder, option)
    if components is not None:
        check_components(Path(components))
    elif work is not None and not (Path(work) / "components" / "vae" / "config.json").is_file():
        pool = max(0, b.n_images_64 - 64) + max(0, min(b.n_images_128, b.vae_images_128) - 64)
        if pool < 1:
            raise BenchError("the VAE holds out 64 images of each set and trains on the rest: --n-images-64 or "
                             "--n-images-128 must be above 64 (or take the VAE from a pipeline with --components)")
    if work is not None:
        check_room((b.n_images_64 + b.n_images_128) * ITEM_BYTES, "the images", "--n-images-64 and --n-images-128",
                   disk=Path(work))
    if stage3_from is None and b.batch_size > b.n_images_64:
        raise BenchError(f"--batch-size {b.batch_size} is more than the {b.n_images_64} images of --n-images-64")
    per_bucket = -(-b.n_images_128 // len(SIZES_128))  # data128 cycles its sizes: the largest bucket's images
    if stop_after in (None, "stage3", "stage3b") and b.batch_size_128 > per_bucket:
        raise BenchError(f"--batch-size-128 {b.batch_size_128} is more than the {per_bucket} images of the largest "
                         f"aspect bucket (--n-images-128 {b.n_images_128} across {len(SIZES_128)} shapes)")
    if stage3_from is None:
        return None
    if stop_after not in (None, "stage3", "stage3b"):
        raise BenchError(f"--stage3-from skips stages 1-2b, so --stop-after {stop_after} would train nothing")
    weights = Path(stage3_from)
    if not weights.exists():
        raise BenchError(f"--stage3-from {stage3_from}: no such folder")
    if (weights / "transformer").is_dir():  # a pipeline folder: its record goes into training.json
        weights = weights / "transformer"
        if (weights.parent / "training.json").exists():
            read_json(weights.parent / "training.json", BenchError, "training record")
    if not any(weights.glob("*.safetensors")):
        raise BenchError(f"--stage3-from {stage3_from}: no *.safetensors weights in {weights} (give a pipeline "
                         "folder, or a transformer / checkpoint ema/ folder)")
    return weights


def _train_stage(title: str, cfg: TrainConfig, log, settings: dict | None = None) -> dict:
    """Train (or resume) one stage; a run of it whose parent weights, data or ``settings`` changed
    is set aside first. ``seconds`` is its wall time summed over the calls that trained it."""
    from pixart.train import train

    init_from = Path(cfg.init_from) if cfg.init_from is not None else None
    set_aside_if_inputs_changed(Path(cfg.output_dir), init_from, Path(cfg.data.manifest), log, settings)
    t0 = time.perf_counter()
    result = train(cfg, resume=True)
    result["seconds"] = add_wall_seconds(Path(cfg.output_dir), time.perf_counter() - t0)
    log(f"{title}: {len(result['history'])} steps in {result['seconds'] / 60:.1f} min, "
        f"last loss {result['history'][-1]['loss'] if result['history'] else float('nan'):.4f}")
    return result


def _stopped(stages: dict, log) -> dict:
    """``stop_after``'s result: each trained stage's final checkpoint and step count."""
    done = {k: {"final_checkpoint": v["final_checkpoint"], "steps": _step_of(v["final_checkpoint"])}
            for k, v in stages.items()}
    log("stopped after " + ", ".join(f"{k} ({v['steps']} steps)" for k, v in done.items()) + "; no pipeline written")
    return {"stopped_after": list(done)[-1], "stages": done}


def _step_of(checkpoint: str | Path) -> int:
    return int(Path(checkpoint).name.removeprefix("step-"))


def _train_stages(configs: dict[str, TrainConfig], b: ReferenceBudget, log, start_from: Path | None,
                  stop_after: str | None) -> dict:
    """Train the stages of ``configs`` in order up to ``stop_after`` (default: all), each from the
    previous one's final EMA weights (the first from ``start_from``); a "b" stage with no steps is
    left out. Returns each trained stage's trainer result."""
    titles = {"stage1": "stage 1 (class-conditional, 64 px)", "stage2": "stage 2 (text, 64 px)",
              "stage3": "stage 3 (multi-aspect, 128 px)"}
    stages, weights = {}, start_from
    for name, cfg in configs.items():
        if not name.endswith("b") or cfg.max_steps > 0:
            title = titles.get(name, f"{name} ({name[:-1]} at lr {b.low_lr:g})")
            settings = {"latent_scale": b.latent_scale_128} if name.startswith("stage3") else None
            cfg = replace(cfg, init_from=str(weights) if weights is not None else None)
            stages[name] = _train_stage(title, cfg, log, settings)
            weights = Path(stages[name]["final_checkpoint"]) / "ema"
        if name == stop_after:
            break
    return stages


def train_reference(out: Path, work: Path, budget: ReferenceBudget | None = None, log=print, *, workers: int = 1,
                    components: Path | None = None, prepare_only: bool = False, stop_after: str | None = None,
                    stage3_from: Path | None = None) -> dict:
    """Run the whole recipe in ``work`` (resumable: finished parts are kept) and write the pipeline to ``out``.
    ``workers`` render the images in parallel; ``components`` is a pipeline folder whose tokenizer, T5
    and VAE are used instead of making new ones; ``prepare_only`` stops once data, components and
    feature caches are ready (prepare on one machine, train on another); ``stop_after`` (a stage name)
    stops once that stage is trained, with no pipeline: copies of ``work`` can then continue the later
    stages in different ways. Such a copy resumes the finished stages when their step budgets are the
    steps they reached (``STEP_OPTIONS``). ``stage3_from`` (a 64 px text model: a transformer folder,
    or a pipeline folder with ``transformer/``) skips stages 1–2b and starts stage 3 from it, e.g. a
    kept stage 2b, or the bundle itself for a longer stage 3; ``training.json`` then holds the
    parent's record too (``continued_record``)."""
    from pixart.checkpoints import load_transformer
    from pixart.pipeline import PixArtPipeline
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    b = budget or ReferenceBudget()
    stage3_weights = check_request(b, stop_after, stage3_from, out=out, work=work, components=components,
                                   workers=workers)
    work, out = Path(work), Path(out)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_data(work, b, workers)
    times = {"data": time.perf_counter() - t0}
    vae_metrics = ensure_components(work, b, log, source=components)
    times["vae"] = vae_metrics["seconds"]
    configs = stage_configs(b, work)
    extract_features(configs["stage1"])
    extract_features(configs["stage3"])
    if prepare_only:
        log(f"prepared {work}: data64/, data128/, components/, cache64/, cache128/")
        return {"prepared": str(work)}
    if stage3_weights is not None:
        log(f"stages 1-2b skipped: stage 3 starts from {stage3_weights}")
        configs = {k: v for k, v in configs.items() if k.startswith("stage3")}
    stages = _train_stages(configs, b, log, stage3_weights, stop_after)
    if stop_after in STAGES[:-1]:  # stopping after the last stage is a whole run
        return _stopped(stages, log)

    comp = work / "components"
    transformer = load_transformer(Path(stages[list(stages)[-1]]["final_checkpoint"]) / "ema")
    pipe = PixArtPipeline(transformer, TextEncoder.from_pretrained(comp, max_length=b.max_length),
                          VAE.from_pretrained(comp).rescaled(b.latent_scale_128))
    for part in ("transformer", "text_encoder", "tokenizer", "vae", "scheduler"):  # keep other files in out/
        shutil.rmtree(out / part, ignore_errors=True)
    pipe.export_diffusers(out)
    record = {
        "budget": b.__dict__, "seed": b.seed, "vae_psnr_db": vae_metrics["psnr_db"], "device": "cpu" if not torch.cuda.is_available() else "cuda",
        "seconds": {**times, **{k: v["seconds"] for k, v in stages.items()}},
        "loss_curves": {k: loss_curve(Path(v["output_dir"]) / "metrics.jsonl") for k, v in stages.items()},
    }
    if stage3_weights is not None:
        record = continued_record(stage3_weights, record)
    write_json_atomic(out / "training.json", record, indent=None)
    return record
