"""Re-caption images with a LLaVA-style vision-language model (PixArt-α's third idea).

PixArt-α replaces the noisy alt-text of its training images with dense captions written by
LLaVA, prompted with *"Describe this image and its style in a very detailed manner"*.
``caption_images`` does the same with any checkpoint that transformers loads as
``LlavaForConditionalGeneration`` + ``AutoProcessor`` (e.g. a ``llava-hf/llava-1.5-7b-hf``
folder), or a tiny random one in the tests.

Output is a JSON-lines file, one object per image::

    {"path": "<image path as given/found>", "caption": "...", "model": "<model argument>", "prompt": "..."}

Behaviour:

- **Inputs**: a folder (searched recursively for .png/.jpg/.jpeg/.webp, sorted) or a list of paths.
  ``path`` is recorded as the path string as given (for a folder: ``folder / relative``).
- **Prompt**: if the processor (or its tokenizer) has a chat template, the prompt is built with
  ``processor.apply_chat_template`` from one user turn ``[image, text]`` with the generation
  prompt appended. Otherwise the LLaVA-1.5 plain template ``"USER: <image>\\n{prompt} ASSISTANT:"``
  is used (``<image>`` being the processor's image token).
- **Generation**: batched, greedy (``do_sample=False, num_beams=1``), left-padded; only the newly
  generated tokens are decoded (special tokens skipped, whitespace stripped).
- **Resumable**: the file is appended to and flushed after every batch. On restart, images whose
  path is already in the file are skipped (matched on the path string or its resolved absolute
  path; model/prompt are not compared). A partially written last line (a crash mid-write) is
  cut off before appending; any other malformed line is an error.
- **Offline**: the model is loaded from a local folder, or from the Hugging Face cache with
  ``local_files_only=True``; nothing is ever downloaded.
- **Bad input** is a ``pixart.data.DataError`` naming the file, found before the model is loaded and
  before the output file is touched: a missing folder or one without images, a file that does not
  open as an image, a missing or damaged model folder, an output file with a damaged line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import torch

from pixart.data import DataError, header_size, load_image
from pixart.errors import reading

DEFAULT_PROMPT = "Describe this image and its style in a very detailed manner"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
PLAIN_TEMPLATE = "USER: {image_token}\n{prompt} ASSISTANT:"


# --------------------------------------------------------------------------- inputs


def find_images(images: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """A folder → its images (recursive, sorted); a list → those paths (duplicates dropped, order kept)."""
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise DataError(f"image folder {folder} does not exist" if not folder.exists() else
                            f"{folder} is a file, not an image folder")
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
        return found
    seen: set[str] = set()
    out: list[Path] = []
    for p in images:
        p = Path(p)
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


# --------------------------------------------------------------------------- output file


def read_done(out_jsonl: Path, *, repair: bool = True) -> set[str]:
    """Paths already captioned in ``out_jsonl`` (empty if it does not exist).

    A trailing partial line (no newline, or not valid JSON at the end of the file) is ignored and,
    with ``repair=True``, truncated away so that appending produces a valid file.
    """
    out_jsonl = Path(out_jsonl)
    if not out_jsonl.is_file():
        return set()
    data = out_jsonl.read_bytes()
    lines = data.split(b"\n")
    # ``lines[-1]`` is whatever follows the last newline: b"" for a well-formed file.
    complete, tail = lines[:-1], lines[-1]
    keep_bytes = len(data) - len(tail)
    done: set[str] = set()
    for i, raw in enumerate(complete):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            path = rec["path"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            if i == len(complete) - 1 and not tail.strip():
                # last line with a newline but broken: treat as partial as well
                keep_bytes -= len(raw) + 1
                break
            fix = "fix or delete that line (the other captions are kept), or write to another --out"
            raise DataError(f"{out_jsonl}: line {i + 1} is not a caption record ({e}); refusing to append to it: "
                            f"{fix}") from None
        done.add(str(path))
    if tail.strip():
        # a complete record without its newline is still usable; keep it and add the newline
        try:
            rec = json.loads(tail)
            done.add(str(rec["path"]))
            keep_bytes = len(data)
            if repair:
                with open(out_jsonl, "ab") as f:
                    f.write(b"\n")
            return done
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            pass
    if repair and keep_bytes != len(data):
        with open(out_jsonl, "r+b") as f:
            f.truncate(keep_bytes)
    return done


def _resolved(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(path)


# --------------------------------------------------------------------------- model


def load_captioner(model: str | os.PathLike, *, device="cpu", dtype=torch.float32):
    """(model, processor) from a local folder, or the HF cache (``local_files_only=True``)."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    path = Path(model)
    if path.exists():
        if not (path / "config.json").is_file():
            raise DataError(f"no LLaVA model at {path}: {path / 'config.json'} does not exist")
        with reading(path, DataError, "LLaVA model folder"):
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            vlm = LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
    else:
        try:
            processor = AutoProcessor.from_pretrained(str(model), local_files_only=True)
            vlm = LlavaForConditionalGeneration.from_pretrained(str(model), dtype=dtype, local_files_only=True)
        except (OSError, ValueError):  # ValueError: HFValidationError for a non-repo-id string
            from huggingface_hub.constants import HF_HUB_CACHE

            raise DataError(
                f"LLaVA model {model!r} not found: {path.resolve()} is not a folder and it is not in the "
                f"Hugging Face cache ({HF_HUB_CACHE}); nothing is downloaded, pass a local model folder"
            ) from None
    vlm = vlm.to(device).eval().requires_grad_(False)
    return vlm, processor


def _chat_template(processor) -> str | None:
    tmpl = getattr(processor, "chat_template", None)
    if not tmpl:
        tmpl = getattr(getattr(processor, "tokenizer", None), "chat_template", None)
    return tmpl or None


def build_prompt(processor, prompt: str = DEFAULT_PROMPT) -> str:
    """The text fed with one image: the processor's chat template if it has one, else the plain LLaVA-1.5 one."""
    if _chat_template(processor):
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return processor.apply_chat_template(
            conversation, chat_template=_chat_template(processor), add_generation_prompt=True, tokenize=False
        )
    image_token = getattr(processor, "image_token", None) or "<image>"
    return PLAIN_TEMPLATE.format(image_token=image_token, prompt=prompt)


@torch.no_grad()
def generate_captions(vlm, processor, images: list, text: str, *, max_new_tokens: int = 256) -> list[str]:
    """Greedy captions for a batch of PIL images, all with the same prompt text."""
    tok = processor.tokenizer
    tok.padding_side = "left"  # decoder-only batched generation
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    device = next(vlm.parameters()).device
    dtype = next(vlm.parameters()).dtype
    inputs = processor(images=images, text=[text] * len(images), return_tensors="pt", padding=True).to(device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    out = vlm.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=tok.pad_token_id
    )
    new_tokens = out[:, inputs["input_ids"].shape[1]:]
    return [c.strip() for c in processor.batch_decode(new_tokens, skip_special_tokens=True)]


# --------------------------------------------------------------------------- main entry


def _check_device(device):
    try:
        device = torch.device(device)
    except RuntimeError as e:  # torch's own parse of the device string
        raise DataError(f"device {str(device)!r} is not a torch device (cpu, cuda, cuda:1, mps): {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device {str(device)!r}: no CUDA GPU is available; use cpu")


def caption_images(
    images: list[Path] | Path,
    out_jsonl: Path,
    model: str | Path,
    *,
    prompt: str = DEFAULT_PROMPT,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> int:
    """Caption every image not yet in ``out_jsonl``; returns the number newly captioned. The input is
    checked first (``DataError``); the output file is repaired and appended to once the model is loaded."""
    if batch_size < 1 or max_new_tokens < 1:
        raise DataError(f"batch_size and max_new_tokens must be at least 1, got {batch_size} and {max_new_tokens}")
    if not prompt.strip():
        raise DataError("the prompt is empty; leave it out for the paper's prompt")
    out_jsonl = Path(out_jsonl)
    if out_jsonl.is_dir():
        raise DataError(f"output {out_jsonl} is a folder; give a .jsonl file")
    _check_device(device)
    paths = find_images(images)
    done = read_done(out_jsonl, repair=False)
    done |= {_resolved(d) for d in done}
    todo = [p for p in paths if str(p) not in done and _resolved(p) not in done]
    if not todo:
        return 0
    for p in todo:  # each opens as an image (its header), before the model is loaded
        header_size(str(p))

    vlm, processor = load_captioner(model, device=device, dtype=dtype)
    text = build_prompt(processor, prompt)
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    read_done(out_jsonl)  # a line cut off by a crash is cut away (or a last record given its newline)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="captioning", unit="img", disable=not progress)
    n = 0
    try:
        with open(out_jsonl, "a", encoding="utf-8") as f:
            for i in range(0, len(todo), batch_size):
                batch = todo[i : i + batch_size]
                pil = [load_image(p) for p in batch]
                captions = generate_captions(vlm, processor, pil, text, max_new_tokens=max_new_tokens)
                for p, c in zip(batch, captions):
                    rec = {"path": str(p), "caption": c, "model": str(model), "prompt": prompt}
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                n += len(batch)
                bar.update(len(batch))
    finally:
        bar.close()
    return n
