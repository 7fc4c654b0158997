"""torch-fidelity integration: ``WorldFeatureExtractor``, registered as "world-cnn".

``WorldFeatureExtractor`` is a ``torch_fidelity.FeatureExtractorBase``. It follows
torch-fidelity's input convention (a ``torch.uint8`` batch [B, 3, H, W]) and returns a tuple of
float32 features in ``features_list`` order ("feat", "attr_logits"). Weights load from the
package's reference folder (or ``feature_extractor_weights_path=``); nothing touches the
network. ``register_world_extractor()`` registers it (idempotent): ``bench.fid`` knows the name
"world-cnn" but not the network, so whoever uses it registers it first (the command line, ``world_fid``,
``bench.fid.world``), and ``bench.fid`` finds the bundled weights as the class's ``default_weights``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from bench.world.fid.network import DEFAULT_WEIGHTS, FEATURE_LAYER, INPUT_SIZE, LOGITS_LAYER, load_world_cnn, preprocess

EXTRACTOR_NAME = "world-cnn"


class WorldFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity extractor "world-cnn": uint8 [B, 3, H, W] → (features in ``features_list`` order).

    Provided features: "feat" (128-d, the default for fid/kid/prc) and "attr_logits" (the
    attribute heads' logits). There is no class-probability layer, so ISC is not supported.
    Keyword arguments honoured: ``feature_extractor_weights_path`` (a .safetensors with its .json
    beside it) and ``feature_extractor_internal_dtype`` ("float32" default, or "float64").
    """

    default_weights = DEFAULT_WEIGHTS  # the bundled weights: bench.fid's default for "world-cnn"

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
