"""The official T2I-CompBench folder layout, and what every metric scores.

Images live in ``DIR/samples/<prompt>_<NNNNNN>.png``: the prompt is the file name up to its first
``_`` (no prompt contains one), and the six-digit index runs across prompts in prompt-file order
(prompt i, image k → 10·i + k in the official protocol). The official scripts list ``samples/``,
sort by that index, and read each image's prompt from its name; ``list_samples`` does the same, so
any folder the official scripts read, ours reads, and the reverse.

A metric is a ``Scorer``: ``score(images)`` returns one ``ImageScore`` per ``SampleImage``, in
order, and ``provenance()`` says what made the numbers (evaluator weights and their hashes,
settings) for ``results.json``. Each metric writes its official ``vqa_result.json`` with
``write_vqa_result``: a JSON list of ``{"question_id", "answer"}``; the BLIP and CLIP scripts
number images by their position after sorting, the UniDet scripts by the index in the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.errors import BenchError
from pixart.files import write_json_atomic

SAMPLES = "samples"
NAME = re.compile(r"^(?P<prompt>[^_/]+)_(?P<index>\d+)\.(?:png|jpg|jpeg)$", re.IGNORECASE)


@dataclass(frozen=True)
class SampleImage:
    path: Path  # DIR/samples/<prompt>_<NNNNNN>.png
    prompt: str
    index: int  # the number in the file name

    @property
    def file(self) -> str:
        return self.path.name


@dataclass
class ImageScore:
    score: float
    details: dict = field(default_factory=dict)  # what the score was made of (questions, probabilities, boxes)


class Scorer(Protocol):
    metric: str  # the name shown beside every number it makes, e.g. "B-VQA" or "UniDet 2D (OWLv2 detections)"

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]: ...

    def provenance(self) -> dict: ...


def open_image(path: str | Path, mode: str | None = "RGB"):
    """The image at ``path``, fully read, converted to ``mode`` (None: as stored, as the CLIP script
    passes it on); BenchError names a missing or damaged file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode) if mode else im.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # PIL: SyntaxError for some broken PNGs
        raise BenchError(f"cannot read image {path}: {e}; regenerate it or move it out of the samples folder") from None


def sample_name(prompt: str, index: int) -> str:
    """The official file name of image ``index`` of ``prompt``."""
    if "_" in prompt or "/" in prompt:
        raise BenchError(f"prompt {prompt!r} contains '_' or '/', which the official file names cannot hold")
    return f"{prompt}_{index:06d}.png"


def list_samples(folder: str | Path) -> list[SampleImage]:
    """The images of ``folder/samples/`` sorted by their index, as the official scripts read them.
    BenchError names a missing folder, an empty one, a file whose name is not ``<prompt>_<N>.png``,
    or two files with one index."""
    folder = Path(folder)
    samples = folder / SAMPLES
    if not samples.is_dir():
        raise BenchError(f"no {SAMPLES}/ folder in {folder}: the official layout is "
                         f"{folder}/{SAMPLES}/<prompt>_<NNNNNN>.png")
    images, seen = [], {}
    for path in sorted(p for p in samples.iterdir() if not p.name.startswith(".")):
        m = NAME.match(path.name)
        if not path.is_file() or m is None:
            raise BenchError(f"{path} is not named <prompt>_<NNNNNN>.png (the official layout); move it out of "
                             f"{samples}")
        index = int(m["index"])
        if index in seen:
            raise BenchError(f"{path.name} and {seen[index]} in {samples} have the same index {index}")
        seen[index] = path.name
        images.append(SampleImage(path, m["prompt"], index))
    if not images:
        raise BenchError(f"{samples} holds no images")
    return sorted(images, key=lambda im: im.index)


def write_vqa_result(path: str | Path, images: list[SampleImage], scores: list[ImageScore],
                     question_id: str = "position", as_text: bool = False) -> Path:
    """The official ``vqa_result.json``: ``question_id`` is the position after sorting ("position",
    the BLIP and CLIP scripts) or the file name's index ("index", the UniDet scripts); ``as_text``
    writes each answer as a 4-decimal string as the BLIP script does, else as a number as the
    others do."""
    if question_id not in ("position", "index"):
        raise ValueError(f"question_id must be 'position' or 'index', got {question_id!r}")
    rows = [{"question_id": i if question_id == "position" else im.index,
             "answer": f"{s.score:.4f}" if as_text else s.score}
            for i, (im, s) in enumerate(zip(images, scores, strict=True))]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, rows)
