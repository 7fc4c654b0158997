"""Random components of the real architectures, for tests and benchmarks (no downloads).

A sentencepiece tokenizer trained on a small corpus (wrapped as transformers' ``T5Tokenizer``),
a ``T5EncoderModel``, an ``AutoencoderKL`` and a ``PixArt``, all from small configs and seeded.
They exercise exactly the code paths the released weights go through.
"""

from __future__ import annotations

import io

import torch

from pixart.model import PixArt, PixArtConfig

CORPUS = [
    "a red circle to the left of a blue square",
    "a green triangle above a small yellow star",
    "a large striped hexagon on a grey background",
    "two dotted crosses and a checkered square",
    "a photo of a cat sitting on a wooden table",
    "an oil painting of a lighthouse at night",
]


def corpus_tokenizer(sentences, vocab_size: int, *, hard_vocab_limit: bool = True):
    """A sentencepiece unigram model trained on ``sentences``, as transformers' ``T5Tokenizer``
    (pad 0, eos 1, unk 2, no bos: T5's ids). ``hard_vocab_limit=False`` lets a small corpus end
    below ``vocab_size`` instead of failing."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf, vocab_size=vocab_size,
                                   hard_vocab_limit=hard_vocab_limit, minloglevel=2, pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, model_type="unigram")
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def random_tokenizer(corpus: list[str] = CORPUS, vocab_size: int = 40):
    return corpus_tokenizer(corpus * 20, vocab_size)


def small_t5(vocab_size: int, dim: int, *, num_layers: int, num_heads: int, d_kv: int, buckets: int, seed: int):
    """A ``T5EncoderModel`` at its seeded random initialisation (feed-forward width 2 × ``dim``), in eval mode."""
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=dim, d_ff=2 * dim, d_kv=d_kv, num_layers=num_layers,
                                   num_heads=num_heads, relative_attention_num_buckets=buckets)).eval()


def random_pipeline(transformer: PixArtConfig | None = None, *, t5_dim: int = 16, vae_channels=(8, 16),
                    max_length: int = 120, seed: int = 0, perturb: float = 0.1):
    """A ``PixArtPipeline`` of random components; ``perturb`` > 0 gives zero-initialised layers weights."""
    from diffusers import AutoencoderKL

    from pixart.pipeline import PixArtPipeline
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    transformer = transformer or PixArtConfig.preset("tiny", model_max_length=max_length)
    if transformer.caption_channels != t5_dim:
        raise ValueError(f"transformer caption_channels {transformer.caption_channels} != t5_dim {t5_dim}")
    tokenizer = random_tokenizer()
    t5 = small_t5(len(tokenizer), t5_dim, num_layers=1, num_heads=max(t5_dim // 8, 1), d_kv=8, buckets=8, seed=seed)
    n = len(vae_channels)
    vae = AutoencoderKL(block_out_channels=tuple(vae_channels), down_block_types=("DownEncoderBlock2D",) * n,
                        up_block_types=("UpDecoderBlock2D",) * n, latent_channels=4, layers_per_block=1,
                        norm_num_groups=8, sample_size=32)
    model = PixArt(transformer)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * perturb)
    return PixArtPipeline(model.eval(), TextEncoder(tokenizer, t5.eval(), max_length=max_length), VAE(vae.eval()))
