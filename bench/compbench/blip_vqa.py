"""Disentangled BLIP-VQA (T2I-CompBench's color, shape and texture metric, and the attribute part of complex).

The official rule (``BLIPvqa_eval/BLIP_vqa.py`` and its BLIP code), rebuilt on transformers'
``BlipForQuestionAnswering`` (official weights: ``Salesforce/blip-vqa-capfilt-large``, a conversion of
the ``model_base_vqa_capfilt_large.pth`` the official script loads):

- questions: the prompt's spaCy noun chunks minus those whose text is exactly ``top``, ``the side``,
  ``the left`` or ``the right``; slot i of ``np_num`` (8; 2 before 2023-12) asks ``"<chunk i>?"``, or
  nothing when the prompt has at most i chunks (an empty slot is a factor 1);
- ``pre_question``: lower case, ``. ! " ( ) * # : ; ~`` deleted, trailing spaces stripped, at most 50
  words; BERT tokens (at most 35), the first token replaced by ``[ENC]``;
- image: ``Resize((480, 480), bicubic)`` without a crop, ``ToTensor``, CLIP mean / std, and the vision
  model at 480 px with its position embeddings interpolated (the hub config says 384);
- per question: vision → text encoder (the question, cross-attending the image) → one decoder step
  on ``[DEC]`` cross-attending the question states under the question's mask; the softmax over the
  whole vocabulary gives P(yes) / (P(yes) + P(no));
- per image: each factor written with 4 decimals, read back into a float32 tensor, multiplied in
  float32 slot by slot, and the product written with 4 decimals (``rounded=False`` keeps the raw
  values and multiplies them in float64).

Ours computes each image's vision states once for all its questions and batches (image, question)
pairs of one token length (the official code pads each batch to its longest question and masks the
padding; transformers' BLIP drops that mask, so we never pad). The official script instead runs the
whole model once per slot. ``score_per_slot_loop`` runs our own model code (``image_states`` and
``p_yes``) in that per-slot order: comparing it with ``score`` checks our batching and padding only,
not parity with the official code, which it does not run (``pixart-bench compbench audit`` compares
with the official outputs on real weights). ``measure_throughput`` times both.
"""

from __future__ import annotations

import copy
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bench.compbench.parse import Analysis, Parser
from bench.compbench.samples import ImageScore, SampleImage, open_image
from bench.errors import BenchError, check_device, check_range
from pixart.files import package_versions

HUB_ID = "Salesforce/blip-vqa-capfilt-large"
HOW_TO_GET = (f"on a machine with internet access run `hf download {HUB_ID} --local-dir blip-vqa-capfilt-large` "
              f"(older huggingface_hub: `huggingface-cli download {HUB_ID} --local-dir ...`), copy the folder "
              "over and pass its path")
DROPPED_CHUNKS = ("top", "the side", "the left", "the right")  # official filter (since 2024-01-28)
NP_NUM = 8  # official default since 2023-12-02 (2 before)
IMAGE_SIZE = 480  # official BLIP VQA resolution
MAX_QUESTION_WORDS = 50
MAX_QUESTION_TOKENS = 35
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_DELETED = str.maketrans("", "", '.!"()*#:;~')


# --------------------------------------------------------------------------- questions and rounding


def noun_phrases(analysis: Analysis, dropped: tuple[str, ...] = DROPPED_CHUNKS) -> list[str]:
    """The noun chunks asked about: spaCy's, minus those whose text is exactly one of ``dropped``."""
    return [c for c in analysis.noun_chunks if c not in dropped]


def slot_questions(analysis: Analysis, np_num: int = NP_NUM, dropped: tuple[str, ...] = DROPPED_CHUNKS) -> list[str]:
    """The ``np_num`` official questions of a prompt: ``"<chunk>?"``, or ``""`` past its last chunk."""
    phrases = noun_phrases(analysis, dropped)
    return [f"{phrases[i]}?" if i < len(phrases) else "" for i in range(np_num)]


def pre_question(question: str, max_words: int = MAX_QUESTION_WORDS) -> str:
    """BLIP's question clean-up: lower case, ``. ! " ( ) * # : ; ~`` deleted, trailing spaces
    stripped, at most ``max_words`` words (split on single spaces, as the official code splits)."""
    question = question.lower().translate(_DELETED).rstrip(" ")
    words = question.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else question


def round4(value: float) -> float:
    """A probability as the official code writes it: ``'{:.4f}'`` of the float32 value, read back."""
    return float(f"{float(np.float32(value)):.4f}")


def combine(factors: list[float | None], rounded: bool = True) -> float:
    """An image's score from its slots' P(yes) ratios (None: an empty slot, a factor 1). Rounded: each
    factor to 4 decimals, the product taken in float32 slot by slot (the official reward tensor), then
    written with 4 decimals; unrounded: the raw factors' product in float64."""
    if not rounded:
        return float(np.prod([1.0 if f is None else float(f) for f in factors], dtype=np.float64))
    product = np.float32(1.0)
    for f in factors:
        product = np.float32(product * np.float32(1.0 if f is None else round4(f)))
    return round4(product)


# --------------------------------------------------------------------------- model files


def _token_id(tokenizer, token: str) -> int | None:
    """The id of ``token`` when the tokenizer has it as one piece (None when it maps to [UNK])."""
    i = tokenizer.convert_tokens_to_ids(token)
    return None if i is None or i == tokenizer.unk_token_id else int(i)


def special_ids(tokenizer, text_config, folder: Path) -> dict:
    """[DEC], [ENC], yes and no ids. [DEC] is the config's ``bos_token_id`` (checked against the
    tokenizer's ``[DEC]`` when it has one); [ENC] is the tokenizer's, or, for a tokenizer without it
    (the hub's), the id BLIP gives it: right after [DEC], the last row of the text embeddings."""
    vocab, dec = text_config.vocab_size, text_config.bos_token_id
    if _token_id(tokenizer, "[DEC]") not in (None, dec):
        raise BenchError(f"BLIP-VQA model {folder}: the tokenizer's [DEC] is id {_token_id(tokenizer, '[DEC]')}, "
                         f"the config's bos_token_id is {dec}; the folder mixes two models ({HOW_TO_GET})")
    enc, source = _token_id(tokenizer, "[ENC]"), "tokenizer"
    if enc is None and dec is not None and dec + 2 == vocab:
        enc, source = dec + 1, "BLIP's layout: [DEC] = bos_token_id, [ENC] = the next and last id"
    ids = {"dec": dec, "enc": enc, "yes": _token_id(tokenizer, "yes"), "no": _token_id(tokenizer, "no")}
    words = [repr(k) for k in ("yes", "no") if ids[k] is None]
    if words:
        raise BenchError(f"BLIP-VQA model {folder}: its tokenizer has no token for {' or '.join(words)}, so it is not "
                         f"BLIP's BERT tokenizer: {HOW_TO_GET}")
    if enc is None or dec is None:
        raise BenchError(f"BLIP-VQA model {folder}: no [ENC] token id: the tokenizer has no [ENC] and the text config "
                         f"(vocab_size {vocab}, bos_token_id {dec}) is not BLIP's layout ([DEC] = bos_token_id, "
                         f"[ENC] = the next and last id): {HOW_TO_GET}")
    if max(ids.values()) >= vocab:
        raise BenchError(f"BLIP-VQA model {folder}: token ids {ids} do not fit the text vocabulary of {vocab}; "
                         f"the tokenizer belongs to another model ({HOW_TO_GET})")
    return {**ids, "enc_source": source}


def load_blip_vqa(model_path: str | os.PathLike, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """(model, tokenizer, folder) of a BLIP VQA folder or cached hub id (``evaluators.load_pretrained``:
    BenchError names a missing or damaged folder, another kind of model, or weights that leave parts of
    the model unset), in ``dtype``."""
    from transformers import AutoTokenizer, BlipForQuestionAnswering

    from bench.compbench.evaluators import load_pretrained

    model, tokenizer, folder = load_pretrained(model_path, BlipForQuestionAnswering, AutoTokenizer, "blip",
                                               "BLIP-VQA model", HOW_TO_GET, device)
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt")):  # else transformers makes an empty one
        raise BenchError(f"no tokenizer in BLIP-VQA model folder {folder} (no tokenizer.json or vocab.txt); "
                         f"{HOW_TO_GET}")
    return model.to(dtype), tokenizer, folder


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --------------------------------------------------------------------------- the scorer


class BlipVqaScorer:
    """Disentangled BLIP-VQA as a ``bench.compbench.samples.Scorer`` (metric "B-VQA").

    ``batch_size`` bounds both the images per vision pass and the (image, question) pairs per text
    pass; ``rounded=False`` keeps raw factors; ``dropped_chunks=()`` asks about every chunk (the
    official scripts before 2024-01-28)."""

    metric = "B-VQA"

    def __init__(self, model_path: str | os.PathLike, *, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 batch_size: int = 32, np_num: int = NP_NUM, parser: Parser | None = None,
                 image_size: int = IMAGE_SIZE, rounded: bool = True,
                 dropped_chunks: tuple[str, ...] = DROPPED_CHUNKS):
        check_range("np_num", np_num, 1, whole=True, why="the noun chunks asked about per prompt")
        check_range("batch_size", batch_size, 1, whole=True)
        check_range("image_size", image_size, 1, 4096, whole=True)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise BenchError(f"dtype must be a floating torch dtype (torch.float32, torch.bfloat16, torch.float16), "
                             f"got {dtype!r}")
        self.device = check_device(device)
        self.model_path, self.dtype, self.batch_size, self.np_num = str(model_path), dtype, batch_size, np_num
        self.image_size, self.rounded, self.dropped_chunks = image_size, rounded, tuple(dropped_chunks)
        self.parser = parser if parser is not None else Parser()
        self.model, self.tokenizer, self.folder = load_blip_vqa(model_path, self.device, dtype)
        vision = self.model.config.vision_config
        if image_size % vision.patch_size:
            raise BenchError(f"image_size {image_size} is not a multiple of the model's patch size {vision.patch_size}"
                             f" (the official size is {IMAGE_SIZE})")
        self.ids = special_ids(self.tokenizer, self.model.config.text_config, self.folder)
        self._questions: dict[str, list[str]] = {}
        from torchvision import transforms

        self.transform = transforms.Compose([
            transforms.Resize((image_size, image_size), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(), transforms.Normalize(CLIP_MEAN, CLIP_STD)])

    # -- inputs

    def questions(self, prompt: str) -> list[str]:
        """The prompt's ``np_num`` slot questions (``""`` for an empty slot), before ``pre_question``."""
        if prompt not in self._questions:
            self._questions[prompt] = slot_questions(self.parser(prompt), self.np_num, self.dropped_chunks)
        return self._questions[prompt]

    def pixels(self, paths: list[Path]) -> torch.Tensor:
        """The images at ``paths`` as one batch: ``image_size`` square (480 officially), bicubic, ToTensor, CLIP
        mean / std."""
        workers = max(1, min(4, len(paths), os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:  # PIL decodes and resizes without the GIL
            images = list(pool.map(lambda p: self.transform(open_image(p)), paths))
        return torch.stack(images).to(self.device, self.dtype)

    # -- the model, step by step (no public transformers API returns the first decoder step's logits)

    @torch.inference_mode()
    def image_states(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The vision model's last hidden states, position embeddings interpolated to the input size."""
        return self.model.vision_model(pixel_values=pixel_values, interpolate_pos_encoding=True).last_hidden_state

    @torch.inference_mode()
    def p_yes(self, image_states: torch.Tensor, questions: list[str], rows: list[int] | None = None) -> list[float]:
        """P(yes) / (P(yes) + P(no)) of each question (already cleaned) on ``image_states[rows[k]]``
        (row k when ``rows`` is None). Questions of one token length run together, ``batch_size`` at a
        time, so no question is ever padded: transformers' BLIP text model drops the mask of its
        cross-attention (5.x), so the decoder would attend to a padded question's padding, where the
        official code masks it."""
        rows = list(range(len(questions))) if rows is None else rows
        tokens = self.tokenizer(questions, truncation=True, max_length=MAX_QUESTION_TOKENS)["input_ids"]
        by_length: dict[int, list[int]] = {}
        for k, ids in enumerate(tokens):
            by_length.setdefault(len(ids), []).append(k)
        out = [0.0] * len(questions)
        for group in by_length.values():
            for ks in _chunks(group, self.batch_size):
                input_ids = torch.tensor([tokens[k] for k in ks], dtype=torch.long, device=self.device)
                input_ids[:, 0] = self.ids["enc"]  # BLIP's image-grounded encoder starts with [ENC], not [CLS]
                states = image_states.index_select(0, torch.tensor([rows[k] for k in ks], device=self.device))
                mask = torch.ones(input_ids.shape, dtype=torch.long, device=self.device)
                image_mask = torch.ones(states.shape[:-1], dtype=torch.long, device=self.device)
                question = self.model.text_encoder(input_ids=input_ids, attention_mask=mask,
                                                   encoder_hidden_states=states,
                                                   encoder_attention_mask=image_mask).last_hidden_state
                start = torch.full((len(ks), 1), self.ids["dec"], dtype=torch.long, device=self.device)
                logits = self.model.text_decoder(input_ids=start, encoder_hidden_states=question,
                                                 encoder_attention_mask=mask, use_cache=False).logits[:, 0, :]
                prob = torch.softmax(logits.float(), dim=-1)  # over the whole vocabulary, as the official code
                yes, no = prob[:, self.ids["yes"]], prob[:, self.ids["no"]]
                for k, p in zip(ks, (yes / (yes + no)).cpu().tolist(), strict=True):
                    out[k] = p
        return out

    # -- scoring

    def _image_score(self, questions: list[str], raw: list[float | None]) -> ImageScore:
        asked = [(q, p) for q, p in zip(questions, raw, strict=True) if q]
        return ImageScore(combine(raw, self.rounded), {
            "questions": [q for q, _ in asked],
            "probabilities": [round4(p) if self.rounded else p for _, p in asked],
            "raw_probabilities": [p for _, p in asked]})

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        """One ``ImageScore`` per image, in order: vision once per image, then its non-empty questions."""
        from tqdm.auto import tqdm

        out = []
        with tqdm(total=len(images), desc="B-VQA", unit="img", disable=not progress) as bar:
            for chunk in _chunks(list(images), self.batch_size):
                states = self.image_states(self.pixels([im.path for im in chunk]))
                slots = [self.questions(im.prompt) for im in chunk]
                pairs = [(j, i) for j, qs in enumerate(slots) for i, q in enumerate(qs) if q]
                raw: list[list[float | None]] = [[None] * self.np_num for _ in chunk]
                probs = self.p_yes(states, [pre_question(slots[j][i]) for j, i in pairs], [j for j, _ in pairs])
                for (j, i), p in zip(pairs, probs, strict=True):
                    raw[j][i] = p
                out += [self._image_score(qs, r) for qs, r in zip(slots, raw, strict=True)]
                bar.update(len(chunk))
        return out

    def score_per_slot_loop(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        """``score``'s result computed in the official script's order, with our own model code: for each
        slot, every image (read again) through the vision model and ``p_yes`` in batches of ``batch_size``,
        empty questions included and then ignored. Equal scores check our batching (one vision pass per
        image, questions grouped by length); they say nothing about parity with the official code."""
        from tqdm.auto import tqdm

        images = list(images)
        slots = [self.questions(im.prompt) for im in images]
        raw: list[list[float | None]] = [[None] * self.np_num for _ in images]
        with tqdm(total=len(images) * self.np_num, desc="B-VQA (per-slot loop)", disable=not progress) as bar:
            for i in range(self.np_num):
                for rows in _chunks(list(range(len(images))), self.batch_size):
                    states = self.image_states(self.pixels([images[k].path for k in rows]))
                    probs = self.p_yes(states, [pre_question(slots[k][i]) for k in rows])
                    for k, p in zip(rows, probs, strict=True):
                        raw[k][i] = p if slots[k][i] else None
                    bar.update(len(rows))
        return [self._image_score(qs, r) for qs, r in zip(slots, raw, strict=True)]

    def provenance(self) -> dict:
        from bench.compbench.evaluators import weights_sha256

        vision = self.model.config.vision_config
        return {
            "metric": self.metric, "model": self.model_path, "model_folder": str(self.folder.resolve()),
            "weights_sha256": weights_sha256(self.folder),
            "image_size": self.image_size, "position_embeddings": (
                f"interpolated (bicubic) from the model's {vision.image_size} px to {self.image_size} px"
                if self.image_size != vision.image_size else f"as stored ({vision.image_size} px)"),
            "np_num": self.np_num, "dropped_chunks": list(self.dropped_chunks),
            "rounding": "official: each factor and the float32 product to 4 decimals" if self.rounded else "none",
            "token_ids": dict(self.ids), "dtype": str(self.dtype).removeprefix("torch."), "device": str(self.device),
            "batch_size": self.batch_size, "parser": self.parser.provenance(),
            "packages": package_versions(("pixart-bench", "torch", "torchvision", "transformers", "spacy")),
        }


# --------------------------------------------------------------------------- throughput


def measure_throughput(scorer: BlipVqaScorer, images: list[SampleImage],
                       modes: tuple[str, ...] = ("batched", "one_image", "per_slot_loop")) -> dict:
    """Images per second of each way our scorer can score ``images``: "batched" (``score``), "one_image"
    (``score`` with batch size 1) and "per_slot_loop" (``score_per_slot_loop``: our model code once per
    slot, the official script's order). Each mode's scores are compared with the first mode's (largest
    difference): all modes run our own code, so that difference checks batching, not official parity."""
    runs = {"batched": scorer.score, "one_image": None, "per_slot_loop": scorer.score_per_slot_loop}
    unknown = [m for m in modes if m not in runs]
    if unknown:
        raise BenchError(f"unknown throughput modes {unknown}; choose from {', '.join(runs)}")
    single = copy.copy(scorer)
    single.batch_size = 1
    runs["one_image"] = single.score
    out, first = {}, None
    for mode in modes:
        if scorer.device.type == "cuda":
            torch.cuda.synchronize(scorer.device)
        start = time.perf_counter()
        scores = runs[mode](images, progress=False)
        if scorer.device.type == "cuda":
            torch.cuda.synchronize(scorer.device)
        seconds = time.perf_counter() - start
        values = np.array([s.score for s in scores])
        first = values if first is None else first
        out[mode] = {"images": len(images), "seconds": seconds, "images_per_s": len(images) / seconds,
                     "batch_size": 1 if mode == "one_image" else scorer.batch_size,
                     "max_abs_diff": float(np.abs(values - first).max()) if len(values) else 0.0}
    return out
