"""The trainer: loss falls, checkpoints + EMA, exact resume, feature cache, stages, bad data, configs."""

import json
import os
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from pixart.data import DataError
from pixart.random_components import random_pipeline
from pixart.train import drop_mask, load_config, step_generator, train
from pixart.train_config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = "tiny_stage2"  # a preset shipped in pixart/configs/, loaded by name
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 30)}


def make_images(folder: Path, n: int = 16, sizes=((16, 16),), manifest: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    names = list(COLORS)
    for i in range(n):
        color = names[i % 4]
        h, w = sizes[i % len(sizes)]
        im = Image.new("RGB", (w, h), (128, 128, 128))
        box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4) if i % 2 else (0, 0, w // 2, h // 2)
        im.paste(COLORS[color], box)
        im.save(folder / f"img{i:03d}.png")
        caption = f"a {color} square {'in the middle' if i % 2 else 'in the corner'}"
        (folder / f"img{i:03d}.txt").write_text(caption + "\n")
        lines.append(json.dumps({"path": f"img{i:03d}.png", "caption": caption, "width": w, "height": h, "class": i % 4}))
    if manifest:
        (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    random_pipeline().save_pretrained(base / "comp")  # tiny T5 (width 16) + tokenizer + VAE (/2)
    make_images(base / "data", manifest=True)
    return base


def cfg_for(world: Path, out: Path, *extra):
    return load_config(TINY, [f"data.root={world / 'data'}", f"t5={world / 'comp'}", f"vae={world / 'comp'}",
                              f"output_dir={out}", *extra])


def losses(result):
    return [r["loss"] for r in result["history"]]


def test_loss_falls_and_checkpoints_appear(world, tmp_path):
    result = train(cfg_for(world, tmp_path / "run", "max_steps=40"), progress=False)
    ls = losses(result)
    assert len(ls) == 40 and all(map(lambda v: v == v, ls))
    assert sum(ls[-8:]) / 8 < 0.8 * sum(ls[:8]) / 8, ls
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step-0000020", "step-0000040"]
    last = tmp_path / "run" / "checkpoints" / "step-0000040"
    for f in ("model/model.safetensors", "model/config.json", "ema/model.safetensors", "training_state.pt", "train_config.yaml"):
        assert (last / f).is_file(), f
    from pixart.checkpoints import load_transformer

    model, ema = load_transformer(last / "model"), load_transformer(last / "ema")
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), ema.parameters()))
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 41)) and "vb" in metrics[0] and "mse" in metrics[0]


def test_resume_repeats_the_uninterrupted_losses(world, tmp_path):
    full = losses(train(cfg_for(world, tmp_path / "a", "max_steps=12", "save_every=4"), progress=False))
    first = losses(train(cfg_for(world, tmp_path / "b", "max_steps=8", "save_every=4"), progress=False))
    # "interrupted" after step 8; a later checkpoint-less crash would resume from step 8 too
    rest = train(cfg_for(world, tmp_path / "b", "max_steps=12", "save_every=4"), resume=True, progress=False)
    assert [r["step"] for r in rest["history"]] == [9, 10, 11, 12]
    assert first == full[:8]
    assert losses(rest) == full[8:]
    metrics = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 13))


def test_feature_cache_gives_the_same_losses(world, tmp_path):
    from pixart.extract import run_extract

    overrides = [f"data.root={world / 'data'}", f"t5={world / 'comp'}", f"vae={world / 'comp'}"]
    n = run_extract(tmp_path / "cache", TINY, overrides, batch_size=5, shard_size=6, progress=False)
    from pixart.features import FeatureStore

    assert n == 16 and len(list((tmp_path / "cache").glob("shard-*.safetensors"))) == 2  # flushed at >= 6 items
    assert len(FeatureStore(tmp_path / "cache").index) == 16
    assert run_extract(tmp_path / "cache", TINY, overrides, progress=False) == 0
    raw = losses(train(cfg_for(world, tmp_path / "raw", "max_steps=6"), progress=False))
    cached = losses(train(cfg_for(world, tmp_path / "cached", "max_steps=6", f"data.features={tmp_path / 'cache'}"),
                          progress=False))
    assert torch.allclose(torch.tensor(raw), torch.tensor(cached), rtol=1e-4, atol=1e-5), (raw, cached)


def test_preloaded_feature_cache_gives_the_same_batches_and_losses(world, tmp_path):
    """data.preload_features reads the cache into memory once; batches (multi-aspect too) and losses
    must be those of the item-by-item reads."""
    from pixart.extract import run_extract
    from pixart.train_data import Batches

    make_images(tmp_path / "ms", n=12, sizes=((16, 16), (16, 32)))
    overrides = [f"data.root={tmp_path / 'ms'}", f"t5={world / 'comp'}", f"vae={world / 'comp'}", "data.multi_scale=true",
                 "data.bucket_multiple=4", "data.resolution=16"]
    run_extract(tmp_path / "cache", TINY, overrides, batch_size=5, progress=False)
    base = [f"data.features={tmp_path / 'cache'}", "data.multi_scale=true", "data.bucket_multiple=4",
            "data.resolution=16", f"data.root={tmp_path / 'ms'}", "batch_size=3"]
    cfg_a, cfg_b = cfg_for(world, tmp_path / "a", *base), cfg_for(world, tmp_path / "b", *base, "data.preload_features=true")
    from pixart.data import read_items

    items = read_items(root=cfg_a.data.root)
    one, pre = Batches(cfg_a, items, 0, 1, torch.device("cpu"), print), Batches(cfg_b, items, 0, 1, torch.device("cpu"), print)
    assert pre.table is not None and len(pre.table.tables) == 2  # two latent shapes
    shapes = set()
    for step in range(8):
        a = one.get(step, torch.Generator().manual_seed(step))
        b = pre.get(step, torch.Generator().manual_seed(step))
        assert a[4] == b[4]
        shapes.add(tuple(a[0].shape))
        for x, z in zip(a[:4], b[:4]):
            assert torch.equal(x, z)
    assert len(shapes) == 2
    la = losses(train(cfg_for(world, tmp_path / "ra", *base, "model=tiny-MS", "max_steps=4"), progress=False))
    lb = losses(train(cfg_for(world, tmp_path / "rb", *base, "model=tiny-MS", "max_steps=4",
                              "data.preload_features=true"), progress=False))
    assert la == lb


def test_latent_scale_scales_the_training_latents(world, tmp_path):
    """latent_scale (input scaling) multiplies the latents the loss sees, nothing else; the VAE of a
    pipeline for such a model carries scaling_factor × latent_scale and decodes its latents alike."""
    from pixart.data import read_items
    from pixart.train_data import Batches
    from pixart.vae import VAE

    items = read_items(root=world / "data")
    plain = Batches(cfg_for(world, tmp_path / "a"), items, 0, 1, torch.device("cpu"), print)
    scaled = Batches(cfg_for(world, tmp_path / "b", "latent_scale=0.5"), items, 0, 1, torch.device("cpu"), print)
    a, b = plain.get(3, torch.Generator().manual_seed(3)), scaled.get(3, torch.Generator().manual_seed(3))
    torch.testing.assert_close(b[0], 0.5 * a[0])
    assert torch.equal(a[1], b[1]) and a[4] == b[4]
    with pytest.raises(ValueError, match="latent_scale must be positive"):
        train(cfg_for(world, tmp_path / "c", "latent_scale=0"), progress=False)

    vae = VAE.from_pretrained(world / "comp")
    half = vae.rescaled(0.5)
    assert vae.rescaled(1.0) is vae and vae.scaling_factor == pytest.approx(2 * half.scaling_factor)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(half.encode(x), 0.5 * vae.encode(x))
    torch.testing.assert_close(half.decode(half.encode(x)), vae.decode(vae.encode(x)))


def test_device_rng_leaves_cpu_runs_unchanged(world, tmp_path):
    """device_rng (the default) draws the noise on a CUDA device only; on the CPU the losses are those
    of the host generator."""
    a = losses(train(cfg_for(world, tmp_path / "a", "max_steps=3", "device_rng=true"), progress=False))
    b = losses(train(cfg_for(world, tmp_path / "b", "max_steps=3", "device_rng=false"), progress=False))
    assert a == b


def test_metrics_are_read_back_every_log_every_steps(world, tmp_path):
    """The step's metrics stay on the device and are read back every log_every steps (one GPU sync),
    and before each checkpoint: the records, their order and values are those of reading every step."""
    every = train(cfg_for(world, tmp_path / "a", "max_steps=10", "save_every=6", "log_every=1"), progress=False)
    chunks = train(cfg_for(world, tmp_path / "b", "max_steps=10", "save_every=6", "log_every=4"), progress=False)
    assert losses(every) == losses(chunks) and len(losses(chunks)) == 10
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert [r["loss"] for r in rows] == losses(every)
    for key in ("mse", "vb", "grad_norm", "lr"):
        assert [r[key] for r in rows] == [r[key] for r in every["history"]]
    assert all(r["grad_norm"] > 0 and r["sec_per_step"] > 0 for r in rows)
    # a run cut off after the step-6 checkpoint resumes with the metrics of steps 1-6 on disk
    rows_a = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "b" / "metrics.jsonl").write_text("\n".join(rows_a[:7]) + "\n")  # step 7 not checkpointed
    import shutil

    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step-0000010")
    rest = train(cfg_for(world, tmp_path / "b", "max_steps=10", "save_every=6", "log_every=4"), resume=True,
                 progress=False)
    assert [r["step"] for r in rest["history"]] == [7, 8, 9, 10]
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11)) and [r["loss"] for r in rows] == losses(every)


def test_preloaded_cache_trims_text_padding_like_the_model_helper():
    """The preloaded cache trims padding from text lengths kept on the host; the result must be
    ``trim_text_padding``'s, also when a batch holds a caption with no real token (then no trim)."""
    from pixart.model import trim_text_padding
    from pixart.train_data import PreloadedFeatures

    class Store:  # FeatureStore.get's contract: (mean, std, y, mask) for a key, padded to max_length
        def get(self, key, max_length):
            n = int(key)
            mask = torch.zeros(max_length, dtype=torch.long)
            mask[:n] = 1
            return torch.full((4, 2, 2), float(n)), torch.ones(4, 2, 2), torch.randn(max_length, 8), mask

    class Item:
        def __init__(self, n):
            self.key = str(n)

    lengths = [3, 7, 1, 0, 5]
    table = PreloadedFeatures(Store(), [Item(n) for n in lengths], max_length=12)
    for idx in ([0, 1, 2], [0, 2], [4, 0], [1, 3], [3]):
        mean, std, y, mask = table.get(idx)
        full_y = torch.stack([table.tables[(4, 2, 2)][2][i] for i in idx])
        full_mask = torch.stack([table.tables[(4, 2, 2)][3][i] for i in idx])
        want_y, want_mask = trim_text_padding(full_y, full_mask)
        assert torch.equal(y, want_y) and torch.equal(mask, want_mask), idx
        assert y.shape[1] == (12 if 3 in idx else max(lengths[i] for i in idx))
        assert mean[:, 0, 0, 0].tolist() == [float(lengths[i]) for i in idx]


def test_compile_hands_the_training_forward_to_torch_compile(world, tmp_path, monkeypatch):
    """compile=true passes the training forward to torch.compile in ``compile_mode`` (recorded here, and
    run as it is); that the compiled forward gives the same losses is the slow test below: on a fresh
    machine it spends ~40 s compiling C++ on 2 cores."""
    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, mode=None, **kw: seen.append((type(model).__name__, mode))
                        or model)
    eager = losses(train(cfg_for(world, tmp_path / "a", "max_steps=2"), progress=False))
    assert seen == []
    passed = losses(train(cfg_for(world, tmp_path / "b", "max_steps=2", "compile=true",
                                  "compile_mode=reduce-overhead"), progress=False))
    assert seen == [("PixArt", "reduce-overhead")] and passed == eager  # the same computation, run eagerly


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_forward_gives_the_same_losses(world, tmp_path, mode):
    """compile=true runs the training forward through torch.compile in ``compile_mode``: same losses
    (to rounding). On a GPU "reduce-overhead" replays the steps as CUDA graphs; on a CPU it compiles."""
    eager = losses(train(cfg_for(world, tmp_path / "a", "max_steps=3"), progress=False))
    compiled = losses(train(cfg_for(world, tmp_path / "b", "max_steps=3", "compile=true", f"compile_mode={mode}"),
                            progress=False))
    assert torch.allclose(torch.tensor(eager), torch.tensor(compiled), rtol=1e-4, atol=1e-5), (eager, compiled)


def test_max_seconds_stops_with_a_checkpoint_and_resume_goes_on(world, tmp_path):
    first = train(cfg_for(world, tmp_path / "run", "max_steps=10", "save_every=100", "max_seconds=0"), progress=False)
    assert [r["step"] for r in first["history"]] == [1]  # out of time after the first step, which is saved
    assert Path(first["final_checkpoint"]).name == "step-0000001"
    rest = train(cfg_for(world, tmp_path / "run", "max_steps=10", "save_every=100"), resume=True, progress=False)
    assert [r["step"] for r in rest["history"]] == list(range(2, 11))
    full = losses(train(cfg_for(world, tmp_path / "full", "max_steps=10", "save_every=100"), progress=False))
    assert losses(first) + losses(rest) == full


def test_feature_cache_encodes_a_recaptioned_image_again(world, tmp_path):
    import shutil

    from pixart.data import read_folder
    from pixart.extract import run_extract
    from pixart.features import FeatureStore

    shutil.copytree(world / "data", tmp_path / "data")
    overrides = [f"data.root={tmp_path / 'data'}", f"t5={world / 'comp'}", f"vae={world / 'comp'}"]
    config = TINY
    assert run_extract(tmp_path / "cache", config, overrides, progress=False) == 16
    item = read_folder(tmp_path / "data")[3]
    Path(item.path).with_suffix(".txt").write_text("a caption it was not encoded with\n")
    new = read_folder(tmp_path / "data")[3]
    assert new.path == item.path and new.key != item.key and new.key not in FeatureStore(tmp_path / "cache")
    assert run_extract(tmp_path / "cache", config, overrides, progress=False) == 1  # only that one, encoded again
    store = FeatureStore(tmp_path / "cache")
    assert all(it.key in store for it in read_folder(tmp_path / "data"))
    old_y, new_y = store.get(item.key, 128)[2], store.get(new.key, 128)[2]
    assert not torch.equal(old_y, new_y)
    # the same image's posterior (encoded alone now, in a batch before: equal up to rounding)
    assert torch.allclose(store.get(item.key, 128)[0], store.get(new.key, 128)[0], atol=1e-5)


def test_stage1_class_conditional_then_stage2(world, tmp_path):
    s1 = train(cfg_for(world, tmp_path / "s1", "class_conditional=true", "num_classes=4", "data.root=null",
                       f"data.manifest={world / 'data' / 'train.jsonl'}", "max_steps=4", "save_every=4"), progress=False)
    ckpt = Path(s1["final_checkpoint"])
    assert (ckpt / "label_embedding.safetensors").is_file()
    s2 = train(cfg_for(world, tmp_path / "s2", f"init_from={ckpt / 'ema'}", "max_steps=2"), progress=False)
    assert len(s2["history"]) == 2


def test_resume_warns_when_the_parent_changed(world, tmp_path):
    s1 = train(cfg_for(world, tmp_path / "s1", "max_steps=2", "save_every=2"), progress=False)
    parent = Path(s1["final_checkpoint"])
    train(cfg_for(world, tmp_path / "s2", f"init_from={parent / 'ema'}", "max_steps=2", "save_every=2"), progress=False)
    with warnings.catch_warnings(record=True) as same:
        warnings.simplefilter("always")
        train(cfg_for(world, tmp_path / "s2", f"init_from={parent / 'ema'}", "max_steps=3", "save_every=3"),
              resume=True, progress=False)
    assert not [w for w in same if "init_from" in str(w.message)]
    with pytest.warns(UserWarning, match=r"changed init_from .*model.*has no effect"):
        rest = train(cfg_for(world, tmp_path / "s2", f"init_from={parent / 'model'}", "max_steps=4"),
                     resume=True, progress=False)
    assert [r["step"] for r in rest["history"]] == [4]  # it still resumes, from its own step-3 weights


def test_stage3_multi_aspect_with_micro_conditions(world, tmp_path):
    make_images(tmp_path / "ms", n=16, sizes=((16, 16), (16, 32)))
    s2 = train(cfg_for(world, tmp_path / "s2", "max_steps=2"), progress=False)
    result = train(cfg_for(world, tmp_path / "s3", f"data.root={tmp_path / 'ms'}", "data.multi_scale=true",
                           "data.bucket_multiple=4", "model=tiny-MS", f"init_from={Path(s2['final_checkpoint']) / 'ema'}",
                           "init_new_modules=[csize_embedder, ar_embedder]", "max_steps=4"), progress=False)
    assert len(result["history"]) == 4
    with pytest.raises(Exception, match="missing keys: csize_embedder"):
        train(cfg_for(world, tmp_path / "s3b", f"data.root={tmp_path / 'ms'}", "model=tiny-MS",
                      f"init_from={Path(s2['final_checkpoint']) / 'ema'}", "max_steps=1"), progress=False)


def test_mixed_scales_train_each_image_at_its_nearest_resolution(world, tmp_path):
    """data.scales: 16 px images stay at 16 px in a 32 px multi-aspect stage, in the cache and in the batches."""
    from pixart.data import Bucketer, Item, aspect_buckets, closest_bucket, read_items
    from pixart.extract import run_extract
    from pixart.features import FeatureStore
    from pixart.train_data import Batches

    b = Bucketer([32, 16], multi_scale=True, multiple=4)
    assert b(Item("x", "", 16, 16)) == (16, 16) and b(Item("x", "", 32, 32)) == (32, 32)
    wide = closest_bucket(32, 64, aspect_buckets(32, 4))  # a 1:2 bucket of about 32² pixels
    assert b(Item("x", "", 64, 32)) == wide and b(Item("x", "", 20, 20)) == (16, 16)
    assert Bucketer([32, 16])(Item("x", "", 20, 20)) == (16, 16)  # square buckets only
    assert Bucketer([32])(Item("not-read.png", "")) == (32, 32)  # one square bucket: no file is read
    with pytest.raises(ValueError, match="must be a list"):
        load_config(None, ["data.scales=16"])

    make_images(tmp_path / "mix", n=16, sizes=((16, 16), (32, 32), (32, 64), (16, 16)))
    base = [f"data.root={tmp_path / 'mix'}", "data.multi_scale=true", "data.bucket_multiple=4", "data.resolution=32",
            "data.scales=[16]", "batch_size=2"]
    plain = [f"t5={world / 'comp'}", f"vae={world / 'comp'}", *base[:4]]
    run_extract(tmp_path / "c1", TINY, plain, progress=False)
    with pytest.raises(DataError, match="different scales"):  # a cache made without the 16 px scale
        run_extract(tmp_path / "c1", TINY, [*plain, "data.scales=[16]"], progress=False)
    run_extract(tmp_path / "cache", TINY, [*plain, "data.scales=[16]"], progress=False)
    store = FeatureStore(tmp_path / "cache")
    items = read_items(root=tmp_path / "mix")
    vae_factor = 2  # the tiny VAE
    for it in items:
        h, w = b(it)
        assert tuple(store.get(it.key, 64)[0].shape[1:]) == (h // vae_factor, w // vae_factor), it.path
    cfg = cfg_for(world, tmp_path / "run", *base, f"data.features={tmp_path / 'cache'}", "model=tiny-MS", "max_steps=6")
    batches = Batches(cfg, items, 0, 1, torch.device("cpu"), print)
    seen = {batches.get(step, torch.Generator().manual_seed(step))[4] for step in range(batches.order.per_epoch)}
    assert seen == {(16, 16), (32, 32), wide}
    result = train(cfg, progress=False)
    assert len(result["history"]) == 6 and all(r["loss"] == r["loss"] for r in result["history"])


def test_caption_dropout_rate():
    gen = step_generator(0, 0, 0, 0)
    assert abs(drop_mask(20000, 0.1, gen).float().mean().item() - 0.1) < 0.01
    assert not drop_mask(1000, 0.0, gen).any()


def test_bad_data(world, tmp_path):
    data = make_images(tmp_path / "d", n=8)
    (data / "img003.txt").unlink()
    with pytest.raises(DataError, match=r"missing caption for .*img003.png"):
        train(cfg_for(world, tmp_path / "o", f"data.root={data}", "max_steps=1"), progress=False)
    logged = train(cfg_for(world, tmp_path / "o2", f"data.root={data}", "data.skip_bad=true", "max_steps=1"), progress=False)
    assert len(logged["history"]) == 1
    (data / "img003.txt").write_text("a red square\n")
    (data / "img005.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read image .*img005.png"):
        train(cfg_for(world, tmp_path / "o3", f"data.root={data}", "batch_size=8", "max_steps=1"), progress=False)
    skipped = train(cfg_for(world, tmp_path / "o5", f"data.root={data}", "batch_size=8", "max_steps=1",
                            "data.skip_bad=true"), progress=False)
    assert len(skipped["history"]) == 1  # trained on the 7 readable images, the bad one logged
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        train(cfg_for(world, tmp_path / "o4", f"data.root={tmp_path / 'empty'}"), progress=False)


def test_configs_load_and_reject_unknown_keys():
    paths = sorted((ROOT / "pixart" / "configs").glob("*.yaml"))
    assert len(paths) == 8
    for path in paths:
        cfg = load_config(path)
        assert cfg.model_config().depth >= 1, path
    cfg = load_config(ROOT / "pixart" / "configs" / "pixart_xl2_stage2_256.yaml")
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.eps, cfg.optim.grad_clip, cfg.caption_dropout) == (2e-5, 0.03, 1e-10, 0.01, 0.1)
    with pytest.raises(ValueError, match="unknown config.optim keys"):
        load_config(None, ["optim.learning_rate=1"])
    # YAML reads 1e-4 (no dot) as a string; float fields take it as a number, and say so when it is not one
    cfg = load_config(None, ["optim.lr=1e-4", "ema_decay=1", "optim.eps=1.0e-8"])
    assert (cfg.optim.lr, cfg.ema_decay, cfg.optim.eps) == (1e-4, 1, 1e-8) and isinstance(cfg.optim.lr, float)
    with pytest.raises(ValueError, match="config.optim.lr must be a number, got 'fast'"):
        load_config(None, ["optim.lr=fast"])
    # ...and reads `no` as false: a text field takes the word
    assert load_config(None, ["mixed_precision=no"]).mixed_precision == "no"


def test_presets_load_by_name():
    from pixart.train_config import list_presets

    presets = list_presets()
    assert presets == sorted(p.stem for p in (ROOT / "pixart" / "configs").glob("*.yaml"))
    assert {"pixart_xl2_stage1_256", "pixart_xl2_stage2_256", "pixart_xl2_stage3_1024_ms", "tiny_stage2"} <= {*presets}
    by_name = load_config("pixart_xl2_stage2_256", ["batch_size=2"])
    assert by_name == load_config("pixart_xl2_stage2_256.yaml", ["batch_size=2"])
    assert by_name == load_config(ROOT / "pixart" / "configs" / "pixart_xl2_stage2_256.yaml", ["batch_size=2"])
    assert (by_name.max_steps, by_name.batch_size, by_name.data.resolution) == (150000, 2, 256)
    with pytest.raises(ConfigError, match=r"preset 'pixart_xl2_stage9'; presets: .*tiny_stage2"):
        load_config("pixart_xl2_stage9")
    with pytest.raises(ConfigError, match="no config file or preset"):
        load_config(Path("elsewhere") / "tiny_stage2.yaml")  # a path that is not a file is not a preset name


def test_presets_ship_in_the_wheel(tmp_path):
    """pyproject declares the presets as package data: a wheel built from the project holds them, and
    load_config finds them inside it (imported from the zip, not from this checkout)."""
    import importlib.util
    import shutil
    import subprocess
    import sys

    import setuptools

    if tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (70, 1) and not importlib.util.find_spec("wheel"):
        pytest.skip("this setuptools cannot build wheels without the wheel package")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pixart", src / "pixart", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    code = ("import pixart.train_config as c; print(c.__file__); print(','.join(c.list_presets())); "
            "print(c.load_config('tiny_stage2').max_steps)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(wheel)}, cwd=tmp_path,
                         capture_output=True, text=True, check=True, timeout=300).stdout.splitlines()
    assert out[0].startswith(str(wheel))
    assert out[1].split(",") == sorted(p.stem for p in (ROOT / "pixart" / "configs").glob("*.yaml"))
    assert out[2] == str(load_config(TINY).max_steps)


def test_accumulation_grad_checkpointing_and_bf16(world, tmp_path):
    """grad_accum=2 makes one optimiser step of two micro-batches; gradient checkpointing recomputes the
    same losses; bf16 autocast changes them by rounding only. model_overrides reach the checkpoint
    (fp32_attention; its numerics are tests/test_model.py's)."""
    common = ["grad_accum=2", "max_steps=3", "save_every=3",
              "model_overrides={model_max_length: 120, fp32_attention: true}"]
    fp32 = train(cfg_for(world, tmp_path / "fp32", *common), progress=False)
    recomputed = train(cfg_for(world, tmp_path / "ckpt", *common, "grad_checkpointing=true"), progress=False)
    result = train(cfg_for(world, tmp_path / "bf16", *common, "grad_checkpointing=true", "mixed_precision=bf16"),
                   progress=False)
    ls = losses(result)
    assert len(ls) == 3 and all(torch.isfinite(torch.tensor(ls)))
    assert [r["step"] for r in result["history"]] == [1, 2, 3]  # optimiser steps, 2 micro-batches each
    state = torch.load(Path(result["final_checkpoint"]) / "training_state.pt", weights_only=True)
    assert state["step"] == 3 and state["lr_scheduler"]["last_epoch"] == 3
    assert all(s["step"] == 3 for s in state["optimizer"]["state"].values())  # AdamW stepped once per 2 micro-batches
    assert losses(recomputed) == losses(fp32)
    # the first step's prediction is 0 in both (zero-initialised final layer); later ones see bf16 gradients
    assert ls != losses(fp32)
    assert torch.allclose(torch.tensor(ls), torch.tensor(losses(fp32)), rtol=1e-3), (ls, losses(fp32))
    saved = json.loads((Path(result["final_checkpoint"]) / "model" / "config.json").read_text())
    assert saved["fp32_attention"] is True


def test_tar_shards_dit_init_and_sample_grid(world, tmp_path):
    import tarfile

    from diffusers import DiTTransformer2DModel

    data = make_images(tmp_path / "imgs", n=8)
    for k in range(2):
        with tarfile.open(tmp_path / f"train-{k:04d}.tar", "w") as tar:
            for i in range(4 * k, 4 * k + 4):
                for ext in ("png", "txt"):
                    tar.add(data / f"img{i:03d}.{ext}", arcname=f"img{i:03d}.{ext}")
    dit = DiTTransformer2DModel(num_attention_heads=4, attention_head_dim=12, num_layers=2, sample_size=8,
                                out_channels=8, num_embeds_ada_norm=4, norm_eps=1e-6)
    dit.save_pretrained(tmp_path / "dit")
    result = train(cfg_for(world, tmp_path / "run", "data.root=null", f"data.shards={tmp_path / 'train-*.tar'}",
                           f"init_from_dit={tmp_path / 'dit'}", "max_steps=2", "sample_every=2",
                           "sample_prompts=[a red square, a blue square]"), progress=False)
    assert len(result["history"]) == 2
    assert len(list((tmp_path / "run" / "shards").rglob("*.png"))) == 8
    from pixart.checkpoints import load_transformer

    # two Adam steps of lr 1e-3 from DiT's patch embedding (a fresh init would be ~0.1 away)
    trained = load_transformer(Path(result["final_checkpoint"]) / "model")
    drift = (trained.x_embedder.proj.weight - dit.pos_embed.proj.weight).abs().max()
    assert 0 < drift < 5e-3, drift
    grid = Image.open(tmp_path / "run" / "samples" / "step-0000002.png")
    assert grid.size == (32, 16)  # two 16x16 samples side by side


def test_ema_warm_up():
    from pixart.train import ema_decay_at

    assert ema_decay_at(0, 0.9999) == 0.1 and ema_decay_at(90, 0.9999) == 0.91
    assert ema_decay_at(10**7, 0.9999) == 0.9999


def test_sigterm_saves_the_step_and_exits_143_then_resume_goes_on(world, tmp_path):
    """`timeout` and job schedulers send SIGTERM before they kill: the step in progress is finished and
    saved, and the process exits 143 (a caller running several stages does not start the next one).
    Resume goes on from that step."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    overrides = [f"data.root={world / 'data'}", f"t5={world / 'comp'}", f"vae={world / 'comp'}", f"output_dir={out}",
                 "max_steps=100000", "save_every=100000", "log_every=1"]
    code = "import sys; from pixart.train import load_config, train; train(load_config(sys.argv[1], sys.argv[2:]), progress=False)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code, TINY, *overrides], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    metrics, deadline = out / "metrics.jsonl", time.time() + 180
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert time.time() < deadline, "training did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 143, output[-2000:]
    assert "SIGTERM received" in output
    saved = sorted((out / "checkpoints").iterdir())
    reached = int(saved[-1].name.removeprefix("step-"))
    assert len(saved) == 1 and reached >= 3
    assert json.loads(metrics.read_text().splitlines()[-1])["step"] == reached  # every finished step is kept
    before = signal.getsignal(signal.SIGTERM)
    rest = train(cfg_for(world, out, f"max_steps={reached + 2}", "save_every=100000"), resume=True, progress=False)
    assert [r["step"] for r in rest["history"]] == [reached + 1, reached + 2]
    assert signal.getsignal(signal.SIGTERM) is before  # train() in this process put the handler back
