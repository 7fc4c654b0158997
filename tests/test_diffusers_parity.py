"""Output parity with diffusers' PixArtTransformer2DModel on the same random weights.

Our weights → our converter → diffusers.from_pretrained, and a model written by diffusers'
save_pretrained → our loader. fp32, max abs difference <= 1e-5.
"""

import pytest
import torch
from conftest import randomize_, text_inputs, tiny_model
from diffusers import PixArtTransformer2DModel

from pixart.checkpoints import load_transformer, save_transformer

TOL = 1e-5


def _compare(ours, theirs, x, t, y, mask, micro):
    kwargs = {}
    cond = {"resolution": None, "aspect_ratio": None}
    if micro:
        b = x.shape[0]
        kwargs = {"resolution": torch.tensor([[8.0 * x.shape[2], 8.0 * x.shape[3]]] * b),
                  "aspect_ratio": torch.full((b, 1), x.shape[2] / x.shape[3])}
        cond = kwargs
    with torch.no_grad():
        a = ours(x, t, y, mask, **kwargs)
        b = theirs(x, encoder_hidden_states=y, timestep=t, encoder_attention_mask=mask, added_cond_kwargs=cond).sample
    assert a.shape == b.shape
    assert a.abs().mean() > 0.05, "outputs must not be trivially zero"
    return (a - b).abs().max().item()


@pytest.mark.parametrize("preset", ["tiny", "tiny-MS"])
@pytest.mark.parametrize("hw", [(8, 8), (8, 12), (16, 8)])
def test_ours_exported_to_diffusers_matches(tmp_path, preset, hw):
    ours = tiny_model(preset, seed=3)
    save_transformer(ours, tmp_path / "dif", "diffusers")
    theirs = PixArtTransformer2DModel.from_pretrained(tmp_path / "dif").eval()
    x = torch.randn(3, 4, *hw, generator=torch.Generator().manual_seed(0))
    y, mask = text_inputs(3, 7, 16)  # 7, 5 and 3 real tokens
    t = torch.tensor([0, 499, 999])
    assert _compare(ours, theirs, x, t, y, mask, ours.config.micro_conditions) <= TOL


@pytest.mark.parametrize("micro", [False, True])
def test_diffusers_saved_model_loads_and_matches(tmp_path, micro):
    torch.manual_seed(0)
    theirs = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=24, in_channels=4, out_channels=8, num_layers=2,
        cross_attention_dim=48, sample_size=8, patch_size=2, caption_channels=16,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        use_additional_conditions=micro,  # interpolation_scale left to diffusers' default
    )
    randomize_(theirs, seed=5).eval()
    theirs.save_pretrained(tmp_path / "pipe" / "transformer")  # a pipeline folder's layout
    ours = load_transformer(tmp_path / "pipe").eval()
    assert ours.config.micro_conditions is micro
    assert ours.config.lewei_scale == 1.0  # diffusers' max(sample_size // 64, 1), made explicit
    assert not ours.has_null_caption  # diffusers stores no y_embedding
    x = torch.randn(2, 4, 8, 10)
    y, mask = text_inputs(2, 6, 16)
    assert _compare(ours, theirs, x, torch.tensor([17, 850]), y, mask, micro) <= TOL


def test_sharded_diffusers_folder_loads(tmp_path):
    theirs = randomize_(PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=24, num_layers=2, cross_attention_dim=48, sample_size=8,
        caption_channels=16, norm_type="ada_norm_single", norm_eps=1e-6, use_additional_conditions=False,
    ), seed=1).eval()
    theirs.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    ours = load_transformer(tmp_path / "sharded").eval()
    x = torch.randn(1, 4, 8, 8)
    y, mask = text_inputs(1, 4, 16)
    assert _compare(ours, theirs, x, torch.tensor([250]), y, mask, False) <= TOL
