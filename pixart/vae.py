"""The latent autoencoder: diffusers' ``AutoencoderKL`` (sd-vae-ft-ema layout for PixArt-α).

Images are [-1, 1]; latents are ``posterior · scaling_factor`` (0.18215 for sd-vae-ft-ema, read
from the VAE's config). ``tiled=True`` / ``sliced=True`` switch on diffusers' tiled / per-image
decoding for large images or batches.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pixart.errors import PipelineError, reading


class VAE:
    def __init__(self, model, tiled: bool = False, sliced: bool = False):
        self.model = model.eval().requires_grad_(False)
        if tiled:
            self.model.enable_tiling()
        if sliced:
            self.model.enable_slicing()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device="cpu", dtype=torch.float32, **kwargs) -> "VAE":
        """Load from a VAE folder or a pipeline folder's ``vae/``."""
        from diffusers import AutoencoderKL

        path = Path(path)
        folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise PipelineError(f"no VAE at {path}: looked for {path / 'config.json'} and {path / 'vae' / 'config.json'}")
        with reading(folder, PipelineError, "VAE"):
            model = AutoencoderKL.from_pretrained(folder, torch_dtype=dtype)
        return cls(model.to(device), **kwargs)

    @property
    def scaling_factor(self) -> float:
        return float(self.model.config.scaling_factor)

    def rescaled(self, factor: float) -> "VAE":
        """This VAE with ``scaling_factor × factor`` (a copy; ``self`` when ``factor`` is 1): the VAE of a
        pipeline whose transformer was trained on latents × factor (``pixart.train.TrainConfig.latent_scale``)."""
        if factor == 1:
            return self
        if not factor > 0:
            raise ValueError(f"a latent scale must be positive, got {factor}")
        import copy

        model = copy.deepcopy(self.model)
        model.register_to_config(scaling_factor=self.scaling_factor * factor)
        return VAE(model)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.model.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.latent_channels)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, sample: bool = False, generator=None) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] → scaled latents [B, C, H/f, W/f] (posterior mean unless ``sample``)."""
        dist = self.model.encode(images.to(self.model.device, self.model.dtype)).latent_dist
        z = dist.sample(generator) if sample else dist.mean
        return z * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents → images in [-1, 1] (not clamped)."""
        z = latents.to(self.model.device, self.model.dtype) / self.scaling_factor
        return self.model.decode(z, return_dict=False)[0]
