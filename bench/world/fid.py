"""World-FID: Fréchet distance in the feature space of a small CNN trained on the shapes world.

Inception weights cannot be downloaded here, and ImageNet features are a poor fit for flat
synthetic shapes anyway. So the project's FID uses ``WorldCNN``, trained on images rendered by
``bench.world.render``:

- input: uint8 RGB of any size → 64×64 (bilinear, antialiased, in float) → x/127.5 − 1;
- a lossless 2×2 space-to-depth stem (12 channels at 32×32, so 2-px stripes survive), four conv
  blocks (3×3 conv, BatchNorm, ReLU; 32-64-96-128 channels; 2×2 max pool between blocks);
- 2×2 average cells + global max (640) → linear → the 128-d feature "feat" (the FID layer),
  centred and scaled by fixed constants taken from the training images so the mean
  per-dimension variance of real images is 1 (FID is in those units; KID's kernel sees O(1)
  values);
- attribute heads (GELU → linear) on the unscaled feature: multi-label (BCE, summed over a
  group's labels) for shapes present (6), colours present (8), textures present (4), sizes
  present (2), shape×colour pairs present (48, so features bind colour to shape), 3×3 grid
  cells holding an object centre (9), background noise (1); single-label (CE) for background (2)
  and number of objects (3). 281k parameters, stored as float16: 0.57 MB.

Reference weights: ``bench/world/reference/feature_extractor.safetensors`` and its config
``feature_extractor.json`` (architecture, head layout, and a "training" record), made with::

    .venv/bin/python -m bench.world.fid train     # = train_feature_extractor(DEFAULT_WEIGHTS)

i.e. seed 0, 10,000 rendered scenes (5 % rendered at 128 px and resized), 2,500 AdamW steps of
batch 64 (lr 3e-3, cosine, random left-right mirroring), 1 thread, torch 2.14.1 on a busy
2-core CPU: wall time 230 s (rendering 57 s, training 165 s); a second run gave identical
losses and accuracies. Held-out accuracy on 1,000 fresh 64 px scenes from an independent stream
(multi-label groups count as right only if the whole label set is exactly right):
shapes 0.982, colours 0.999, textures 0.882, sizes 1.000, shape×colour pairs 0.733, grid cells
0.903, noise 1.000, background 1.000, object count 1.000 (train: pairs 0.825, grid 0.987,
textures 0.922, the rest ≥ 0.99). Binding colour to shape with 2–3 objects is its weakest skill.

torch-fidelity integration: ``WorldFeatureExtractor`` is a ``torch_fidelity.FeatureExtractorBase``
registered as ``"world-cnn"`` (``register_world_extractor()``, idempotent, also called by
``world_fid``). It follows torch-fidelity's input convention (a ``torch.uint8`` batch
[B, 3, H, W]) and returns a tuple of float32 features in ``features_list`` order ("feat",
"attr_logits"). Weights load from the package directory (or ``feature_extractor_weights_path=``);
nothing touches the network.

``world_fid(real, generated)`` takes folders of PNG/JPEG images or lists of PIL images (one image
size per set; the sets may differ, e.g. 64 px real vs 128 px generated) and returns
``{"fid": ..., "n_real": ..., "n_generated": ..., ...}`` from
``torch_fidelity.calculate_metrics(fid=True, feature_extractor="world-cnn")``.

What the numbers look like (tests/test_world_fid.py sets; 64 px; real set A vs set B):

=============================  =====  =====  ==================
set B (N = 400 each)           FID    ×same  KID (×1, ± std)
=============================  =====  =====  ==================
same distribution, new seeds    5.6    1.0   0.011 ± 0.012
Gaussian blur, radius 1        11.6    2.1   0.088 ± 0.015
Gaussian blur, radius 2        37.2    6.6   0.454 ± 0.026
RGB → BRG channel swap         31.6    5.6   0.583 ± 0.090
every shape a circle           72.3   12.9   1.406 ± 0.091
=============================  =====  =====  ==================

Like any FID it is biased upwards at small N (same-distribution FID 9.7 at N = 200, 6.8 at
300, 5.6 at 400, roughly ∝ 1/N): compare FIDs only at equal set sizes, or use ``kid=True``,
which is unbiased.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_fidelity
from PIL import Image
from safetensors.torch import load_file, save_file
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from bench.world.render import render
from bench.world.scene import BACKGROUNDS, COLORS, SHAPES, SIZES, TEXTURES, Scene, sample_scene

EXTRACTOR_NAME = "world-cnn"
FEATURE_LAYER = "feat"
LOGITS_LAYER = "attr_logits"
INPUT_SIZE = 64
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
DEFAULT_WEIGHTS = REFERENCE_DIR / "feature_extractor.safetensors"
ARCH = "world-cnn-v1"

# ------------------------------------------------------------------------------------------
# Labels
# ------------------------------------------------------------------------------------------

COLOR_NAMES = tuple(COLORS)
SIZE_NAMES = tuple(SIZES)
BACKGROUND_NAMES = tuple(BACKGROUNDS)
PAIR_NAMES = tuple(f"{c} {s}" for s in SHAPES for c in COLOR_NAMES)
GRID_NAMES = tuple(f"cell{r}{c}" for r in range(3) for c in range(3))
MULTI_LABEL = {  # group → label names (BCE)
    "shape": SHAPES,
    "color": COLOR_NAMES,
    "texture": TEXTURES,
    "size": SIZE_NAMES,
    "pair": PAIR_NAMES,
    "grid": GRID_NAMES,
    "noise": ("noisy",),
}
SINGLE_LABEL = {  # group → class names (CE)
    "background": BACKGROUND_NAMES,
    "count": ("1", "2", "3"),
}


def _head_layout() -> dict[str, tuple[int, int]]:
    """group → (start, stop) slice of the logits vector, multi-label groups first."""
    out, i = {}, 0
    for group, names in (*MULTI_LABEL.items(), *SINGLE_LABEL.items()):
        out[group] = (i, i + len(names))
        i += len(names)
    return out


HEADS = _head_layout()
NUM_LOGITS = max(stop for _, stop in HEADS.values())


def scene_targets(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(multi-hot float32 [n_multi], class indices int64 [n_single]) for one scene."""
    multi = np.zeros(HEADS["noise"][1], np.float32)

    def on(group: str, index: int):
        multi[HEADS[group][0] + index] = 1.0

    for o in scene.objects:
        on("shape", SHAPES.index(o.shape))
        on("color", COLOR_NAMES.index(o.color))
        on("texture", TEXTURES.index(o.texture))
        on("size", SIZE_NAMES.index(o.size))
        on("pair", PAIR_NAMES.index(f"{o.color} {o.shape}"))
        on("grid", min(int(o.y * 3), 2) * 3 + min(int(o.x * 3), 2))
    if scene.noise > 0:
        on("noise", 0)
    single = np.array([BACKGROUND_NAMES.index(scene.background), len(scene.objects) - 1], np.int64)
    return multi, single


def sample_scene_retry(rng: random.Random) -> Scene:
    """``sample_scene``, drawing again if it raises RuntimeError (it gives up on unplaceable layouts)."""
    for _ in range(100):
        try:
            return sample_scene(rng)
        except RuntimeError:
            continue
    raise RuntimeError("sample_scene failed 100 times in a row")


# ------------------------------------------------------------------------------------------
# The network
# ------------------------------------------------------------------------------------------


class WorldCNN(nn.Module):
    """float images in [-1, 1], [B, 3, 64, 64] → (feature [B, D], attribute logits [B, K]).

    A 2×2 space-to-depth stem (lossless: 12 channels at 32×32, so 2-px stripes survive), then
    conv blocks (3×3 conv, BatchNorm, ReLU, 2×2 max pool between blocks), then 2×2 average cells
    plus a global max, and a linear layer to the feature.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 96, 128), feat_dim: int = 128, num_logits: int = NUM_LOGITS,
                 stem: int = 2, convs: Sequence[int] = (1, 1, 1, 1)):
        super().__init__()
        self.stem = stem
        blocks, c_in = [], 3 * stem * stem
        for i, (c, n) in enumerate(zip(channels, convs, strict=True)):
            for _ in range(n):
                blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
                c_in = c
            if i < len(channels) - 1:
                blocks.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*blocks)
        self.proj = nn.Linear(c_in * 5, feat_dim)  # 2×2 average cells + global max
        self.head = nn.Sequential(nn.GELU(), nn.Linear(feat_dim, num_logits))
        # Fixed affine map of the returned feature, set after training from the training images:
        # centred, and scaled so the mean per-dimension variance is 1 (FID is in those units;
        # KID's polynomial kernel x·y/d + 1 then sees O(1) values, as with Inception features).
        self.register_buffer("feat_center", torch.zeros(feat_dim))
        self.register_buffer("feat_scale", torch.ones(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stem > 1:
            x = F.pixel_unshuffle(x, self.stem)
        h = self.trunk(x)
        pooled = torch.cat([F.adaptive_avg_pool2d(h, 2).flatten(1), h.amax(dim=(2, 3))], dim=1)
        raw = self.proj(pooled)
        return (raw - self.feat_center) * self.feat_scale, self.head(raw)


def preprocess(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, 3, H, W] → ``dtype`` [B, 3, 64, 64] in [-1, 1]; antialiased bilinear resize if needed."""
    x = x.to(dtype)
    if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x / 127.5 - 1.0


def pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """PIL image → uint8 tensor [3, H, W] (torch-fidelity's per-sample convention)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def config_path_for(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def load_world_cnn(weights_path: str | Path | None = None) -> tuple[WorldCNN, dict]:
    """The trained network (eval mode, on CPU) and its json config, from local files only."""
    weights_path = Path(weights_path or DEFAULT_WEIGHTS)
    config = json.loads(config_path_for(weights_path).read_text())
    if config.get("arch") != ARCH:
        raise ValueError(f"{weights_path}: arch {config.get('arch')!r}, expected {ARCH!r}")
    model = WorldCNN(config["channels"], config["feat_dim"], config["num_logits"], config["stem"], config["convs"])
    model.load_state_dict(load_file(str(weights_path)), strict=True)
    return model.eval(), config


def weights_digest(weights_path: str | Path | None = None) -> str:
    return hashlib.sha256(Path(weights_path or DEFAULT_WEIGHTS).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------
# torch-fidelity feature extractor
# ------------------------------------------------------------------------------------------


class WorldFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity extractor "world-cnn": uint8 [B, 3, H, W] → (features in ``features_list`` order).

    Provided features: "feat" (128-d, the default for fid/kid/prc) and "attr_logits" (the
    attribute heads' logits). There is no class-probability layer, so ISC is not supported.
    Keyword arguments honoured: ``feature_extractor_weights_path`` (a .safetensors with its .json
    beside it) and ``feature_extractor_internal_dtype`` ("float32" default, or "float64").
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None,
                 feature_extractor_internal_dtype=None, **kwargs):
        super().__init__(name, features_list)
        dtypes = {None: torch.float32, "float32": torch.float32, "float64": torch.float64}
        if feature_extractor_internal_dtype not in dtypes:
            raise ValueError(f"feature_extractor_internal_dtype must be float32 or float64, "
                             f"got {feature_extractor_internal_dtype!r}")
        self.internal_dtype = dtypes[feature_extractor_internal_dtype]
        self.weights_path = Path(feature_extractor_weights_path or DEFAULT_WEIGHTS)
        self.net, self.config = load_world_cnn(self.weights_path)
        self.net.to(self.internal_dtype)
        self.requires_grad_(False)
        self.eval()  # BatchNorm on its stored statistics: features never depend on the batch

    @staticmethod
    def get_provided_features_list():
        return (FEATURE_LAYER, LOGITS_LAYER)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        if metric in ("fid", "kid", "prc"):
            return FEATURE_LAYER
        raise ValueError(f'feature extractor "{EXTRACTOR_NAME}" has no default layer for {metric!r} '
                         f"(it has no class-probability output, so ISC is not supported)")

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)

    def forward(self, x):
        if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3):
            raise TypeError(f"expected a uint8 tensor [B, 3, H, W], got "
                            f"{getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")
        feat, logits = self.net(preprocess(x, self.internal_dtype))
        out = {FEATURE_LAYER: feat.float(), LOGITS_LAYER: logits.float()}
        return tuple(out[name] for name in self.features_list)


_REGISTER_LOCK = threading.Lock()


def register_world_extractor() -> str:
    """Register ``WorldFeatureExtractor`` with torch-fidelity as "world-cnn"; safe to call repeatedly.

    torch-fidelity refuses a second registration of a name, so this checks first. A class of
    the same qualified name (e.g. after ``importlib.reload``) counts as already registered;
    anything else under the name is an error.
    """
    with _REGISTER_LOCK:
        existing = FEATURE_EXTRACTORS_REGISTRY.get(EXTRACTOR_NAME)
        if existing is None:
            torch_fidelity.register_feature_extractor(EXTRACTOR_NAME, WorldFeatureExtractor)
        elif (existing.__module__, existing.__qualname__) != (WorldFeatureExtractor.__module__,
                                                              WorldFeatureExtractor.__qualname__):
            raise RuntimeError(f'torch-fidelity already has a different feature extractor named '
                               f'"{EXTRACTOR_NAME}": {existing!r}')
    return EXTRACTOR_NAME


# ------------------------------------------------------------------------------------------
# world_fid
# ------------------------------------------------------------------------------------------


class UInt8ImageDataset(Dataset):
    """In-memory images as torch-fidelity wants them: uint8 tensors [3, H, W], one size per set."""

    def __init__(self, images: Iterable[Image.Image | np.ndarray | torch.Tensor]):
        tensors = []
        for im in images:
            if isinstance(im, Image.Image):
                t = pil_to_uint8(im)
            elif isinstance(im, np.ndarray):  # H×W×3 uint8
                t = torch.from_numpy(np.ascontiguousarray(im, dtype=np.uint8)).permute(2, 0, 1).contiguous()
            elif torch.is_tensor(im) and im.dtype == torch.uint8 and im.dim() == 3 and im.shape[0] == 3:
                t = im.contiguous()
            else:
                raise TypeError(f"expected PIL images, H×W×3 uint8 arrays or uint8 [3, H, W] tensors, got {type(im)}")
            tensors.append(t)
        if not tensors:
            raise ValueError("empty image set")
        sizes = {tuple(t.shape) for t in tensors}
        if len(sizes) > 1:
            raise ValueError(f"all images of one set must share a size, got {sorted(sizes)}")
        self.images = tensors

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in self.images:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()


_FOLDER_EXTS = (".png", ".jpg", ".jpeg")  # torch-fidelity's default samples_find_ext (non-recursive)


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _FOLDER_EXTS)
    if not files:
        raise ValueError(f"no .png/.jpg/.jpeg images in {folder}")
    return files


def _folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in _folder_files(folder):
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def _as_input(images) -> tuple[str | Dataset, int, Path | UInt8ImageDataset]:
    """(torch-fidelity input, number of images, handle for hashing)."""
    if isinstance(images, (str, Path)):
        folder = Path(images)
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a directory")
        files = _folder_files(folder)
        sizes = set()
        for p in files:  # headers only; torch-fidelity's collate would fail later with a vaguer error
            with Image.open(p) as im:
                sizes.add(im.size)
        if len(sizes) > 1:
            raise ValueError(f"all images of one set must share a size; {folder} has {sorted(sizes)}")
        return str(folder), len(files), folder
    if isinstance(images, UInt8ImageDataset):
        return images, len(images), images
    ds = UInt8ImageDataset(images)
    return ds, len(ds), ds


def world_fid(real, generated, *, device: str = "cpu", cache: bool = False, cache_root: str | Path | None = None,
              kid: bool = False, batch_size: int = 64, weights_path: str | Path | None = None,
              blas_threads: int | None = 1, verbose: bool = False) -> dict:
    """World-FID between two image sets, computed by ``torch_fidelity.calculate_metrics``.

    ``real`` and ``generated``: a folder of .png/.jpg/.jpeg files (non-recursive) or a sequence
    of PIL images (also H×W×3 uint8 arrays or uint8 [3, H, W] tensors). Within a set all images
    must share one size; the extractor resizes any size to 64×64 (non-square images are
    squashed, not cropped). FID is symmetric; the order only sets which input is which.

    ``cache=True`` lets torch-fidelity cache each set's features and statistics (under
    ``cache_root``, default ``$TORCH_HOME/fidelity_cache``) keyed by a sha256 of the set's content
    and of the extractor weights, so a changed set or retrained extractor never hits a stale entry.
    ``kid=True`` adds the kernel inception distance (torch-fidelity's polynomial kernel; 100
    subsets of half the smaller set, capped at 1000), which is unbiased, so unlike FID its
    expected value for two sets of one distribution is 0 at any set size.

    ``blas_threads`` caps numpy's BLAS threads during the call (None: leave as is). The matrices
    are only 128×128, and on a busy 2-core machine multi-threaded OpenBLAS spin-waits: its
    ``eigvals`` took ~0.8 s there against ~2 ms single-threaded.

    Returns {"fid", "n_real", "n_generated", "feature_extractor", "feature_dim", "weights_sha256"}
    (+ "kid_mean", "kid_std").
    """
    register_world_extractor()
    in_real, n_real, h_real = _as_input(real)
    in_gen, n_gen, h_gen = _as_input(generated)
    if min(n_real, n_gen) < 2:
        raise ValueError("FID needs at least 2 images per set")
    weights_path = Path(weights_path or DEFAULT_WEIGHTS)
    wdigest = weights_digest(weights_path)

    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], got {device!r}")
    kwargs = dict(
        input1=in_gen, input2=in_real, fid=True, kid=kid, feature_extractor=EXTRACTOR_NAME,
        feature_layer_fid=FEATURE_LAYER, feature_layer_kid=FEATURE_LAYER,
        feature_extractor_weights_path=str(weights_path), cuda=dev.type == "cuda", batch_size=batch_size,
        save_cpu_ram=True, verbose=verbose, cache=cache,
    )
    if kid:
        kwargs["kid_subset_size"] = min(1000, max(2, min(n_real, n_gen) // 2))
    if cache:
        def name(handle):
            content = _folder_digest(handle) if isinstance(handle, Path) else handle.digest()
            return f"world-{content[:20]}-w{wdigest[:12]}"

        kwargs.update(input1_cache_name=name(h_gen), input2_cache_name=name(h_real))
        if cache_root is not None:
            kwargs["cache_root"] = str(cache_root)
    cuda_ctx = torch.cuda.device(dev) if dev.type == "cuda" and dev.index is not None else nullcontext()
    blas_ctx = threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads else nullcontext()
    with cuda_ctx, blas_ctx:
        metrics = torch_fidelity.calculate_metrics(**kwargs)
    out = {
        "fid": float(metrics[torch_fidelity.KEY_METRIC_FID]),
        "n_real": n_real,
        "n_generated": n_gen,
        "feature_extractor": EXTRACTOR_NAME,
        "feature_dim": int(json.loads(config_path_for(weights_path).read_text())["feat_dim"]),
        "weights_sha256": wdigest,
    }
    if kid:
        out["kid_mean"] = float(metrics[torch_fidelity.KEY_METRIC_KID_MEAN])
        out["kid_std"] = float(metrics[torch_fidelity.KEY_METRIC_KID_STD])
    return out


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


def render_training_set(n: int, seed: int, frac_128: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` random scenes as (uint8 [n, 3, 64, 64], multi-hot [n, M], classes [n, S]).

    A fraction ``frac_128`` is rendered at 128 px and brought to 64 by the extractor's own
    resize (then re-quantised), so the features also fit images generated at 128 px.
    """
    rng = random.Random(seed)
    images = torch.empty(n, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)
    multi = np.empty((n, HEADS["noise"][1]), np.float32)
    single = np.empty((n, len(SINGLE_LABEL)), np.int64)
    for i in range(n):
        scene = sample_scene_retry(rng)
        big = rng.random() < frac_128
        image = pil_to_uint8(render(scene, 2 * INPUT_SIZE if big else INPUT_SIZE, seed=rng.randrange(2**31)))
        if big:
            image = ((preprocess(image[None]) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)[0]
        images[i] = image
        multi[i], single[i] = scene_targets(scene)
    return images, torch.from_numpy(multi), torch.from_numpy(single)


_GRID_HFLIP = [HEADS["grid"][0] + r * 3 + (2 - c) for r in range(3) for c in range(3)]


def hflip_batch(images: torch.Tensor, multi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror left↔right. Every shape is left-right symmetric, so only the grid columns change."""
    multi = multi.clone()
    a, b = HEADS["grid"]
    multi[:, a:b] = multi[:, _GRID_HFLIP]
    return images.flip(-1), multi


def _loss(logits: torch.Tensor, multi: torch.Tensor, single: torch.Tensor) -> torch.Tensor:
    losses = []
    for group in MULTI_LABEL:
        a, b = HEADS[group]
        # summed over a group's labels (mean over the batch): with a mean, the rare positives of
        # the 48 shape×colour labels get almost no gradient
        losses.append(F.binary_cross_entropy_with_logits(logits[:, a:b], multi[:, a:b], reduction="sum") / len(logits))
    for j, group in enumerate(SINGLE_LABEL):
        a, b = HEADS[group]
        losses.append(F.cross_entropy(logits[:, a:b], single[:, j]))
    return torch.stack(losses).sum()


@torch.no_grad()
def attribute_accuracy(model: WorldCNN, images: torch.Tensor, multi: torch.Tensor, single: torch.Tensor,
                       batch_size: int = 256) -> dict[str, float]:
    """Per group: exact-set accuracy for multi-label groups, top-1 accuracy for single-label ones."""
    model.eval()
    logits = torch.cat([model(preprocess(images[i : i + batch_size]))[1] for i in range(0, len(images), batch_size)])
    out = {}
    for group in MULTI_LABEL:
        a, b = HEADS[group]
        out[group] = float(((logits[:, a:b] > 0).float() == multi[:, a:b]).all(dim=1).float().mean())
    for j, group in enumerate(SINGLE_LABEL):
        a, b = HEADS[group]
        out[group] = float((logits[:, a:b].argmax(dim=1) == single[:, j]).float().mean())
    return out


def train_feature_extractor(out_path: str | Path = DEFAULT_WEIGHTS, n_images: int = 10000, steps: int = 2500,
                            seed: int = 0, batch_size: int = 64, lr: float = 3e-3, n_heldout: int = 1000,
                            channels: Sequence[int] = (32, 64, 96, 128), feat_dim: int = 128,
                            frac_128: float = 0.05, threads: int | None = 1, log_every: int = 250,
                            verbose: bool = True) -> dict:
    """Render ``n_images`` scenes, train ``WorldCNN`` for ``steps`` AdamW steps on CPU, save it.

    Random left-right mirroring (grid labels remapped) augments the set. ``threads`` sets
    torch's intra-op threads for the run (1 is fastest on a shared 2-core machine; None keeps the
    current setting). The weights are stored as float16 (the file stays < 1 MB) and the held-out
    accuracy is measured after that rounding, i.e. for exactly what is saved.

    Writes ``out_path`` (safetensors) and its json config beside it; returns the config, whose
    "training" entry records the seed, sizes, wall times and held-out accuracy (on ``n_heldout``
    64 px scenes from an independent random stream).
    """
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t0 = time.time()
        torch.manual_seed(seed)
        images, multi, single = render_training_set(n_images, seed, frac_128)
        held = render_training_set(n_heldout, seed + 7_919_000_003, frac_128=0.0)
        t_render = time.time() - t0
        if verbose:
            print(f"rendered {n_images}+{n_heldout} images in {t_render:.0f}s", flush=True)

        model = WorldCNN(channels, feat_dim, convs=[1] * len(channels))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        warmup = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        gen = torch.Generator().manual_seed(seed)
        perm, pos = torch.randperm(n_images, generator=gen), 0
        t1 = time.time()
        model.train()
        for step in range(steps):
            if pos + batch_size > n_images:
                perm, pos = torch.randperm(n_images, generator=gen), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            x, y = images[idx], multi[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x[flip], y[flip] = hflip_batch(x[flip], y[flip])
            _, logits = model(preprocess(x))
            loss = _loss(logits, y, single[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if verbose and (step % log_every == 0 or step == steps - 1):
                print(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - t1:.0f}s", flush=True)
        t_train = time.time() - t1

        model.eval()
        with torch.no_grad():
            raw = torch.cat([model(preprocess(images[i : i + 500]))[0] for i in range(0, n_images, 500)]).double()
        model.feat_center.copy_(raw.mean(dim=0).float())
        model.feat_scale.fill_(float(raw.var(dim=0).mean().rsqrt()))
        state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
                 for k, v in model.state_dict().items()}
        model.load_state_dict(state)  # evaluate exactly the float16-rounded weights that are saved
        acc = attribute_accuracy(model, *held)
        train_acc = attribute_accuracy(model, images[:n_heldout], multi[:n_heldout], single[:n_heldout])
    finally:
        torch.set_num_threads(old_threads)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_path), metadata={"arch": ARCH})
    config = {
        "arch": ARCH,
        "input_size": INPUT_SIZE,
        "input": "uint8 RGB [B,3,H,W]; resized to 64x64 (bilinear, antialias) then x/127.5-1",
        "stem": model.stem,
        "channels": list(channels),
        "convs": [1] * len(channels),
        "feat_dim": feat_dim,
        "num_logits": NUM_LOGITS,
        "feature_layers": [FEATURE_LAYER, LOGITS_LAYER],
        "heads": {g: [*HEADS[g], list(names)] for g, names in (*MULTI_LABEL.items(), *SINGLE_LABEL.items())},
        "training": {
            "command": "python -m bench.world.fid train",
            "seed": seed, "n_images": n_images, "steps": steps, "batch_size": batch_size, "lr": lr,
            "frac_128": frac_128, "n_heldout": n_heldout, "threads": threads, "torch": torch.__version__,
            "render_s": round(t_render, 1), "train_s": round(t_train, 1), "wall_s": round(time.time() - t0, 1),
            "heldout_accuracy": {k: round(v, 4) for k, v in acc.items()},
            "train_accuracy": {k: round(v, 4) for k, v in train_acc.items()},
            "accuracy_metric": "multi-label groups: whole label set exactly right; background/count: top-1",
        },
    }
    config_path_for(out_path).write_text(json.dumps(config, indent=1) + "\n")
    if verbose:
        print(json.dumps(config["training"], indent=1))
    return config


def _main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.world.fid", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the world-cnn feature extractor")
    t.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    t.add_argument("--n-images", type=int, default=10000)
    t.add_argument("--steps", type=int, default=2500)
    t.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("fid", help="world-FID between two image folders")
    f.add_argument("real")
    f.add_argument("generated")
    f.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.cmd == "train":
        train_feature_extractor(args.out, n_images=args.n_images, steps=args.steps, seed=args.seed)
    else:
        print(json.dumps(world_fid(args.real, args.generated, device=args.device), indent=1))


if __name__ == "__main__":
    _main()
