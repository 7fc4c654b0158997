"""The models the generation store runs, behind one small interface.

A *source* is a callable ``images = source(prompts, seeds)`` (one PIL image per prompt; image i is
made from ``seeds[i]`` whatever the batch) with ``describe()``: a dict of the model's identity
(``kind``, ``class``, a SHA-256 of its weights), its ``settings`` (compared when a run resumes) and
where it was loaded from (``path``, ``device``: recorded only).

- ``PixArtSource``: our pipeline (``pixart.pipeline.PixArtPipeline``: our pipeline folders, diffusers
  ``PixArtAlphaPipeline`` folders, a transformer checkpoint with T5 and VAE folders); the hash is the
  transformer's weights'.
- ``DiffusersSource``: any diffusers text-to-image pipeline, ``DiffusionPipeline.from_pretrained``
  on a folder or a hub id already in the Hugging Face cache (nothing is downloaded). Each image has
  its own ``torch.Generator`` seeded with its seed, on the CPU by default (the same noise on every
  machine) or, with ``noise="device"``, on the pipeline's device as the official script does;
  ``scheduler`` swaps in another diffusers scheduler on the folder's scheduler config (the official
  script runs SD 2 with ``DDIMScheduler``). The hash covers every weight file of the folder.
- A folder of images made elsewhere is ``bench.generate.folder.FolderSource``.

``load_source(ckpt, ...)`` tells them apart and loads one.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from pathlib import Path

from bench.errors import BenchError, check_range
from bench.errors import check_device as bench_check_device
from bench.generate.plan import local_device
from pixart.errors import read_json, reading
from pixart.files import sha256_files
from pixart.names import DTYPES
from pixart.pipeline import MAX_GUIDANCE, MAX_SIDE, PIPELINE_FILE, resolve_pretrained

LOADERS = ("auto", "pixart", "diffusers", "folder")
NOISE = ("cpu", "device")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
PIXART_ONLY = ("sampler", "null_caption", "t5", "vae", "config")  # options of our pipeline alone


class PixArtSource:
    """Our pipeline with fixed sampling settings."""

    def __init__(self, pipe, settings, *, path: str, dtype: str):
        from pixart.pipeline import PipelineError

        self.pipe, self.path, self.dtype = pipe, path, dtype
        self.settings = settings.resolved(pipe)
        try:  # the model's own rule for sizes, named as the options
            pipe.generation_size(self.settings.height, self.settings.width, self.settings.resolution_binning)
        except PipelineError as e:
            raise BenchError(f"--height {self.settings.height} --width {self.settings.width}: {e}") from None

    def __call__(self, prompts: list[str], seeds: list[int]):
        return self.pipe(list(prompts), list(seeds), self.settings, batch_size=len(prompts), progress=False)

    def describe(self) -> dict:
        return {"kind": "pixart", "class": "PixArtPipeline", "transformer_sha256": self.pipe.checkpoint_hash(),
                "settings": {**dataclasses.asdict(self.settings), "dtype": self.dtype},
                "path": self.path, "device": str(self.pipe.device)}


class DiffusersSource:
    """A diffusers text-to-image pipeline with fixed settings (None: the pipeline's own default)."""

    def __init__(self, pipe, *, path: str, weights_sha256: str, steps=None, cfg=None, height=None, width=None,
                 noise: str = "cpu", dtype: str = "fp32", scheduler: str | None = None):
        self.pipe, self.path, self.weights_sha256, self.noise, self.dtype = pipe, path, weights_sha256, noise, dtype
        if scheduler is not None:
            pipe.scheduler = make_scheduler(scheduler, pipe)
        params = inspect.signature(pipe.__call__).parameters
        cls = type(pipe).__name__
        for needed in ("prompt", "generator"):
            if needed not in params:
                raise BenchError(f"{path} is a {cls}, whose call takes no {needed}: not a text-to-image pipeline "
                                 "this command can seed")
        given = {"num_inference_steps": ("--steps", steps), "guidance_scale": ("--cfg", cfg),
                 "height": ("--height", height), "width": ("--width", width)}
        self.kwargs = {}
        for name, (option, value) in given.items():
            if value is not None and name not in params:
                raise BenchError(f"{option}: {path} is a {cls}, whose call takes no {name}; leave {option} out")
            if value is not None:
                self.kwargs[name] = value
        factor = getattr(pipe, "vae_scale_factor", None)
        for option, side in (("--height", height), ("--width", width)):
            if side is not None and isinstance(factor, int) and side % factor:
                raise BenchError(f"{option} {side}: {cls} makes sides that are multiples of {factor}")
        # the defaults of the call, so that the manifest says what was used
        self.settings = {name: self.kwargs.get(name, _default(params, name)) for name in given}
        scheduler = getattr(pipe, "scheduler", None)
        self.settings.update({"scheduler": type(scheduler).__name__ if scheduler is not None else None,
                              # without "_class_name" / "_diffusers_version": a newer diffusers may resume the run
                              "scheduler_config": {k: v for k, v in scheduler.config.items() if not k.startswith("_")}
                              if scheduler is not None else None,
                              "noise": noise, "dtype": dtype})
        pipe.set_progress_bar_config(disable=True)

    def __call__(self, prompts: list[str], seeds: list[int]):
        import torch

        where = "cpu" if self.noise == "cpu" else self.pipe.device
        generators = [torch.Generator(where).manual_seed(int(s)) for s in seeds]
        return self.pipe(prompt=list(prompts), generator=generators, output_type="pil", **self.kwargs).images

    def describe(self) -> dict:
        return {"kind": "diffusers", "class": type(self.pipe).__name__, "weights_sha256": self.weights_sha256,
                "settings": self.settings, "path": self.path, "device": str(self.pipe.device)}


def make_scheduler(name: str, pipe):
    """The diffusers scheduler class ``name`` on the pipeline's own scheduler config, as the official script
    makes its DDIM scheduler (``DDIMScheduler.from_pretrained(model, subfolder="scheduler")``)."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if not (name.endswith("Scheduler") and isinstance(cls, type) and hasattr(cls, "from_config")):
        raise BenchError(f"--scheduler {name!r} is not a diffusers scheduler class (e.g. DDIMScheduler, "
                         "PNDMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler)")
    if getattr(pipe, "scheduler", None) is None:
        raise BenchError(f"--scheduler: {type(pipe).__name__} has no scheduler to replace")
    return cls.from_config(pipe.scheduler.config)


def _default(params, name):
    if name not in params or params[name].default is inspect.Parameter.empty:
        return None
    return params[name].default


def weights_sha256(folder: Path) -> str:
    """SHA-256 of every weight file under ``folder``, in path order, with their names."""
    files = sorted((p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file()),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise BenchError(f"{folder} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    return sha256_files(files, with_names=True)


def detect(root: Path) -> str:
    """Which loader a resolved ``--ckpt`` needs: "folder", "pixart" or "diffusers"."""
    if root.is_dir() and (root / "samples").is_dir() and not (root / "model_index.json").exists():
        return "folder"
    if root.is_dir() and (root / "model_index.json").is_file():
        index = read_json(root / "model_index.json", BenchError, "diffusers pipeline index")
        return "pixart" if index.get("_class_name") == "PixArtAlphaPipeline" else "diffusers"
    if root.is_file() or (root / PIPELINE_FILE).is_file() or (root / "config.json").is_file():
        return "pixart"
    raise BenchError(f"--ckpt {root} is none of: a diffusers pipeline folder (model_index.json), a pixart-bench "
                     f"pipeline folder ({PIPELINE_FILE}), a PixArt transformer checkpoint (with --t5 and --vae), "
                     "or a folder of images in the official layout (samples/<prompt>_<NNNNNN>.png)")


def check_settings(steps, cfg, height, width, dtype, noise, loader) -> None:
    """BenchError naming the option that is out of range, before any model is loaded."""
    if steps is not None:
        check_range("--steps", steps, 1, 1000, whole=True)
    if cfg is not None and not (isinstance(cfg, (int, float)) and math.isfinite(cfg) and 0 <= cfg <= MAX_GUIDANCE):
        raise BenchError(f"--cfg must be a number from 0 to {MAX_GUIDANCE:g} (1 turns guidance off), got {cfg!r}")
    for option, side in (("--height", height), ("--width", width)):
        if side is not None:
            check_range(option, side, 1, MAX_SIDE, whole=True)
    for option, value, choices in (("--dtype", dtype, DTYPES), ("--noise", noise, NOISE),
                                   ("--loader", loader, LOADERS)):
        if value not in choices:
            raise BenchError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def check_device(device: str) -> str:
    """The device this process generates on: a known device (BenchError otherwise), and under a
    multi-process launch ``cuda`` means the process's own GPU."""
    bench_check_device(device)
    return local_device(device)


def check_bare_checkpoint(ckpt: str, t5=None, vae=None, config=None, *, option: str = "--ckpt",
                          component_options: bool = True) -> None:
    """For a ``ckpt`` that is a transformer alone (a file, or a folder with a config.json), given without
    its T5 encoder or VAE: a CheckpointError naming it when it is no PixArt transformer checkpoint (a text
    file, an image, a truncated .pth, another model's .safetensors), else a BenchError saying what to add
    (``component_options``: the command takes --t5 and --vae; else only a pipeline folder made with
    ``pixart-bench export-diffusers``). Nothing for pipelines, or when both components are given (loading
    checks the checkpoint then)."""
    root = resolve_pretrained(ckpt)
    if not (root.is_file() or (root / "config.json").is_file()) or (t5 is not None and vae is not None):
        return
    from pixart.checkpoints import load_transformer

    load_transformer(root, config)  # a file that is no checkpoint is named here, with what was expected
    export = f"pixart-bench export-diffusers {ckpt} OUT --t5 PATH --vae PATH"
    if component_options:
        missing = [what for what, v in (("the T5 encoder (--t5 PATH)", t5), ("the VAE (--vae PATH)", vae)) if v is None]
        raise BenchError(f"{option} {ckpt} is a transformer checkpoint only: also pass {' and '.join(missing)} "
                         f"folder{'s' if len(missing) > 1 else ''}, or give a pipeline folder made from the three "
                         f"({export})")
    raise BenchError(f"{option} {ckpt} is a transformer checkpoint only, and this command takes pipeline folders: "
                     f"make one from it, its T5 encoder and its VAE ({export}) and give OUT")


def load_source(ckpt: str, *, loader: str = "auto", steps: int | None = None, cfg: float | None = None,
                height: int | None = None, width: int | None = None, device: str = "cpu", dtype: str = "fp32",
                noise: str | None = None, scheduler: str | None = None, sampler: str | None = None,
                null_caption: str | None = None, t5: str | None = None, vae: str | None = None,
                config: str | None = None, component_options: bool = True):
    """The source ``ckpt`` names (a path, or a hub id in the Hugging Face cache), loaded with these
    settings; options that do not apply to it are a BenchError, as are bad values, before loading. A
    transformer checkpoint alone needs ``t5`` and ``vae`` (``check_bare_checkpoint``; ``component_options``:
    whether the command has --t5 and --vae to say so)."""
    import torch

    check_settings(steps, cfg, height, width, dtype, noise or "cpu", loader)
    root = resolve_pretrained(ckpt)  # PipelineError: neither a path nor in the cache
    kind = detect(root) if loader == "auto" else loader
    given = {"--steps": steps, "--cfg": cfg, "--height": height, "--width": width, "--noise": noise,
             "--scheduler": scheduler,
             **{f"--{name.replace('_', '-')}": value for name, value in
                zip(PIXART_ONLY, (sampler, null_caption, t5, vae, config))}}
    extra = {"folder": list(given), "pixart": ["--noise", "--scheduler"],
             "diffusers": [f"--{n.replace('_', '-')}" for n in PIXART_ONLY]}
    wrong = [option for option in extra[kind] if given[option] is not None]
    if wrong:
        raise BenchError(f"{', '.join(wrong)} do(es) not apply to {ckpt} (a {kind} source)")
    if kind == "folder":
        from bench.generate.folder import FolderSource

        return FolderSource(root)
    device = check_device(device)
    torch_dtype = getattr(torch, DTYPES[dtype])
    if kind == "pixart":
        from pixart.pipeline import PixArtPipeline, SampleSettings

        settings = SampleSettings(sampler or "dpm-solver", steps, 4.5 if cfg is None else cfg, height, width,
                                  null_caption)
        settings.check()
        check_bare_checkpoint(ckpt, t5, vae, config, component_options=component_options)
        pipe = PixArtPipeline.from_pretrained(root, t5=t5, vae=vae, transformer_config=config, device=device,
                                              dtype=torch_dtype)
        return PixArtSource(pipe, settings, path=str(ckpt), dtype=dtype)
    from diffusers import DiffusionPipeline

    with reading(root, BenchError, "diffusers pipeline"), warnings.catch_warnings():
        # newer diffusers call it `dtype`; `torch_dtype` is the name every version since 0.30 takes
        warnings.filterwarnings("ignore", message=".*torch_dtype.*")
        pipe = DiffusionPipeline.from_pretrained(root, torch_dtype=torch_dtype, local_files_only=True)
    pipe = pipe.to(device)
    return DiffusersSource(pipe, path=str(ckpt), weights_sha256=weights_sha256(root), steps=steps, cfg=cfg,
                           height=height, width=width, noise=noise or "cpu", dtype=dtype, scheduler=scheduler)
