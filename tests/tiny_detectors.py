"""Tiny random evaluator models of the real architectures for the compbench detector and depth tests:
OWLv2 (with a CLIP BPE tokenizer built from a small vocabulary), Grounding DINO (Swin + a BERT
WordPiece tokenizer) and DPT-Hybrid (BiT backbone), each saved with ``save_pretrained`` so the code
under test loads them as it loads the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ("cat", "dog", "person", "giraffe", "lamp", "traffic", "light", "fish")


def save_random(folder: Path, model_cls, config, processor=None, seed: int = 0, adjust=None) -> Path:
    """A ``model_cls(config)`` with seeded random weights (``adjust(model)`` may change them) and its
    processor, saved in ``folder``."""
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    if adjust is not None:
        with torch.no_grad():
            adjust(model)
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    return folder


def clip_bpe_files(folder: Path, words=WORDS) -> tuple[Path, Path]:
    """vocab.json and merges.txt of a CLIP byte-level BPE that spells each of ``words`` as one token.
    The start / end tokens come last, as in CLIP's vocabulary (OWLv2 treats a query whose first id is
    0 as padding, so id 0 must be an ordinary piece: "!", CLIP's own id 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"!": 0}
    for c in sorted(set("".join(words))):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges = []
    for w in words:
        pieces = [*w[:-1], w[-1] + "</w>"]
        while len(pieces) > 1:  # merge left to right until the word is one piece
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            vocab.setdefault(pieces[0], len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    return folder / "vocab.json", folder / "merges.txt"


def build_tiny_owlv2(folder: Path, seed: int = 0) -> Path:
    """A random ``Owlv2ForObjectDetection`` (32 px input, 8 px patches: 16 boxes) with its processor."""
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    vocab, merges = clip_bpe_files(folder / "bpe")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=16, pad_token="!")
    n = len(tokenizer)
    config = Owlv2Config(
        text_config=dict(vocab_size=n, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=16, bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=0),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    images = Owlv2ImageProcessor(size={"height": 32, "width": 32})
    processor = Owlv2Processor(image_processor=images, tokenizer=tokenizer)
    return save_random(folder, Owlv2ForObjectDetection, config, processor, seed)


def build_tiny_grounding_dino(folder: Path, seed: int = 0) -> Path:
    """A random ``GroundingDinoForObjectDetection`` (Swin backbone, BERT text encoder, 8 queries) with
    its processor (inputs 128-192 px: a square input's last feature level then still has 2×2 pixels, which the
    model's GroupNorm needs)."""
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    folder.mkdir(parents=True, exist_ok=True)
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    (folder / "wordpiece.txt").write_text("\n".join(pieces) + "\n")
    tokenizer = BertTokenizerFast(str(folder / "wordpiece.txt"))
    swin = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
                      out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(pieces), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    # d_model 32: the model's GroupNorm has 32 groups; two decoder layers: the box heads are tied across layers
    config = GroundingDinoConfig(backbone_config=swin, text_config=text, d_model=32, encoder_layers=1, decoder_layers=2,
                                 encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                 decoder_ffn_dim=32, num_queries=8, encoder_n_points=2, decoder_n_points=2,
                                 max_text_len=32)
    images = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192})
    return save_random(folder, GroundingDinoForObjectDetection, config,
                       GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer), seed)


def build_tiny_dpt(folder: Path, seed: int = 0, image_size: int = 64) -> Path:
    """A random DPT-Hybrid ``DPTForDepthEstimation`` (BiT backbone, as Intel/dpt-hybrid-midas) whose
    config expects ``image_size`` px (the official input is 480)."""
    from transformers import BitConfig, DPTConfig, DPTForDepthEstimation

    bit = BitConfig(global_padding="same", layer_type="bottleneck", depths=[1, 1, 1], hidden_sizes=[8, 16, 32],
                    embedding_size=8, out_features=["stage1", "stage2", "stage3"], embedding_dynamic_padding=True,
                    num_groups=2)
    grid = image_size // 16
    config = DPTConfig(is_hybrid=True, backbone_config=bit, backbone_featmap_shape=[1, 32, grid, grid], hidden_size=16,
                       num_hidden_layers=4, backbone_out_indices=[0, 1, 2, 3], num_attention_heads=2,
                       intermediate_size=32, image_size=image_size, patch_size=16, neck_hidden_sizes=[8, 16, 16, 16],
                       fusion_hidden_size=16, reassemble_factors=[1, 1, 1, 0.5], readout_type="project")
    # a random head ends in ReLU and may give all zeros: lift its last bias off zero
    return save_random(folder, DPTForDepthEstimation, config, seed=seed,
                       adjust=lambda model: model.head.head[-2].bias.fill_(0.1))
