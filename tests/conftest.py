"""Shared helpers for the tests: tiny random models of the real architectures, seeded."""

from __future__ import annotations

import pytest
import torch

from pixart.model import PixArt, PixArtConfig


def randomize_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter so zero-initialised layers (cross-attn proj, final layer) matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * scale)
    return module


def tiny_model(preset: str = "tiny", seed: int = 0, **overrides) -> PixArt:
    torch.manual_seed(seed)
    return randomize_(PixArt(PixArtConfig.preset(preset, **overrides)), seed).eval()


def text_inputs(batch: int, length: int, channels: int, seed: int = 1):
    """Random caption features and a padding mask with a different length per sample."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(batch, length, channels, generator=g)
    lengths = [length - (i * 2) % length for i in range(batch)]
    mask = torch.tensor([[1] * n + [0] * (length - n) for n in lengths])
    return y, mask


@pytest.fixture
def tiny() -> PixArt:
    return tiny_model("tiny")


CORPUS = [
    "a red circle to the left of a blue square",
    "a green triangle above a small yellow star",
    "a large striped hexagon on a grey background",
    "two dotted crosses and a checkered square",
    "a photo of a cat sitting on a wooden table",
    "an oil painting of a lighthouse at night",
]


def build_tiny_pipeline(seed: int = 0):
    """Tiny random T5 (with a sentencepiece tokenizer trained here), AutoencoderKL and PixArt."""
    import io

    import sentencepiece as spm
    from diffusers import AutoencoderKL
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    from pixart.pipeline import PixArtPipeline
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS * 20), model_writer=buf, vocab_size=40, minloglevel=2,
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram")
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    tokenizer = T5Tokenizer(vocab=[(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())], extra_ids=0)
    torch.manual_seed(seed)
    t5 = T5EncoderModel(T5Config(vocab_size=sp.get_piece_size(), d_model=16, d_ff=32, d_kv=8, num_layers=1,
                                 num_heads=2, relative_attention_num_buckets=8))
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, layers_per_block=1,
                        norm_num_groups=8, sample_size=32)
    transformer = tiny_model("tiny", seed=seed, model_max_length=120)  # latent 8x8 → 16x16 images
    return PixArtPipeline(transformer, TextEncoder(tokenizer, t5.eval(), max_length=120), VAE(vae.eval()))


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline") / "tiny-pixart"
    build_tiny_pipeline().save_pretrained(folder)
    return folder
