"""``BlobNet``: one blob's mask and darkness [2, 32, 32] → shape logits (6 shapes + "none") and
texture logits (4), with loading of the bundled weights.

Four 3×3 conv blocks (BatchNorm, ReLU; 32-32-64-96 channels, 2×2 max pool after the second,
third and fourth) → 96 × 4 × 4 → linear 128 → the two heads. About 0.3 M parameters, stored
as float16 beside a json record of how they were trained (``judge.train``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from bench.errors import BenchError
from bench.world.scene import SHAPES, TEXTURES
from pixart.errors import read_json, read_safetensors

SHAPE_CLASSES = (*SHAPES, "none")  # "none": a blob that is no shape of the world (rectangle, egg, notch, merge)
TEXTURE_CLASSES = TEXTURES
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
DEFAULT_WEIGHTS = REFERENCE_DIR / "judge.safetensors"
ARCH = "blobnet-v1"


class BlobNet(nn.Module):
    def __init__(self, channels=(32, 32, 64, 96), hidden: int = 128):
        super().__init__()
        layers, c_in = [], 2
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            if i >= 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.trunk = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c_in * 4 * 4, hidden), nn.ReLU())
        self.shape_head = nn.Linear(hidden, len(SHAPE_CLASSES))
        self.texture_head = nn.Linear(hidden, len(TEXTURE_CLASSES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 2, 32, 32] → (shape logits [B, 7], texture logits [B, 4])."""
        h = self.fc(self.trunk(x))
        return self.shape_head(h), self.texture_head(h)


def config_path_for(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def load_blobnet(weights: str | Path = DEFAULT_WEIGHTS) -> tuple[BlobNet, dict]:
    """(the network in eval mode, float32, on the CPU; its json record). BenchError when missing."""
    weights = Path(weights)
    if not weights.is_file():
        raise BenchError(f"judge weights {weights} not found; rebuild them with "
                         "`python benchmarks/world_judge.py train`")
    record = read_json(config_path_for(weights), BenchError, "judge record")
    if record.get("arch") != ARCH:
        raise BenchError(f"{weights}: judge architecture {record.get('arch')!r}, this code reads {ARCH!r}")
    net = BlobNet(**record.get("network", {}))
    state = read_safetensors(weights, BenchError, "judge weights")
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.eval(), record
