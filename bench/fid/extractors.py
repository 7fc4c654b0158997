"""FID's feature extractors, all from torch-fidelity's registry, with their weights found offline.

- ``inception-v3-compat`` (the default; layer ``2048``, pool3): torch-fidelity's port of the TF
  2015-12-05 Inception graph. Weights: ``--inception-weights FILE``, else torch-fidelity's own download
  place, ``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
- ``clip-vit-b-32`` (CLIP-FID; layer ``clip``): a TorchScript file as OpenAI publishes it (what
  torch-fidelity downloads). Weights: ``--clip-weights FILE``, else
  ``$TORCH_HOME/hub/checkpoints/clip-vit-b-32-<sha256>.pt``.
- ``world-cnn`` (layer ``feat``): the shapes world's extractor. Its network lives with the world
  (``bench.world.fid``), which this module does not import: whoever uses it registers it with
  torch-fidelity first (``bench.world.fid.register_world_extractor``: the command line, and the world's
  own FID functions, do), and the registered class names its bundled weights (``default_weights``;
  ``--world-weights FILE`` for another one).

Nothing is downloaded: the weights path is always handed to torch-fidelity
(``feature_extractor_weights_path``), and a missing file is a ``BenchError`` that names the file, the
places looked and the address to fetch it from on a connected machine. torch-fidelity loads Inception
weights with ``torch.load(..., weights_only=False)`` (a pickle): only use files you trust. Each
extractor resizes its uint8 input itself (Inception to 299×299, CLIP to 224×224) with torch-fidelity's
TF1-compatible bilinear interpolation; world-cnn to 64×64 with antialiased bilinear.
"""

from __future__ import annotations

import pickle
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_clip import MODEL_METADATA, MODEL_URLS
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from bench.errors import BenchError, check_device, check_range
from bench.fid.images import file_sha256

CLIP_NAME = "clip-vit-b-32"


@dataclass(frozen=True)
class ExtractorInfo:
    name: str  # torch-fidelity's registered name
    layer: str  # the feature layer FID uses
    option: str  # the command-line option that gives its weights
    what: str  # the weights, in words
    input: str  # how it resizes its uint8 input, in words
    file_name: str | None = None  # torch-fidelity's cache file name (None: bundled)
    url: str | None = None


EXTRACTORS = {
    "inception-v3-compat": ExtractorInfo("inception-v3-compat", "2048", "--inception-weights",
                                         "Inception-v3 weights (torch-fidelity's inception-v3-compat state dict)",
                                         "299x299 with torch-fidelity's TF1-compatible bilinear (no antialias)",
                                         Path(URL_INCEPTION_V3).name, URL_INCEPTION_V3),
    CLIP_NAME: ExtractorInfo(CLIP_NAME, "clip", "--clip-weights", "CLIP ViT-B/32 weights (OpenAI's TorchScript file)",
                             "224x224 with torch-fidelity's TF1-compatible bilinear (no antialias)",
                             f"{CLIP_NAME}-{MODEL_METADATA[CLIP_NAME]['hash']}.pt", MODEL_URLS[CLIP_NAME]),
    "world-cnn": ExtractorInfo("world-cnn", "feat", "--world-weights",
                               "world-cnn weights (.safetensors with its .json beside it)",
                               "64x64 with bilinear and antialias (bench.world.fid.preprocess)"),
}
LOAD_ERRORS = (RuntimeError, OSError, EOFError, KeyError, ValueError, AttributeError, IndexError,
               pickle.UnpicklingError)  # what torch.load / torch.jit.load / load_state_dict raise on a wrong file


def extractor_info(name: str) -> ExtractorInfo:
    if name not in EXTRACTORS:
        raise BenchError(f"--extractor must be one of {', '.join(EXTRACTORS)}, got {name!r}")
    return EXTRACTORS[name]


def hub_checkpoints() -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` (so torch-fidelity) keeps downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(name: str, weights=None) -> Path:
    """The weights file of extractor ``name``: ``weights`` if given, else torch-fidelity's cache (Inception,
    CLIP) or the bundled file (world-cnn); BenchError naming the file and the places looked, or a torch
    file whose archive does not read (truncated), before any image is looked at."""
    info = extractor_info(name)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            why = "no such file" if not path.exists() else "a folder, not a file"
            raise BenchError(f"{info.option} {path}: {why}; give the {info.what}"
                             + (f" (download {info.url} on a connected machine)" if info.url else ""))
        return _readable(path, info)
    if info.file_name is None:
        return bundled_weights(info)
    cached = hub_checkpoints() / info.file_name
    if not cached.is_file():
        raise BenchError(f"{info.what} not found: {info.option} was not given and torch-fidelity's cache has no "
                         f"{cached}; on a connected machine download {info.url}, then pass it with "
                         f"{info.option} FILE or copy it to {cached}")
    return _readable(cached, info)


def _readable(path: Path, info: ExtractorInfo) -> Path:
    """``path``, once the header of a torch weights file (Inception, CLIP) reads; the full load comes
    before the first feature (``FidSettings.check`` loads it before a protocol generates)."""
    from bench.compbench.evaluators import weights_header_problem

    problem = weights_header_problem(path) if info.url else None
    if problem:
        raise BenchError(f"cannot load {info.what} from {path}: {problem}; give the right file with {info.option}")
    return path


def bundled_weights(info: ExtractorInfo) -> Path:
    """The weights that come with a registered extractor's network (its class's ``default_weights``)."""
    weights = getattr(FEATURE_EXTRACTORS_REGISTRY.get(info.name), "default_weights", None)
    if weights is None:
        raise BenchError(f"the {info.name} extractor is not registered with torch-fidelity: register it before "
                         "use (bench.world.fid.register_world_extractor(); the commands do)")
    return Path(weights)


def worker_message(message: str) -> str:
    """A BenchError raised in a DataLoader worker comes back with the worker's traceback in its message;
    keep the original message (its last line)."""
    if "Traceback" not in message:
        return message
    last = [line for line in message.strip().splitlines() if line.strip()][-1]
    return last.split("BenchError: ", 1)[-1]


class Extractor:
    """One torch-fidelity feature extractor, shared by both sides of a comparison (made on first use).

    ``features(dataset)`` runs torch-fidelity's own loop (``get_featuresdict_from_dataset``): no worker
    processes on a CPU (they would compete with the network for the cores), 4 on a GPU where this process
    may use at least 4 CPUs, else none (``loader_workers``).
    """

    def __init__(self, name: str = "inception-v3-compat", weights=None, device: str = "cpu", batch_size: int = 64,
                 verbose: bool = False):
        self.info = extractor_info(name)
        self.weights = resolve_weights(name, weights)
        self.device = check_device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise BenchError(f"--device {device}: torch-fidelity runs on cpu or cuda[:N]")
        check_range("--batch-size", batch_size, 1, whole=True)
        self.batch_size, self.verbose = batch_size, verbose
        self._module = None
        self._sha256 = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def layer(self) -> str:
        return self.info.layer

    @property
    def weights_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.weights)
        return self._sha256

    def describe(self) -> dict:
        return {"name": self.name, "layer": self.layer, "weights": str(self.weights),
                "weights_sha256": self.weights_sha256, "input": self.info.input}

    def _cuda_context(self):
        cuda = self.device.type == "cuda"
        return torch.cuda.device(self.device) if cuda and self.device.index is not None else nullcontext()

    def module(self):
        if self._module is None:
            with self._cuda_context():
                try:
                    self._module = create_feature_extractor(
                        self.name, [self.layer], cuda=self.device.type == "cuda",
                        feature_extractor_weights_path=str(self.weights), verbose=self.verbose)
                except BenchError:
                    raise
                except LOAD_ERRORS as e:
                    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                    raise BenchError(f"cannot load {self.info.what} from {self.weights}: {first}; "
                                     f"give the right file with {self.info.option}") from None
        return self._module

    def features(self, dataset) -> torch.Tensor:
        """float32 [N, D] features of a Dataset of uint8 [3, H, W] tensors."""
        module = self.module()
        cuda = self.device.type == "cuda"
        with self._cuda_context():
            try:
                out = get_featuresdict_from_dataset(dataset, module, self.batch_size, cuda,
                                                    loader_workers(cuda) == 0, self.verbose)
            except BenchError as e:
                raise BenchError(worker_message(str(e))) from None
        return out[self.layer]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system has one, else all)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this system
        return os.cpu_count() or 1


def loader_workers(cuda: bool) -> int:
    """The DataLoader worker processes of torch-fidelity's loop: it takes 4 (``save_cpu_ram=False``) or none.
    None on a CPU, where they would compete with the network for the cores; 4 on a GPU only where 4 CPUs
    are ours, as more worker processes than CPUs only wait for each other (and torch warns on every FID)."""
    return 4 if cuda and usable_cpus() >= 4 else 0
