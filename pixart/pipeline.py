"""Text-to-image sampling: ``PixArtPipeline`` = T5 + PixArt + VAE + a diffusers scheduler.

    prompts ──T5──▶ y [B, L, C], mask            null branch: trained y_embedding (prompt's mask)
                                                  or T5("") with its own mask
    noise [B, 4, h, w] (one CPU torch.Generator per image) · init_noise_sigma
    for t in scheduler.timesteps:
        out = PixArt([x, x], t, [y_null, y], [mask_null, mask])
        eps = out_null[:, :4] + cfg · (out_text[:, :4] − out_null[:, :4])      (all 4 channels)
        x = scheduler.step(eps [+ variance half of out_text for iddpm], t, x, generator=per-image)
    image = VAE.decode(x) (→ resized / cropped back from the aspect-ratio bin)

The loop mirrors diffusers' ``PixArtAlphaPipeline.__call__`` step for step, so with the same
components, scheduler, seeds and the ``empty-string`` null caption both give the same latents.
Samplers are diffusers schedulers, never re-implemented: ``dpm-solver``
(DPMSolverMultistepScheduler, 20 steps), ``sde-dpm-solver`` (the same scheduler with
``algorithm_type="sde-dpmsolver++"``: fresh noise at every step, 50 steps), ``sa-solver`` (SASolverScheduler, 25 steps), ``iddpm``
/ ``ddpm`` (DDPMScheduler with ``variance_type="learned_range"`` on the 8-channel output, 100
steps, no clipping of x0 since latents are not bounded).

Differences from the official ``scripts/inference.py``: guidance covers all 4 latent channels
(the official IDDPM path guides only 3); seeds are per image (the official script draws 30
throw-away noises after seeding, so its seeds are not comparable); micro-conditions use the bin's
(height, width) and height/width, as diffusers does.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pixart.checkpoints import load_transformer, save_transformer
from pixart.errors import PipelineError, read_json
from pixart.files import package_version, sha256_files, write_json_atomic
from pixart.model import PixArt, trim_text_padding
from pixart.names import NULL_CAPTIONS, SAMPLERS
from pixart.text import TextEncoder
from pixart.vae import VAE

MAX_SIDE = 8192  # pixels: 16x the released models' 512 px side, far beyond any PixArt-α bin
MAX_GUIDANCE = 100.0  # published guidance scales are 1-20; beyond 100 the samples are noise
MAX_PROMPT_CHARS = 2000  # T5 reads the first max_length (120) tokens, about 500 characters
# PixArt-α's training schedule: linear betas 1e-4 → 0.02 over 1000 steps, ε prediction.
TRAIN_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
                  "prediction_type": "epsilon"}
PIPELINE_FILE = "pixart_pipeline.json"


def make_scheduler(sampler: str, base_config: dict | None = None, learned_sigma: bool = True):
    """A fresh diffusers scheduler for ``sampler`` on the training schedule (or a folder's scheduler config)."""
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, SASolverScheduler

    if sampler not in SAMPLERS:
        raise PipelineError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    config = {**TRAIN_SCHEDULE, **{k: v for k, v in (base_config or {}).items() if k in TRAIN_SCHEDULE}}
    if sampler == "dpm-solver":
        return DPMSolverMultistepScheduler.from_config({**(base_config or {}), **config})
    if sampler == "sde-dpm-solver":  # DPM-Solver++ with fresh noise at every step (stochastic, like IDDPM)
        return DPMSolverMultistepScheduler.from_config({**(base_config or {}), **config,
                                                        "algorithm_type": "sde-dpmsolver++"})
    if sampler == "sa-solver":
        return SASolverScheduler(**config, predictor_order=2, corrector_order=2, algorithm_type="data_prediction")
    return DDPMScheduler(**config, variance_type="learned_range" if learned_sigma else "fixed_small", clip_sample=False)


@dataclass
class SampleSettings:
    sampler: str = "dpm-solver"
    steps: int | None = None  # None: the sampler's default
    guidance_scale: float = 4.5
    height: int | None = None  # None: the model's base resolution
    width: int | None = None
    null_caption: str | None = None  # None: "trained" when the model has one, else "empty-string"
    resolution_binning: bool = True

    def check(self):
        """PipelineError naming the setting that is out of range (as its command-line option)."""
        if self.sampler not in SAMPLERS:
            raise PipelineError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        steps_max = TRAIN_SCHEDULE["num_train_timesteps"]
        if self.steps is not None and not (isinstance(self.steps, int) and 1 <= self.steps <= steps_max):
            raise PipelineError(f"--steps must be a whole number from 1 to {steps_max} (the training schedule's "
                                f"timesteps), got {self.steps!r}")
        g = self.guidance_scale
        if not (isinstance(g, (int, float)) and math.isfinite(g) and 0 <= g <= MAX_GUIDANCE):
            raise PipelineError(f"--cfg must be a number from 0 to {MAX_GUIDANCE:g} (1 turns guidance off), got {g!r}")
        for name, side in (("--height", self.height), ("--width", self.width)):
            if side is not None and not (isinstance(side, int) and 1 <= side <= MAX_SIDE):
                raise PipelineError(f"{name} must be a whole number of pixels from 1 to {MAX_SIDE}, got {side!r}")

    def resolved(self, pipe: "PixArtPipeline") -> "SampleSettings":
        self.check()
        null = self.null_caption or ("trained" if pipe.transformer.has_null_caption else "empty-string")
        if null not in NULL_CAPTIONS:
            raise PipelineError(f"unknown null caption {null!r}; choose one of {NULL_CAPTIONS}")
        if null == "trained" and not pipe.transformer.has_null_caption:
            raise PipelineError("--null-caption trained: this checkpoint has no trained null caption (y_embedding)")
        base = pipe.transformer.config.input_size * pipe.vae.downsample
        return SampleSettings(self.sampler, self.steps or SAMPLERS[self.sampler], self.guidance_scale,
                              self.height or base, self.width or base, null, self.resolution_binning)


class PixArtPipeline:
    def __init__(self, transformer: PixArt, text_encoder: TextEncoder, vae: VAE, scheduler_config: dict | None = None,
                 transformer_path: str | None = None):
        self.transformer = transformer.eval().requires_grad_(False)
        self.text_encoder = text_encoder
        self.vae = vae
        self.scheduler_config = scheduler_config
        self.transformer_path = transformer_path
        self._hash = None

    def compile(self, mode: str = "default") -> "PixArtPipeline":
        """Compile the transformer in place with ``torch.compile`` (``mode`` is torch's). The first
        call at each new shape pays the compile; later calls at that shape reuse it, images unchanged
        up to rounding. "reduce-overhead" also replays the steps as CUDA graphs."""
        self.transformer.compile(mode=mode)
        return self

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        t5: str | os.PathLike | None = None,
        vae: str | os.PathLike | None = None,
        transformer_config=None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        t5_dtype: torch.dtype | None = None,
        max_length: int | None = None,
    ) -> "PixArtPipeline":
        """From (a) our pipeline folder, (b) a diffusers PixArtAlphaPipeline folder or a hub id in the
        HF cache, or (c) an official ``.pth`` (or a transformer folder) with ``t5=`` and ``vae=`` paths."""
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise PipelineError(f"--device {device}: no CUDA device is available (torch {torch.__version__}); "
                                "use --device cpu")
        root = resolve_pretrained(path)
        if root.is_file() or (root / "config.json").is_file():  # a transformer alone
            transformer_path = root
            if t5 is None or vae is None:
                raise PipelineError(
                    f"{path} is a transformer checkpoint only: also pass the T5 encoder (--t5 PATH) and the VAE "
                    f"(--vae PATH) folders"
                )
        else:
            transformer_path = root / "transformer"
            if not transformer_path.exists():
                raise PipelineError(f"no transformer in {root}: looked for {transformer_path}")
        transformer = load_transformer(transformer_path, transformer_config, device=device, dtype=dtype)
        # T5 length: the trained null caption's (120 for the released models) unless given
        max_length = max_length or transformer.config.model_max_length
        text_encoder = TextEncoder.from_pretrained(Path(t5) if t5 else root, max_length=max_length, device=device,
                                                   dtype=t5_dtype or dtype)
        the_vae = VAE.from_pretrained(Path(vae) if vae else root, device=device, dtype=dtype)
        sched_file = root / "scheduler" / "scheduler_config.json" if root.is_dir() else None
        sched = read_json(sched_file, PipelineError, "scheduler config") if sched_file and sched_file.is_file() else None
        return cls(transformer, text_encoder, the_vae, sched, str(transformer_path))

    # ---- saving --------------------------------------------------------------------------

    def save_pretrained(self, dst: str | os.PathLike, transformer_format: str = "native") -> Path:
        """A pipeline folder: ``transformer/`` (native or diffusers) + T5, tokenizer, VAE, scheduler."""
        dst = Path(dst)
        if dst.exists() and not dst.is_dir():
            raise PipelineError(f"output {dst} is a file; a pipeline is a folder")
        save_transformer(self.transformer, dst / "transformer", transformer_format)
        self.text_encoder.model.save_pretrained(dst / "text_encoder")
        self.text_encoder.tokenizer.save_pretrained(dst / "tokenizer")
        self.vae.model.save_pretrained(dst / "vae")
        scheduler = make_scheduler("dpm-solver", self.scheduler_config)
        scheduler.save_pretrained(dst / "scheduler")
        if transformer_format == "diffusers":
            index = {
                "_class_name": "PixArtAlphaPipeline", "_diffusers_version": package_version("diffusers"),
                "tokenizer": ["transformers", type(self.text_encoder.tokenizer).__name__],
                "text_encoder": ["transformers", type(self.text_encoder.model).__name__],
                "vae": ["diffusers", type(self.vae.model).__name__],
                "transformer": ["diffusers", "PixArtTransformer2DModel"],
                "scheduler": ["diffusers", type(scheduler).__name__],
            }
            write_json_atomic(dst / "model_index.json", index)
        else:
            meta = {"format": "pixart-bench-pipeline", "version": 1, "max_length": self.text_encoder.max_length}
            write_json_atomic(dst / PIPELINE_FILE, meta)
        return dst

    def export_diffusers(self, dst: str | os.PathLike) -> Path:
        """A folder that ``diffusers.PixArtAlphaPipeline.from_pretrained`` loads."""
        return self.save_pretrained(dst, transformer_format="diffusers")

    # ---- sampling ------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.transformer.pos_embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.x_embedder.proj.weight.dtype

    def checkpoint_hash(self) -> str:
        """sha256 of the transformer's weight file(s), for manifests."""
        if self._hash is None:
            p = Path(self.transformer_path) if self.transformer_path else None
            files = [p] if p and p.is_file() else sorted(f for f in (p.rglob("*") if p else []) if f.suffix in (".safetensors", ".bin", ".pth"))
            if files:
                self._hash = sha256_files(files)
            else:  # built in memory: hash the tensors
                h = hashlib.sha256()
                for k, v in self.transformer.state_dict().items():
                    h.update(k.encode())
                    h.update(v.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
                self._hash = h.hexdigest()
        return self._hash

    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        y, mask = self.text_encoder.encode(prompts)
        return y.to(self.device, self.dtype), mask.to(self.device)

    def null_condition(self, mask: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Unconditional branch: trained ``y_embedding`` with the prompt's mask (official), or T5("")."""
        b, length = mask.shape
        if mode == "trained":
            if length > self.transformer.config.model_max_length:
                raise PipelineError(f"prompts are {length} tokens but the trained null caption has "
                                    f"{self.transformer.config.model_max_length}")
            return self.transformer.null_caption(b, length).to(self.device, self.dtype), mask
        return self.encode_prompts([""] * b)

    def generation_size(self, height: int, width: int, binning: bool) -> tuple[int, int]:
        """The size the model generates at: the closest aspect-ratio bin for the released resolutions."""
        from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
            ASPECT_RATIO_256_BIN,
            ASPECT_RATIO_512_BIN,
            ASPECT_RATIO_1024_BIN,
        )

        bins = {256: ASPECT_RATIO_256_BIN, 512: ASPECT_RATIO_512_BIN, 1024: ASPECT_RATIO_1024_BIN}
        table = bins.get(self.transformer.config.input_size * self.vae.downsample)  # base resolution in pixels
        if binning and table is not None:
            from diffusers.image_processor import PixArtImageProcessor

            return PixArtImageProcessor.classify_height_width_bin(height, width, ratios=table)
        multiple = self.vae.downsample * self.transformer.config.patch_size
        if height % multiple or width % multiple:
            raise PipelineError(f"height and width must be multiples of {multiple}, got {height}x{width}")
        return height, width

    @torch.no_grad()
    def sample_latents(self, y, mask, y_null, mask_null, generators: list[torch.Generator], s: SampleSettings,
                       gen_hw: tuple[int, int], progress: bool = False, init: torch.Tensor | None = None,
                       strength: float = 1.0) -> torch.Tensor:
        """Denoise from per-image noise; returns final latents [B, 4, h, w]. With ``init`` (latents of
        that shape) the run starts from ``init`` noised to the step ``strength`` of the way up the
        schedule and takes only the remaining ``round(steps × strength)`` steps (SDEdit's start)."""
        from diffusers.utils.torch_utils import randn_tensor

        model, c = self.transformer, self.transformer.config
        b = y.shape[0]
        f = self.vae.downsample
        shape = (b, c.in_channels, gen_hw[0] // f, gen_hw[1] // f)
        scheduler = make_scheduler(s.sampler, self.scheduler_config, learned_sigma=c.pred_sigma)
        scheduler.set_timesteps(s.steps, device=self.device)
        latents = randn_tensor(shape, generator=generators, device=self.device, dtype=self.dtype)
        timesteps, begin = scheduler.timesteps, 0
        if init is not None:
            if not 0.0 < strength <= 1.0:
                raise PipelineError(f"strength must be in (0, 1], got {strength!r}")
            begin = s.steps - max(1, round(s.steps * strength))
            timesteps = timesteps[begin:]
            latents = scheduler.add_noise(init.to(latents), latents, timesteps[:1].expand(b))
        else:
            latents = latents * scheduler.init_noise_sigma
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(begin)
        cfg = s.guidance_scale > 1.0
        y_all = torch.cat([y_null, y]) if cfg else y
        mask_all = torch.cat([mask_null, mask]) if cfg else mask
        # Text slots that are padding in every caption carry no weight in cross-attention: dropped
        # once here, they cost nothing in the steps. When no padding is left the mask goes too, so
        # cross-attention may use kernels that take no mask (flash attention on a GPU).
        y_all, mask_all = trim_text_padding(y_all, mask_all)
        if bool(mask_all.bool().all()):
            mask_all = None
        micro = {}
        if c.micro_conditions:
            n = y_all.shape[0]
            micro = {"resolution": torch.tensor([list(gen_hw)], dtype=torch.float32).repeat(n, 1),
                     "aspect_ratio": torch.full((n, 1), gen_hw[0] / gen_hw[1])}
        learned = s.sampler in ("iddpm", "ddpm") and c.pred_sigma
        for t in tqdm(timesteps, desc=s.sampler, disable=not progress, leave=False):
            x_in = torch.cat([latents] * 2) if cfg else latents
            x_in = scheduler.scale_model_input(x_in, t)
            out = model(x_in, t.reshape(1).expand(x_in.shape[0]).to(self.device), y_all, mask_all, **micro)
            eps, rest = out[:, : c.in_channels], out[:, c.in_channels :]
            if cfg:
                eps_null, eps_text = eps.chunk(2)
                eps = eps_null + s.guidance_scale * (eps_text - eps_null)  # all latent channels
                rest = rest.chunk(2)[1]  # learned variance from the text branch
            step_in = torch.cat([eps, rest], dim=1) if learned else eps
            latents = scheduler.step(step_in, t, latents, generator=generators).prev_sample
        return latents

    @torch.no_grad()
    def __call__(
        self,
        prompts: list[str] | str,
        seeds: list[int] | int = 0,
        settings: SampleSettings | None = None,
        *,
        batch_size: int = 4,
        output_type: str = "pil",
        progress: bool = True,
    ):
        """Images for ``prompts``; image i uses ``torch.Generator().manual_seed(seeds[i])`` whatever the batch size.

        ``output_type``: "pil" (list of PIL images), "pt" (float tensor [B, 3, H, W] in [0, 1]) or
        "latent" (final latents).
        """
        from diffusers.image_processor import PixArtImageProcessor

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        check_prompts(prompts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise PipelineError(f"--batch-size must be a whole number ≥ 1, got {batch_size!r}")
        seeds = [seeds + i for i in range(len(prompts))] if isinstance(seeds, int) else list(seeds)
        if len(seeds) != len(prompts):
            raise PipelineError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        s = (settings or SampleSettings()).resolved(self)
        gen_hw = self.generation_size(s.height, s.width, s.resolution_binning)
        processor = PixArtImageProcessor(vae_scale_factor=self.vae.downsample)
        outputs = []
        for i in tqdm(range(0, len(prompts), batch_size), desc="batches", disable=not progress or len(prompts) <= batch_size):
            chunk, chunk_seeds = prompts[i : i + batch_size], seeds[i : i + batch_size]
            y, mask = self.encode_prompts(chunk)
            y_null, mask_null = self.null_condition(mask, s.null_caption)
            gens = [torch.Generator("cpu").manual_seed(int(seed)) for seed in chunk_seeds]
            latents = self.sample_latents(y, mask, y_null, mask_null, gens, s, gen_hw, progress)
            if output_type == "latent":
                outputs.append(latents)
                continue
            image = self.vae.decode(latents)
            if gen_hw != (s.height, s.width):
                image = processor.resize_and_crop_tensor(image, s.width, s.height)
            outputs.append(processor.postprocess(image, output_type="pt" if output_type == "pt" else "pil"))
        if output_type == "pil":
            return [im for chunk in outputs for im in chunk]
        return torch.cat(outputs)


def check_prompts(prompts: list[str], where: str = "prompt") -> None:
    """PipelineError for a list with no prompts, an empty / whitespace-only prompt, or one longer than
    ``MAX_PROMPT_CHARS`` (``where`` names the source, e.g. the prompt file)."""
    if not prompts:
        raise PipelineError(f"no prompts to sample ({where})")
    for i, p in enumerate(prompts, 1):
        if not isinstance(p, str) or not p.strip():
            raise PipelineError(f"{where} {i} is empty" if len(prompts) > 1 else f"{where} is empty")
        if len(p) > MAX_PROMPT_CHARS:
            raise PipelineError(f"{where} {i} has {len(p):,} characters; at most {MAX_PROMPT_CHARS:,} are accepted "
                                f"(T5 reads only the first tokens, about 500 characters)")


def resolve_pretrained(path) -> Path:
    """A local path, or a hub id resolved from the HF cache (offline: never downloads)."""
    p = Path(path)
    if p.exists():
        return p
    if isinstance(path, str) and path.count("/") == 1 and not path.startswith((".", "/")):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(path, local_files_only=True))
        except Exception as e:  # noqa: BLE001 - hub raises several types for "not cached"
            raise PipelineError(f"{path} is neither a local path nor a model in the Hugging Face cache ({e})") from None
    raise PipelineError(f"checkpoint not found: {path}")
