"""T5 text encoder: prompts → features [B, L, C] and padding mask [B, L].

transformers' ``T5EncoderModel`` + tokenizer, exactly as PixArt-α and diffusers use them:
``padding="max_length"``, ``max_length=120``, truncation, ``last_hidden_state``. Any T5 folder
works (``DeepFloyd/t5-v1_1-xxl`` from the HF cache, a pipeline folder's ``text_encoder/`` +
``tokenizer/``, or a tiny test model).

``FeatureCache`` stores features per prompt as safetensors under a folder keyed by a hash of
(encoder identity, max_length, prompt), so repeated prompts (benchmarks, the trainer) are
encoded once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pixart.errors import PipelineError, reading
from pixart.files import atomic_write


class TextEncoder:
    """``encode(prompts)`` → (features [B, L, C], mask [B, L]) with a T5 encoder."""

    def __init__(self, tokenizer, model, max_length: int = 120, name: str = "t5"):
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_length = max_length
        self.name = name  # identity used by the feature cache

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        tokenizer_path: str | os.PathLike | None = None,
        max_length: int = 120,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> "TextEncoder":
        """Load from a T5 folder (model + tokenizer), or a pipeline folder (``text_encoder/``, ``tokenizer/``)."""
        from transformers import AutoTokenizer, T5EncoderModel

        path = Path(path)
        model_dir = path / "text_encoder" if (path / "text_encoder" / "config.json").is_file() else path
        tok_dir = Path(tokenizer_path) if tokenizer_path else (path / "tokenizer" if (path / "tokenizer").is_dir() else path)
        if not (model_dir / "config.json").is_file():
            raise PipelineError(
                f"no T5 encoder at {path}: looked for {path / 'config.json'} and {path / 'text_encoder' / 'config.json'}"
            )
        has_tokenizer = tok_dir.is_dir() and (any(tok_dir.glob("tokenizer*")) or (tok_dir / "spiece.model").is_file())
        if not has_tokenizer:
            raise PipelineError(f"no T5 tokenizer at {tok_dir} (looked for tokenizer.json / spiece.model)")
        with reading(model_dir, PipelineError, "T5 encoder"):
            model = T5EncoderModel.from_pretrained(model_dir, torch_dtype=dtype)
        with reading(tok_dir, PipelineError, "T5 tokenizer"):
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        model = model.to(device)
        return cls(tokenizer, model, max_length, name=str(model_dir.resolve()))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @torch.no_grad()
    def encode(self, prompts: list[str], batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(prompts, str):
            prompts = [prompts]
        feats, masks = [], []
        for i in range(0, len(prompts), batch_size):
            tok = self.tokenizer(
                list(prompts[i : i + batch_size]), padding="max_length", max_length=self.max_length,
                truncation=True, add_special_tokens=True, return_tensors="pt",
            )
            ids, mask = tok.input_ids.to(self.device), tok.attention_mask.to(self.device)
            feats.append(self.model(ids, attention_mask=mask).last_hidden_state)
            masks.append(mask)
        return torch.cat(feats), torch.cat(masks)


class FeatureCache:
    """Per-prompt T5 features on disk: ``get(encoder, prompts)`` encodes only what is missing."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, encoder: TextEncoder, prompt: str) -> Path:
        key = hashlib.sha256(f"{encoder.name}\0{encoder.max_length}\0{encoder.dtype}\0{prompt}".encode()).hexdigest()
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, encoder: TextEncoder, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        paths = [self._path(encoder, p) for p in prompts]
        todo = sorted({p for p, path in zip(prompts, paths) if not path.is_file()})
        if todo:
            feats, masks = encoder.encode(todo)
            for prompt, f, m in zip(todo, feats, masks):
                path = self._path(encoder, prompt)
                path.parent.mkdir(parents=True, exist_ok=True)
                tensors = {"features": f.cpu().contiguous(), "mask": m.cpu().contiguous()}
                atomic_write(path, lambda tmp, tensors=tensors: save_file(tensors, tmp))
        loaded = [load_file(path) for path in paths]
        return (torch.stack([d["features"] for d in loaded]).to(encoder.device),
                torch.stack([d["mask"] for d in loaded]).to(encoder.device))
