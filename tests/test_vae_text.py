"""VAE helpers, T5 encoder options, micro-conditioned and half-precision sampling."""

import torch

from pixart.model import PixArtConfig
from pixart.pipeline import SampleSettings
from pixart.random_components import random_pipeline
from pixart.vae import VAE


def test_vae_scaling_and_sliced_decode():
    pipe = random_pipeline()
    vae = pipe.vae
    assert vae.downsample == 2 and vae.scaling_factor == vae.model.config.scaling_factor
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    z = vae.encode(images)
    assert z.shape == (3, 4, 8, 8)
    raw = vae.model.encode(images).latent_dist.mean
    assert torch.allclose(z, raw * vae.scaling_factor)
    full = vae.decode(z)
    sliced = VAE(vae.model, sliced=True).decode(z)
    assert full.shape == (3, 3, 16, 16)
    assert torch.allclose(full, sliced, atol=1e-5)


def test_text_encoder_max_length_and_mask():
    enc = random_pipeline().text_encoder
    enc.max_length = 12
    y, mask = enc.encode(["a red circle", "a photo of a cat sitting on a wooden table"])
    assert y.shape == (2, 12, 16) and mask.shape == (2, 12)
    assert 0 < mask[0].sum() < mask[1].sum() <= 12


def test_micro_conditioned_pipeline_non_square():
    pipe = random_pipeline(PixArtConfig.preset("tiny-MS", model_max_length=120))
    s = SampleSettings(steps=4, height=16, width=24)
    img = pipe(["a red circle"], [0], s, progress=False)[0]
    assert img.size == (24, 16)


def test_bf16_sampling():
    pipe = random_pipeline()
    pipe.transformer.to(torch.bfloat16)
    pipe.vae.model.to(torch.bfloat16)
    out = pipe(["a red circle"], [0], SampleSettings(steps=4), output_type="latent", progress=False)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
