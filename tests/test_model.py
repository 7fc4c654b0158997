"""The transformer itself: shapes, masks, precisions, micro-conditions, checkpointing, config."""

from pathlib import Path

import pytest
import torch
from conftest import text_inputs, tiny_model

from pixart.model import PixArt, PixArtConfig, get_2d_sincos_pos_embed


@pytest.mark.parametrize("adaln", ["single", "block"])
@pytest.mark.parametrize("hw", [(8, 8), (8, 12), (12, 6)])
def test_output_shape(adaln, hw):
    model = tiny_model(adaln=adaln)
    x = torch.randn(2, 4, *hw)
    y, mask = text_inputs(2, 5, 16)
    out = model(x, torch.tensor([3, 700]), y, mask)
    assert out.shape == (2, 8, *hw)
    assert torch.isfinite(out).all()


def test_block_variant_has_no_adaln_single_parts():
    names = dict(tiny_model(adaln="block").named_parameters())
    assert not any(n.startswith("t_block") or n.endswith("scale_shift_table") and n.startswith("blocks") for n in names)
    assert "blocks.0.adaLN_modulation.1.weight" in names
    single = dict(tiny_model().named_parameters())
    assert "t_block.1.weight" in single and "blocks.1.scale_shift_table" in single


def test_padding_tokens_are_ignored(tiny):
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 900])
    y, mask = text_inputs(2, 6, 16)  # sample 1 has 4 real tokens, 2 padding
    out = tiny(x, t, y, mask)
    y_pad = y.clone()
    y_pad[1, 4:] = 100.0 * torch.randn(2, 16)  # change only padding
    assert torch.allclose(tiny(x, t, y_pad, mask), out, atol=1e-6)
    y_real = y.clone()
    y_real[1, 0] += 1.0  # change a real token
    assert (tiny(x, t, y_real, mask)[1] - out[1]).abs().max() > 1e-4


def test_all_padding_caption_attends_to_everything(tiny):
    x = torch.randn(1, 4, 8, 8)
    y, _ = text_inputs(1, 5, 16)
    t = torch.tensor([500])
    zero_mask = torch.zeros(1, 5, dtype=torch.long)
    out = tiny(x, t, y, zero_mask)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, tiny(x, t, y, None), atol=1e-6)


def test_batch_items_are_independent(tiny):
    x = torch.randn(3, 4, 8, 8)
    t = torch.tensor([1, 400, 999])
    y, mask = text_inputs(3, 6, 16)
    batched = tiny(x, t, y, mask)
    for i in range(3):
        single = tiny(x[i : i + 1], t[i : i + 1], y[i : i + 1], mask[i : i + 1])
        assert torch.allclose(batched[i : i + 1], single, atol=1e-5)


def test_timestep_changes_output(tiny):
    x = torch.randn(1, 4, 8, 8)
    y, mask = text_inputs(1, 5, 16)
    assert (tiny(x, torch.tensor([10]), y, mask) - tiny(x, torch.tensor([900]), y, mask)).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precisions_track_fp32(tiny, dtype):
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([100, 600])
    y, mask = text_inputs(2, 5, 16)
    ref = tiny(x, t, y, mask)
    for fp32_attention in (False, True):
        half = tiny_model(fp32_attention=fp32_attention).to(dtype)
        out = half(x.to(dtype), t, y.to(dtype), mask)
        assert out.dtype == dtype
        assert torch.isfinite(out).all()
        rel = (out.float() - ref).norm() / ref.norm()
        assert rel < 0.05, f"{dtype} fp32_attention={fp32_attention}: relative error {rel:.3f}"


def test_gradient_checkpointing_same_values_and_grads():
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([5, 50])
    y, mask = text_inputs(2, 5, 16)
    grads = []
    for ckpt in (False, True):
        model = tiny_model().train().enable_gradient_checkpointing(ckpt)
        out = model(x, t, y, mask)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    for a, b in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(a, b, atol=1e-6)


def test_micro_conditions_required_and_used():
    model = tiny_model("tiny-MS")
    x = torch.randn(1, 4, 8, 8)
    y, mask = text_inputs(1, 5, 16)
    t = torch.tensor([500])
    with pytest.raises(ValueError, match="resolution"):
        model(x, t, y, mask)
    a = model(x, t, y, mask, resolution=torch.tensor([[64.0, 64.0]]), aspect_ratio=torch.tensor([1.0]))
    b = model(x, t, y, mask, resolution=torch.tensor([[64.0, 96.0]]), aspect_ratio=torch.tensor([0.67]))
    assert (a - b).abs().max() > 1e-4


def test_bad_inputs_are_named(tiny):
    with pytest.raises(ValueError, match="caption_channels|16"):
        tiny(torch.randn(1, 4, 8, 8), torch.tensor([1]), torch.randn(1, 5, 15))
    with pytest.raises(ValueError, match="patch_size"):
        tiny(torch.randn(1, 4, 7, 8), torch.tensor([1]), torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="mask"):
        tiny(torch.randn(1, 4, 8, 8), torch.tensor([1]), torch.randn(1, 5, 16), torch.ones(1, 4))


def test_official_initialisation():
    model = PixArt(PixArtConfig.preset("tiny"))
    for block in model.blocks:
        assert block.cross_attn.proj.weight.abs().sum() == 0 and block.cross_attn.proj.bias.abs().sum() == 0
    assert model.final_layer.linear.weight.abs().sum() == 0
    assert not any(n.endswith("y_embedding") for n, _ in model.named_parameters()), "y_embedding is a buffer"
    assert "y_embedder.y_embedding" in model.state_dict() and "pos_embed" in model.state_dict()
    # zero final layer: a freshly initialised model predicts zeros
    y, mask = text_inputs(1, 5, 16)
    assert model(torch.randn(1, 4, 8, 8), torch.tensor([1]), y, mask).abs().max() == 0


@pytest.mark.parametrize("grid", [(4, 4), (4, 6), (8, 2)])
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_pos_embed_matches_diffusers(grid, scale):
    from diffusers.models.embeddings import get_2d_sincos_pos_embed as diffusers_pe

    ours = torch.from_numpy(get_2d_sincos_pos_embed(48, grid, base_size=4, lewei_scale=scale))
    theirs = diffusers_pe(48, grid, base_size=4, interpolation_scale=scale, output_type="pt")
    assert ours.shape == theirs.shape == (grid[0] * grid[1], 48)
    assert torch.allclose(ours, theirs.double(), atol=1e-6)


def test_config_round_trip_and_errors():
    config = PixArtConfig.preset("XL-2-1024-MS")
    assert PixArtConfig.from_dict(config.to_dict()) == config
    assert config.out_channels == 8 and config.head_dim == 72 and config.base_size == 64
    with pytest.raises(ValueError, match="unknown PixArtConfig fields"):
        PixArtConfig.from_dict({**config.to_dict(), "hiden_size": 3})
    with pytest.raises(KeyError, match="unknown preset"):
        PixArtConfig.preset("XL-3")
    with pytest.raises(ValueError, match="adaln"):
        PixArtConfig(adaln="zero")


def test_no_device_specific_calls_in_package():
    root = Path(__file__).resolve().parents[1]
    for path in list((root / "pixart").rglob("*.py")) + list((root / "bench").rglob("*.py")):
        text = path.read_text()
        assert ".cuda()" not in text and "import xformers" not in text, path


def test_trimming_text_padding_keeps_the_output(tiny):
    from pixart.model import trim_text_padding

    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 900])
    y, mask = text_inputs(2, 9, 16)
    mask[:, 6:] = 0  # the last 3 slots are padding everywhere
    yt, mt = trim_text_padding(y, mask)
    assert yt.shape == (2, 6, 16) and mt.shape == (2, 6)
    assert torch.allclose(tiny(x, t, yt, mt), tiny(x, t, y, mask), atol=1e-6)
    mask[1] = 0  # a caption without real tokens attends to all slots: no trimming
    assert trim_text_padding(y, mask)[0].shape == y.shape


@pytest.mark.parametrize("hw", [(8, 8), (8, 12)])
def test_residual_stream_is_row_major(tiny, hw):
    """Every block reads and writes [B, N, D] in row-major layout. The patch embedding's
    flatten + transpose alone gives a transposed view; elementwise ops keep their first operand's
    layout, so without a copy there the whole stream would stay strided (each residual add
    uncoalesced, each LayerNorm and linear input copied first: on a GPU, slower than diffusers)."""
    seen = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append((i[0].stride(), o.stride(), list(o.shape))))
             for b in tiny.blocks]
    y, mask = text_inputs(2, 9, 16)
    try:
        tiny(torch.randn(2, 4, *hw), torch.tensor([10, 900]), y, mask)
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == len(tiny.blocks)
    for stride_in, stride_out, (b, n, d) in seen:
        assert stride_in == stride_out == (n * d, d, 1), seen
