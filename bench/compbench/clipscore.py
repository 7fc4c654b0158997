"""CLIPScore as T2I-CompBench computes it: non-spatial, and the action part of complex (3-in-1).

Per image: the raw cosine of the L2-normalised CLIP ViT-B/32 image and text embeddings (no ×100,
no 2.5·max(cos, 0), no clamp). The text is the whole prompt (the file name's prompt, trailing "."
kept), or for complex prompts the prompt without its spaCy ``ADJ`` tokens, the other tokens
joined with single spaces ("The red hat was on top of the brown coat rack." → "The hat was on top
of the coat rack ."). The category score is the mean over images.

The image goes through CLIP's own ``preprocess`` (``clip_preprocess``): the file as opened, resized
so its shortest side is 224 (bicubic, torchvision on the PIL image), centre-cropped to 224×224,
converted to RGB, scaled to [0, 1] and normalised with CLIP's mean and std. Both backends use this
one transform, so they see the same pixels as the official script.

Two backends give the same numbers (``tests/test_compbench_clip.py`` checks it on one model held
in both layouts):
- ``transformers``: ``CLIPModel`` + ``CLIPProcessor`` (its tokenizer; image mean and std) from a
  local folder or a hub id already in the Hugging Face cache (``openai/clip-vit-base-patch32``
  holds the same weights as OpenAI's ViT-B/32); always fp32.
- ``clip``: the OpenAI ``clip`` package (``pip install openai-clip "setuptools<81"``), which the
  official script runs: a TorchScript archive (``ViT-B-32.pt``, or the name ``ViT-B/32`` for the
  copy ``clip.load`` keeps in ``~/.cache/clip``) is loaded with ``clip.load(path, jit=False)``; a
  plain state dict with ``torch.load`` + ``clip.model.build_model`` (``clip.load`` cannot read one:
  it re-reads a consumed file handle). As in ``clip.load``, the model stays fp16 on CUDA (the
  official run's precision) and is fp32 on CPU.

Images are scored in batches (the official script scores one at a time); a text longer than
CLIP's 77 tokens, which the official script cannot score (``clip.tokenize`` raises), is cut to 77
tokens as ``clip.tokenize(..., truncate=True)`` does and flagged in the image's details. No shipped
prompt is that long (the longest complex prompt is 31 tokens).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from bench.compbench.parse import Parser
from bench.compbench.samples import ImageScore, SampleImage, open_image
from bench.errors import BenchError, check_device, check_range
from pixart.errors import read_json, reading
from pixart.files import package_versions, sha256_files

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
BACKENDS = ("auto", "transformers", "clip")
# the official model names clip.load accepts → the file it downloads into ~/.cache/clip
OPENAI_NAMES = {"ViT-B/32": "ViT-B-32.pt"}
OPENAI_CACHE = Path("~/.cache/clip")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INSTALL_CLIP = 'pip install openai-clip "setuptools<81"'
GET_WEIGHTS = (f"get the official weights with `huggingface-cli download {DEFAULT_MODEL}` (transformers backend) "
               "or `python -c \"import clip; clip.load('ViT-B/32')\"` on a machine that is online (clip backend; "
               "it saves ~/.cache/clip/ViT-B-32.pt)")


def drop_adjectives(tokens) -> str:
    """The complex rule's text: every token whose part of speech is not ``ADJ``, joined with single
    spaces (punctuation is a token too, so "rack." becomes "rack .")."""
    return " ".join(text for text, pos, *_ in tokens if pos != "ADJ")


def clip_preprocess(size: int = 224, mean=CLIP_MEAN, std=CLIP_STD):
    """CLIP's ``preprocess``: shortest side to ``size`` (bicubic), centre crop, RGB, [0, 1], normalise."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                      lambda im: im.convert("RGB"), T.ToTensor(), T.Normalize(mean, std)])


def raw_cosine(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of L2-normalised features, in the features' own precision (as the official
    script divides and multiplies fp16 features on CUDA)."""
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    return torch.bmm(image_features.unsqueeze(1), text_features.unsqueeze(2)).flatten()


def _first_line(e: Exception) -> str:
    """The first line of an error's message (the second for load_state_dict's "Error(s) in loading ...:")."""
    lines = [line.strip() for line in str(e).strip().splitlines()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines and lines[0] else type(e).__name__


def _features(out) -> torch.Tensor:
    """``get_*_features``' embeddings: a tensor (transformers 4) or the output's ``pooler_output`` (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class _Transformers:
    """``CLIPModel`` + ``CLIPProcessor`` from a folder or a cached hub id."""

    name = "transformers"

    def __init__(self, model_path: str, device: torch.device):
        from transformers import CLIPModel, CLIPProcessor

        self.folder = self.resolve(model_path)
        config = read_json(self.folder / "config.json", BenchError, "CLIP model config")
        if config.get("model_type") != "clip":
            raise BenchError(f"{self.folder} holds a {config.get('model_type')!r} model, not CLIP (model_type 'clip'); "
                             f"{GET_WEIGHTS}")
        with reading(self.folder, BenchError, "CLIP model folder"):
            self.model = CLIPModel.from_pretrained(self.folder)
        with reading(self.folder, BenchError, "CLIP processor (tokenizer, preprocessor_config.json) of"):
            processor = CLIPProcessor.from_pretrained(self.folder)
        self.model = self.model.float().eval().to(device)
        self.tokenizer = processor.tokenizer
        self.context_length = self.model.config.text_config.max_position_embeddings
        self.resolution = self.model.config.vision_config.image_size
        self.mean = tuple(processor.image_processor.image_mean)
        self.std = tuple(processor.image_processor.image_std)
        self.device = device
        self.weights = sorted(self.folder.glob("*.safetensors")) or sorted(self.folder.glob("*.bin"))

    @staticmethod
    def resolve(model_path: str) -> Path:
        """A local folder as it is; otherwise a hub id's snapshot in the Hugging Face cache."""
        path = Path(model_path).expanduser()
        if path.exists():
            if not path.is_dir():
                raise BenchError(f"CLIP model {path} is a file; the transformers backend reads a folder "
                                 "(config.json, weights, tokenizer); for an OpenAI .pt file use backend 'clip'")
            return path
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

        try:
            return Path(snapshot_download(str(model_path), local_files_only=True))
        except HFValidationError:
            raise BenchError(f"CLIP model not found: {model_path} is neither a folder nor a hub id; "
                             f"{GET_WEIGHTS}") from None
        except LocalEntryNotFoundError:
            raise BenchError(f"CLIP model {model_path} is neither a folder nor in the Hugging Face cache; "
                             f"{GET_WEIGHTS}, or pass its folder") from None

    def n_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.context_length,
                                return_tensors="pt").to(self.device)
        image = _features(self.model.get_image_features(pixel_values=pixels.to(self.device)))
        text = _features(self.model.get_text_features(input_ids=tokens["input_ids"],
                                                      attention_mask=tokens["attention_mask"]))
        return image, text


class _OpenAI:
    """The ``clip`` package's model from an OpenAI ``.pt`` (TorchScript archive or state dict)."""

    name = "clip"

    def __init__(self, model_path: str, device: torch.device):
        try:
            import clip
            from clip.model import build_model
            from clip.simple_tokenizer import SimpleTokenizer
        except ImportError as e:  # no package, or a setuptools without pkg_resources (81 and later)
            raise BenchError(f"the clip backend needs the OpenAI clip package: {INSTALL_CLIP} ({e})") from None
        self.file = self.resolve(model_path)
        if self.is_torchscript(self.file):
            try:
                self.model, _ = clip.load(str(self.file), device=device, jit=False)
            except torch.OutOfMemoryError:
                raise
            except KeyError as e:  # build_model reads the shapes from tensors this archive lacks
                raise BenchError(f"{self.file} is a TorchScript archive but not an OpenAI CLIP model (no tensor {e}); "
                                 f"{GET_WEIGHTS}") from None
            except (RuntimeError, EOFError, OSError) as e:  # a damaged archive, or mis-shaped tensors
                raise BenchError(f"cannot load the OpenAI CLIP archive {self.file}: {_first_line(e)}; "
                                 f"{GET_WEIGHTS}") from None
        else:
            self.model = self.from_state_dict(self.file, build_model).to(device)
            if device.type == "cpu":
                self.model = self.model.float()  # as clip.load does on CPU; fp16 stays on CUDA
        self.model.eval()
        self.tokenize = clip.tokenize
        self._bpe = SimpleTokenizer()
        self.context_length = self.model.context_length
        self.resolution = self.model.visual.input_resolution
        self.mean, self.std = CLIP_MEAN, CLIP_STD
        self.device = device
        self.weights = [self.file]

    def n_tokens(self, text: str) -> int:
        return len(self._bpe.encode(text)) + 2  # with the start and end tokens

    @staticmethod
    def resolve(model_path: str) -> Path:
        """A ``.pt`` file, or an official model name's copy in ``~/.cache/clip``."""
        if model_path in OPENAI_NAMES:
            path = (OPENAI_CACHE / OPENAI_NAMES[model_path]).expanduser()
            if not path.is_file():
                raise BenchError(f"CLIP model {model_path}: {path} not found; {GET_WEIGHTS}")
            return path
        path = Path(model_path).expanduser()
        if not path.exists():
            raise BenchError(f"CLIP model not found: {path}; {GET_WEIGHTS}")
        if not path.is_file():
            raise BenchError(f"CLIP model {path} is a folder; the clip backend reads an OpenAI .pt file "
                             "(for a transformers folder use backend 'transformers')")
        return path

    @staticmethod
    def is_torchscript(path: Path) -> bool:
        """TorchScript archives are zip files holding ``constants.pkl`` and ``code/``; ``torch.save``
        archives hold neither."""
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") for n in z.namelist())

    @staticmethod
    def from_state_dict(path: Path, build_model) -> torch.nn.Module:
        import pickle

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain containers
            raise BenchError(f"cannot read OpenAI CLIP weights {path}: not a torch file of tensors; "
                             f"{GET_WEIGHTS}") from None
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
            raise BenchError(f"cannot read OpenAI CLIP weights {path}: {_first_line(e)} "
                             "(truncated, or not a torch file?)") from None
        needed = ("visual.proj", "visual.conv1.weight", "text_projection", "token_embedding.weight")
        if not isinstance(state, dict) or any(k not in state for k in needed):
            raise BenchError(f"{path} is not an OpenAI CLIP ViT state dict (keys {', '.join(needed)} expected); "
                             f"{GET_WEIGHTS}")
        try:
            return build_model(state)
        except KeyError as e:  # a tensor build_model reads the shapes from
            raise BenchError(f"cannot build CLIP from {path}: tensor {e} is missing") from None
        except RuntimeError as e:  # load_state_dict: missing, unexpected or mis-shaped tensors
            raise BenchError(f"cannot build CLIP from {path}: {_first_line(e)}") from None

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenize(texts, context_length=self.context_length, truncate=True).to(self.device)
        return self.model.encode_image(pixels.to(self.device)), self.model.encode_text(tokens)


def resolve_backend(model_path: str, backend: str) -> str:
    """"auto": an OpenAI name (``ViT-B/32``) or a file → clip; a folder or hub id → transformers."""
    if backend not in BACKENDS:
        raise BenchError(f"CLIP backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    return "clip" if model_path in OPENAI_NAMES or Path(model_path).expanduser().is_file() else "transformers"


class ClipScorer:
    """The official CLIPScore (``metric = "CLIPScore"``) with either backend; ``complex=True`` drops
    the prompt's adjectives first (the action part of 3-in-1)."""

    metric = "CLIPScore"

    def __init__(self, model_path: str = DEFAULT_MODEL, *, backend: str = "auto", complex: bool = False,
                 device: str = "cpu", batch_size: int = 64, parser: Parser | None = None):
        check_range("batch_size", batch_size, 1, whole=True)
        self.model_path = str(model_path)
        self.complex = bool(complex)
        self.batch_size = int(batch_size)
        self.parser = parser if parser is not None or not complex else Parser()
        dev = check_device(device, "device")
        kind = resolve_backend(self.model_path, backend)
        self.backend = _OpenAI(self.model_path, dev) if kind == "clip" else _Transformers(self.model_path, dev)
        self.preprocess = clip_preprocess(self.backend.resolution, self.backend.mean, self.backend.std)
        self._sha256 = None

    def text(self, prompt: str) -> str:
        """What CLIP reads for ``prompt``: the prompt, or (complex) the prompt without adjectives."""
        return drop_adjectives(self.parser(prompt).tokens) if self.complex else prompt

    def score(self, images: list[SampleImage], progress: bool = True) -> list[ImageScore]:
        from tqdm import tqdm

        texts = {im.prompt: self.text(im.prompt) for im in images}
        too_long = {t for t in set(texts.values()) if self.backend.n_tokens(t) > self.backend.context_length}
        out = []
        batches = range(0, len(images), self.batch_size)
        for start in tqdm(batches, desc="CLIPScore", unit="batch", disable=not progress):
            batch = images[start:start + self.batch_size]
            pixels = torch.stack([self.preprocess(open_image(im.path, None)) for im in batch])
            unique = list(dict.fromkeys(texts[im.prompt] for im in batch))
            image_features, text_features = self.backend.encode(pixels, unique)
            rows = torch.tensor([unique.index(texts[im.prompt]) for im in batch], device=text_features.device)
            cosines = raw_cosine(image_features, text_features[rows]).float().cpu().tolist()
            for im, cos in zip(batch, cosines):
                details = {"text": texts[im.prompt]}
                if details["text"] in too_long:
                    details["truncated_to_tokens"] = self.backend.context_length
                out.append(ImageScore(cos, details))
        return out

    def weights_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_files(self.backend.weights)
        return self._sha256

    def provenance(self) -> dict:
        b = self.backend
        record = {
            "metric": self.metric,
            "backend": b.name,
            "model_path": self.model_path,
            "weights": [str(p) for p in b.weights],
            "weights_sha256": self.weights_sha256(),
            "dtype": str(next(b.model.parameters()).dtype).removeprefix("torch."),
            "device": str(b.device),
            "batch_size": self.batch_size,
            "text": "the prompt without spaCy ADJ tokens, joined with single spaces" if self.complex
                    else "the whole prompt",
            "image": f"shortest side to {b.resolution} (bicubic), centre crop {b.resolution}, RGB, "
                     f"normalised with mean {list(b.mean)} std {list(b.std)}",
            "score": "raw cosine of the L2-normalised image and text embeddings",
            "packages": package_versions(("torch", "transformers", "openai-clip")),
        }
        if self.complex:
            record["parser"] = self.parser.provenance()
        return record
