"""Loading, saving and converting checkpoints: bit-exact round trips and clear errors."""

import json

import pytest
import torch
from conftest import tiny_model
from safetensors.torch import save_file

from pixart.checkpoints import (
    CheckpointError,
    convert,
    detect_format,
    diffusers_to_official,
    infer_config,
    load_transformer,
    official_to_diffusers,
    save_transformer,
)
from pixart.model import PixArt, PixArtConfig


def _assert_same_state(a: dict, b: dict):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


def _official_sd(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("preset", ["tiny", "tiny-MS"])
def test_official_to_diffusers_to_official_is_bit_exact(tmp_path, preset):
    model = tiny_model(preset)
    save_transformer(model, tmp_path / "a.pth", "official")
    convert(tmp_path / "a.pth", tmp_path / "dif", "diffusers", config=model.config)
    convert(tmp_path / "dif", tmp_path / "b.pth", "official")
    a, b = _official_sd(tmp_path / "a.pth"), _official_sd(tmp_path / "b.pth")
    assert "y_embedder.y_embedding" in a and "pos_embed" in a
    _assert_same_state(a, b)


@pytest.mark.parametrize("adaln", ["single", "block"])
def test_native_official_round_trip_is_bit_exact(tmp_path, adaln):
    model = tiny_model(adaln=adaln)
    save_transformer(model, tmp_path / "native", "native")
    assert detect_format(tmp_path / "native") == "native"
    convert(tmp_path / "native", tmp_path / "m.pth", "official")
    convert(tmp_path / "m.pth", tmp_path / "native2", "native", config=model.config)
    _assert_same_state(model.state_dict(), _official_sd(tmp_path / "m.pth"))
    _assert_same_state(model.state_dict(), load_transformer(tmp_path / "native2").state_dict())
    assert load_transformer(tmp_path / "native2").config == model.config


def test_key_map_split_and_fuse_are_inverse():
    model = tiny_model("tiny-MS")
    sd = model.state_dict()
    dsd = official_to_diffusers(sd, model.config)
    assert dsd["transformer_blocks.1.attn1.to_k.weight"].shape == (48, 48)
    assert torch.equal(dsd["transformer_blocks.1.attn2.to_v.bias"], sd["blocks.1.cross_attn.kv_linear.bias"][48:])
    back = diffusers_to_official(dsd, model.config)
    _assert_same_state({k: v for k, v in sd.items() if k not in ("pos_embed", "y_embedder.y_embedding")}, back)


def test_half_precision_is_kept(tmp_path):
    model = tiny_model().half()
    save_transformer(model, tmp_path / "h.pth", "official")
    convert(tmp_path / "h.pth", tmp_path / "dif", "diffusers", config=model.config)
    loaded = load_transformer(tmp_path / "dif")
    assert loaded.x_embedder.proj.weight.dtype == torch.float16
    _assert_same_state(model.state_dict(), loaded.state_dict())


def test_official_config_is_inferred(tmp_path):
    # head_dim 72 like every release; tiny otherwise
    config = PixArtConfig(input_size=8, hidden_size=144, depth=2, num_heads=2, caption_channels=16,
                          model_max_length=6, lewei_scale=2.0, micro_conditions=True)
    torch.manual_seed(0)
    save_transformer(PixArt(config), tmp_path / "x.pth", "official")
    assert infer_config(_official_sd(tmp_path / "x.pth")) == config
    assert load_transformer(tmp_path / "x.pth").config == config


def test_official_safetensors_file_loads(tmp_path):
    model = tiny_model()
    save_file(dict(model.state_dict()), tmp_path / "x.safetensors")
    _assert_same_state(model.state_dict(), load_transformer(tmp_path / "x.safetensors", "tiny").state_dict())


def test_pos_embed_scale_mismatch_is_named(tmp_path):
    model = tiny_model(lewei_scale=2.0)
    save_transformer(model, tmp_path / "x.pth", "official")
    with pytest.raises(CheckpointError, match=r"lewei_scale=2\.0.*config says lewei_scale=1\.0"):
        load_transformer(tmp_path / "x.pth", "tiny")
    assert load_transformer(tmp_path / "x.pth", PixArtConfig.preset("tiny", lewei_scale=2.0)).config.lewei_scale == 2.0


def test_missing_and_mismatched_keys_are_listed(tmp_path):
    sd = dict(tiny_model().state_dict())
    del sd["blocks.1.mlp.fc2.bias"]
    sd["blocks.0.attn.qkv.weight"] = torch.zeros(10, 48)
    sd["blocks.0.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        load_transformer(tmp_path / "bad.pth", "tiny")
    msg = str(err.value)
    assert "1 missing keys: blocks.1.mlp.fc2.bias" in msg
    assert "1 unexpected keys: blocks.0.extra.weight" in msg
    assert "blocks.0.attn.qkv.weight: checkpoint [10, 48] vs model [144, 48]" in msg


def test_wrong_depth_config_is_refused(tmp_path):
    save_transformer(tiny_model(), tmp_path / "x.pth", "official")
    with pytest.raises(CheckpointError, match="unexpected keys: blocks.1"):
        load_transformer(tmp_path / "x.pth", PixArtConfig.preset("tiny", depth=1))


def test_dit_checkpoint_gets_a_hint(tmp_path):
    sd = {"x_embedder.proj.weight": torch.zeros(48, 4, 2, 2), "y_embedder.embedding_table.weight": torch.zeros(11, 48),
          "blocks.0.adaLN_modulation.1.weight": torch.zeros(288, 48)}
    torch.save(sd, tmp_path / "dit.pt")
    with pytest.raises(CheckpointError, match="--from dit"):
        load_transformer(tmp_path / "dit.pt")


def test_missing_files_say_where_they_looked(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_transformer(tmp_path / "nope.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="looked for config.json and transformer/config.json"):
        load_transformer(tmp_path / "empty")
    save_transformer(tiny_model(), tmp_path / "dif", "diffusers")
    (tmp_path / "dif" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no diffusers weights in .*dif: looked for diffusion_pytorch_model.safetensors"):
        load_transformer(tmp_path / "dif")
    save_transformer(tiny_model(), tmp_path / "nat", "native")
    (tmp_path / "nat" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"weights file missing: looked for .*nat/model.safetensors"):
        load_transformer(tmp_path / "nat")


def test_unsupported_diffusers_config_is_refused(tmp_path):
    save_transformer(tiny_model(), tmp_path / "dif", "diffusers")
    cfg = json.loads((tmp_path / "dif" / "config.json").read_text())
    cfg["norm_type"] = "ada_norm_zero"
    (tmp_path / "dif" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="norm_type='ada_norm_zero'"):
        load_transformer(tmp_path / "dif")


def test_folder_config_conflict_is_refused(tmp_path):
    save_transformer(tiny_model(), tmp_path / "nat", "native")
    with pytest.raises(CheckpointError, match="not the requested"):
        load_transformer(tmp_path / "nat", PixArtConfig.preset("tiny", depth=3))


def test_null_caption_absent_from_diffusers_is_explicit(tmp_path):
    save_transformer(tiny_model(), tmp_path / "dif", "diffusers")
    (tmp_path / "dif" / "pixart_buffers.safetensors").unlink()  # as a folder written by diffusers
    model = load_transformer(tmp_path / "dif")
    assert not model.has_null_caption
    with pytest.raises(ValueError, match="no trained null caption"):
        model.null_caption(1)
    save_transformer(model, tmp_path / "o.pth", "official")
    assert "y_embedder.y_embedding" not in _official_sd(tmp_path / "o.pth")
    assert not load_transformer(tmp_path / "o.pth", "tiny").has_null_caption


def test_block_variant_cannot_become_diffusers(tmp_path):
    with pytest.raises(CheckpointError, match="no diffusers equivalent"):
        save_transformer(tiny_model(adaln="block"), tmp_path / "dif", "diffusers")


def test_load_to_device_and_dtype(tmp_path):
    save_transformer(tiny_model(), tmp_path / "nat", "native")
    model = load_transformer(tmp_path / "nat", device="cpu", dtype=torch.bfloat16)
    assert model.x_embedder.proj.weight.dtype == torch.bfloat16


def test_block_variant_mismatch_is_not_called_dit(tmp_path):
    save_transformer(tiny_model(adaln="block"), tmp_path / "b.pth", "official")
    with pytest.raises(CheckpointError) as err:
        load_transformer(tmp_path / "b.pth", "tiny")  # adaln="single" config
    assert "missing keys: t_block.1.weight" in str(err.value) and "--from dit" not in str(err.value)
