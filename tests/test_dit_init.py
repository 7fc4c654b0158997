"""DiT → PixArt initialisation with the adaLN-single re-parameterisation."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import randomize_, text_inputs
from diffusers import DiTTransformer2DModel

from pixart.checkpoints import CheckpointError
from pixart.dit_init import pixart_from_dit

NUM_CLASSES = 10
TIME_PATH = lambda name: name.endswith("scale_shift_table")  # noqa: E731 - the only tensors t* changes


@pytest.fixture(scope="module")
def dit_folder(tmp_path_factory):
    torch.manual_seed(0)
    dit = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=3, sample_size=8,
        patch_size=2, num_embeds_ada_norm=NUM_CLASSES, norm_eps=1e-6,
    )
    randomize_(dit, seed=2).eval()
    folder = tmp_path_factory.mktemp("dit")
    dit.save_pretrained(folder)
    return folder, dit


def _null(batch):
    return torch.full((batch,), NUM_CLASSES, dtype=torch.long)


def test_equals_dit_null_class_at_t_star(dit_folder):
    folder, dit = dit_folder
    model = pixart_from_dit(folder, caption_channels=16, model_max_length=6).eval()
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    y, mask = text_inputs(2, 6, 16)  # any text: cross-attention output is zero-initialised
    t = torch.tensor([500, 500])
    with torch.no_grad():
        ours = model(x, t, y, mask)
        theirs = dit(x, t, class_labels=_null(2)).sample
    assert theirs.abs().mean() > 0.1
    assert (ours - theirs).abs().max() <= 1e-5


def test_other_timesteps_differ_only_through_the_time_path(dit_folder):
    folder, dit = dit_folder
    at_500 = pixart_from_dit(folder, caption_channels=16, model_max_length=6).eval()
    at_200 = pixart_from_dit(folder, caption_channels=16, model_max_length=6, t_star=200).eval()
    x = torch.randn(1, 4, 8, 8)
    y, mask = text_inputs(1, 6, 16)
    t = torch.tensor([200])
    with torch.no_grad():
        theirs = dit(x, t, class_labels=_null(1)).sample
        assert (at_500(x, t, y, mask) - theirs).abs().max() > 1e-3  # re-parameterised at 500, not 200
        assert (at_200(x, t, y, mask) - theirs).abs().max() <= 1e-5
    a, b = at_500.state_dict(), at_200.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(TIME_PATH(k) for k in changed), changed


def test_shared_layers_are_copied_and_cross_attention_starts_at_zero(dit_folder):
    """Every layer both models have (patch embed; each block's fused qkv, attention output, MLP;
    final linear: weights and biases) is DiT's; the cross-attention output starts at zero."""
    folder, dit = dit_folder
    model = pixart_from_dit(folder, caption_channels=16, model_max_length=6)
    ours = model.state_dict()
    shared = {k: v for k, v in _official_dit_state_dict(dit).items()
              if not k.startswith(("pos_embed", "t_embedder.", "y_embedder.")) and "adaLN_modulation" not in k}
    assert len(shared) == 2 + 3 * 8 + 2  # x_embedder, 3 blocks × (qkv, proj, fc1, fc2), final linear
    for key, value in shared.items():
        assert torch.equal(ours[key], value), key
    assert model.config.lewei_scale == 1.0 and model.config.num_heads == 2
    for block in model.blocks:
        assert block.cross_attn.proj.weight.abs().sum() == 0 and block.cross_attn.proj.bias.abs().sum() == 0


def _official_dit_state_dict(dit) -> dict:
    """The facebookresearch/DiT layout of a diffusers DiT whose blocks share block 0's embedders."""
    blocks = dit.transformer_blocks
    emb = blocks[0].norm1.emb
    sd = {"pos_embed": dit.pos_embed.pos_embed.clone(),
          "x_embedder.proj.weight": dit.pos_embed.proj.weight, "x_embedder.proj.bias": dit.pos_embed.proj.bias,
          "t_embedder.mlp.0.weight": emb.timestep_embedder.linear_1.weight, "t_embedder.mlp.0.bias": emb.timestep_embedder.linear_1.bias,
          "t_embedder.mlp.2.weight": emb.timestep_embedder.linear_2.weight, "t_embedder.mlp.2.bias": emb.timestep_embedder.linear_2.bias,
          "y_embedder.embedding_table.weight": emb.class_embedder.embedding_table.weight,
          "final_layer.linear.weight": dit.proj_out_2.weight, "final_layer.linear.bias": dit.proj_out_2.bias,
          "final_layer.adaLN_modulation.1.weight": dit.proj_out_1.weight, "final_layer.adaLN_modulation.1.bias": dit.proj_out_1.bias}
    for i, b in enumerate(blocks):
        for p in ("weight", "bias"):
            sd[f"blocks.{i}.attn.qkv.{p}"] = torch.cat([getattr(b.attn1.to_q, p), getattr(b.attn1.to_k, p), getattr(b.attn1.to_v, p)])
            sd[f"blocks.{i}.attn.proj.{p}"] = getattr(b.attn1.to_out[0], p)
            sd[f"blocks.{i}.mlp.fc1.{p}"] = getattr(b.ff.net[0].proj, p)
            sd[f"blocks.{i}.mlp.fc2.{p}"] = getattr(b.ff.net[2], p)
            sd[f"blocks.{i}.adaLN_modulation.1.{p}"] = getattr(b.norm1.linear, p)
    return {k: v.detach().clone() for k, v in sd.items()}


def _official_dit_condition(sd, t: float) -> torch.Tensor:
    """facebookresearch/DiT: c = t_embedder(t) + y_embedder(null), with its [cos, sin] sinusoid."""
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = torch.tensor([t], dtype=torch.float64)[:, None] * freqs[None]
    e = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    h = F.linear(e, sd["t_embedder.mlp.0.weight"].double(), sd["t_embedder.mlp.0.bias"].double())
    h = F.linear(F.silu(h), sd["t_embedder.mlp.2.weight"].double(), sd["t_embedder.mlp.2.bias"].double())
    return h + sd["y_embedder.embedding_table.weight"][-1].double()


def test_official_dit_pt(dit_folder, tmp_path):
    """A facebookresearch/DiT .pt: its config is read off the tensors; PixArt's time embedding is DiT's
    null-class conditioning at every t, and the block and final modulations are DiT's at t* (block 0 at every t)."""
    _, dit = dit_folder
    sd = _official_dit_state_dict(dit)
    torch.save(sd, tmp_path / "DiT-tiny.pt")
    model = pixart_from_dit(tmp_path / "DiT-tiny.pt", caption_channels=16, model_max_length=6, num_heads=2).double()
    assert model.config.input_size == 8 and model.config.depth == 3 and model.config.pred_sigma
    for t in (500.0, 123.0):
        c = _official_dit_condition(sd, t)
        ts = torch.tensor([t], dtype=torch.float64)
        with torch.no_grad():
            t_emb = model.t_embedder(ts)
            assert torch.allclose(t_emb, c, atol=1e-5)  # null class folded into the time embedding
            t0 = model.t_block(t_emb)
            for i in range(3):
                want = F.linear(F.silu(c), sd[f"blocks.{i}.adaLN_modulation.1.weight"].double(),
                                sd[f"blocks.{i}.adaLN_modulation.1.bias"].double()).view(1, 6, -1)
                got = model.blocks[i].modulation(t0)
                if t == 500.0 or i == 0:  # block 0 is exact at every t: t_block is its adaLN MLP
                    assert torch.allclose(got, want, atol=1e-5), (t, i)
                else:
                    assert (got - want).abs().max() > 1e-4
            final = model.final_layer.scale_shift_table[None] + t_emb[:, None]
            want_f = F.linear(F.silu(c), sd["final_layer.adaLN_modulation.1.weight"].double(),
                              sd["final_layer.adaLN_modulation.1.bias"].double()).view(1, 2, -1)
            assert torch.allclose(final, want_f, atol=1e-5) == (t == 500.0)


def test_not_a_dit_is_refused(tmp_path):
    torch.save({"state_dict": {"x": torch.zeros(1)}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a DiT checkpoint"):
        pixart_from_dit(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not found"):
        pixart_from_dit(tmp_path / "missing.pt")
