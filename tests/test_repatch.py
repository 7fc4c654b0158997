"""pixart.repatch: a larger patch draws the old model's output, upsampled, on the same token grid."""

import pytest
import torch
import torch.nn.functional as F

from pixart.model import PixArt, PixArtConfig
from pixart.repatch import repatch


def random_model(**kw) -> PixArt:
    torch.manual_seed(0)
    model = PixArt(PixArtConfig.preset("tiny", **kw))
    with torch.no_grad():  # the init zeroes the final layer and the cross-attention outputs
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


@pytest.mark.parametrize("kw, factor, input_size", [({}, 2, None), ({"input_size": 16, "lewei_scale": 2.0}, 2, 16),
                                                    ({"micro_conditions": True}, 3, None)])
def test_new_model_on_upsampled_latents_is_the_old_output_upsampled(kw, factor, input_size):
    old = random_model(**kw)
    new = repatch(old, factor, input_size)
    c = new.config
    assert c.patch_size == old.config.patch_size * factor
    assert c.input_size == (input_size or old.config.input_size * factor)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 12, generator=g)  # non-square, off the base grid
    y = torch.randn(2, 8, old.config.caption_channels, generator=g)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    t = torch.tensor([10, 700])
    extra = {}
    if old.config.micro_conditions:
        extra = {"resolution": torch.tensor([[64.0, 96.0]] * 2), "aspect_ratio": torch.tensor([64 / 96] * 2)}
    with torch.no_grad():
        want = F.interpolate(old(x, t, y, mask, **extra), scale_factor=factor, mode="nearest")
        got = new(F.interpolate(x, scale_factor=factor, mode="nearest"), t, y, mask, **extra)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # and not trivially: the old model's output varies inside the image
    assert want.std() > 0.1


def test_positions_and_weights_are_kept():
    old = random_model()
    new = repatch(old, 2)
    assert torch.allclose(new.pos_embed_for(4, 4, "cpu", torch.float32), old.pos_embed_for(4, 4, "cpu", torch.float32))
    for (k, a), (k2, b) in zip(old.state_dict().items(), new.state_dict().items()):
        assert k == k2
        if not k.startswith(("x_embedder.proj.weight", "final_layer.linear", "pos_embed")):
            assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="positive integer"):
        repatch(old, 1.5)


def test_repatched_model_exports_and_loads_in_diffusers(tmp_path):
    from diffusers import PixArtTransformer2DModel

    from pixart.checkpoints import load_transformer, save_transformer

    new = repatch(random_model(), 2)
    save_transformer(new, tmp_path / "t", fmt="diffusers")
    theirs = PixArtTransformer2DModel.from_pretrained(tmp_path / "t").eval()
    ours = load_transformer(tmp_path / "t")
    assert ours.config.patch_size == 4 and theirs.config.patch_size == 4
    x = torch.randn(1, 4, 16, 16)
    y = torch.randn(1, 8, new.config.caption_channels)
    with torch.no_grad():
        a = ours(x, torch.tensor([300]), y, torch.ones(1, 8, dtype=torch.long))
        b = theirs(x, encoder_hidden_states=y, timestep=torch.tensor([300]), encoder_attention_mask=torch.ones(1, 8),
                   added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
