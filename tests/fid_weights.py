"""Random-weight feature extractors of torch-fidelity's real architectures, saved the way their real weights
are distributed, for FID tests that download nothing.

- ``random_inception(path)``: torch-fidelity's ``FeatureExtractorInceptionV3`` built with its weight
  loading patched out (in this helper only), its convolutions drawn with He initialisation (PyTorch's
  default shrinks activations about 6x per layer, so pool3 features of a deep random net would vanish),
  saved as a state dict with ``torch.save``: the code under test loads it through torch-fidelity's own
  ``feature_extractor_weights_path`` path.
- ``random_clip(path)``: a tiny ViT of torch-fidelity's CLIP ``VisionTransformer`` (64 px, patch 32,
  width 64, 32-d output) with a ``text_projection``, traced and saved as TorchScript, as OpenAI's CLIP
  files are; torch-fidelity's ``build_model`` reads its sizes from the state dict.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from unittest import mock

import torch


def random_inception(path: Path, seed: int = 0) -> Path:
    import torch_fidelity.feature_extractor_inceptionv3 as fi

    torch.manual_seed(seed)
    with mock.patch.object(fi, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(fi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        net = fi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


class _TinyClip(torch.nn.Module):
    def __init__(self):
        from torch_fidelity.feature_extractor_clip import VisionTransformer

        super().__init__()
        self.visual = VisionTransformer(input_resolution=64, patch_size=32, width=64, layers=1, heads=1, output_dim=32)
        self.text_projection = torch.nn.Parameter(torch.randn(64, 32) / 8)

    def forward(self, x):
        return self.visual(x)


def random_clip(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = _TinyClip().eval()
    with torch.no_grad():
        for p in net.parameters():  # CLIP's zero-initialised parts would make every feature equal
            p.add_(torch.randn_like(p) * 0.05)
    with warnings.catch_warnings():  # torch deprecates TorchScript; OpenAI's CLIP files are TorchScript all the same
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, torch.randn(1, 3, 64, 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path
