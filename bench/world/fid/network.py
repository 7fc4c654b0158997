"""``WorldCNN``, the world-FID feature network, with its input conventions and loading.

- input: uint8 RGB of any size → 64×64 (bilinear, antialiased, in float) → x/127.5 − 1
  (``preprocess``);
- a lossless 2×2 space-to-depth stem (12 channels at 32×32, so 2-px stripes survive), four conv
  blocks (3×3 conv, BatchNorm, ReLU; 32-64-96-128 channels; 2×2 max pool between blocks);
- 2×2 average cells + global max (640) → linear → the 128-d feature "feat" (the FID layer),
  centred and scaled by fixed constants taken from the training images so the mean
  per-dimension variance of real images is 1 (FID is in those units; KID's kernel sees O(1)
  values);
- attribute heads (GELU → linear) on the unscaled feature, laid out by ``labels.HEADS``.

281k parameters, stored as float16: 0.57 MB. The bundled weights are ``DEFAULT_WEIGHTS`` with
their json config beside them (``config_path_for``); ``load_world_cnn`` reads local files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from bench.errors import BenchError
from bench.world.fid.labels import NUM_LOGITS
from pixart.errors import read_json, read_safetensors
from pixart.files import sha256_files

FEATURE_LAYER = "feat"
LOGITS_LAYER = "attr_logits"
INPUT_SIZE = 64
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
DEFAULT_WEIGHTS = REFERENCE_DIR / "feature_extractor.safetensors"
ARCH = "world-cnn-v1"


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


CONFIG_KEYS = ("channels", "feat_dim", "num_logits", "stem", "convs")
REBUILD = "rebuild it with `pixart-bench world train-extractor`"


def load_world_cnn(weights_path: str | Path | None = None) -> tuple[WorldCNN, dict]:
    """The trained network (eval mode, on CPU) and its json config, from local files only. A missing,
    damaged or mismatched weights file or config is a ``BenchError`` naming the file."""
    weights_path = Path(weights_path or DEFAULT_WEIGHTS)
    config_path = config_path_for(weights_path)
    state = read_safetensors(weights_path, BenchError, "feature-extractor weights")
    config = read_json(config_path, BenchError, "feature-extractor config")
    if config.get("arch") != ARCH:
        raise BenchError(f"feature-extractor config {config_path}: arch {config.get('arch')!r}, expected {ARCH!r}; "
                         f"{REBUILD}")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise BenchError(f"feature-extractor config {config_path} lacks {', '.join(missing)}; {REBUILD}")
    model = WorldCNN(config["channels"], config["feat_dim"], config["num_logits"], config["stem"], config["convs"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # keys or shapes that do not fit the config: torch lists them after a title line
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise BenchError(f"feature-extractor weights {weights_path} do not fit its config {config_path} "
                         f"({lines[-1][:200]}); {REBUILD}") from None
    return model.eval(), config


def weights_digest(weights_path: str | Path | None = None) -> str:
    return sha256_files([weights_path or DEFAULT_WEIGHTS])
