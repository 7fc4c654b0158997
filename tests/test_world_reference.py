"""world train-reference: the VAE recipe, and the whole from-scratch recipe at a toy budget (about 20 s)."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from bench.errors import BenchError
from bench.world.dataset import make_dataset
from bench.world.components import train_vae
from bench.world.reference import STAGES, ReferenceBudget, stage_configs, train_reference
from bench.world.stage_records import loss_curve, set_aside_if_inputs_changed


# slow (about 7 s): the VAE also trains in test_prepare_elsewhere_then_train_with_bundled_components_and_time_caps
@pytest.mark.slow
def test_train_vae_on_crops_of_both_resolutions(tmp_path):
    make_dataset(tmp_path / "d64", 70, 64, progress=False)
    make_dataset(tmp_path / "d128", 70, 128, seed=1, sizes=[(128, 128), (128, 256)], progress=False)
    vae, psnrs = train_vae([tmp_path / "d64", tmp_path / "d128"], steps=3, batch=4, seed=0, log=lambda *a: None)
    assert set(psnrs) == {"d64", "d128"} and all(5 < v < 60 for v in psnrs.values())
    assert tuple(vae.config.block_out_channels) == (32, 64, 64)
    # the scaling factor makes latents unit-variance: check on fresh images
    from pixart.data import load_image, read_folder, to_tensor

    x = torch.stack([to_tensor(load_image(it.path), (64, 64)) for it in read_folder(tmp_path / "d64")[:16]])
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    assert 0.5 < z.std().item() < 2.0


# slow (about 9 s): every stage end to end; the default suite trains the stages with time caps in
# test_prepare_elsewhere_then_train_with_bundled_components_and_time_caps
@pytest.mark.slow
def test_train_reference_from_scratch_at_a_toy_budget(tmp_path):
    from pixart.checkpoints import load_transformer
    from pixart.pipeline import PixArtPipeline, SampleSettings

    b = ReferenceBudget(n_images_64=96, n_images_128=48, vae_steps=4, vae_batch_size=4, stage1_steps=3,
                        stage2_steps=3, stage2_low_lr_steps=2, stage3_steps=3, stage3_low_lr_steps=2, batch_size=4,
                        batch_size_128=2, hidden=48, depth=1, heads=3, low_lr=1e-5,
                        patch_size=1)  # the bundle has 2; 1 checks that the option reaches the model
    record = train_reference(tmp_path / "out", tmp_path / "work", b, log=lambda *a: None)
    assert set(record["loss_curves"]) == {"stage1", "stage2", "stage2b", "stage3", "stage3b"}
    assert all(len(v) >= 1 for v in record["loss_curves"].values())
    saved = json.loads((tmp_path / "out" / "training.json").read_text())
    assert saved["budget"]["stage2_steps"] == 3 and saved["seed"] == 0
    # each stage starts from the one before it; the "b" stages at the low learning rate
    work = tmp_path / "work"
    chain = [("stage2b", "stage2", 3, 1e-5), ("stage3", "stage2b", 2, 3e-4), ("stage3b", "stage3", 3, 1e-5)]
    for stage, parent, parent_steps, lr in chain:
        cfg = yaml.safe_load((work / stage / "train_config.yaml").read_text())
        assert Path(cfg["init_from"]) == work / parent / "checkpoints" / f"step-{parent_steps:07d}" / "ema"
        assert cfg["optim"]["lr"] == lr
    pipe = PixArtPipeline.from_pretrained(tmp_path / "out")
    assert pipe.transformer.config.input_size == 32 and pipe.transformer.config.patch_size == 1  # stage 3
    final = load_transformer(work / "stage3b" / "checkpoints" / "step-0000002" / "ema")
    assert all(torch.equal(v, final.state_dict()[k]) for k, v in pipe.transformer.state_dict().items())
    img = pipe(["a red circle"], [0], SampleSettings(steps=2, height=128, width=128), progress=False)[0]
    assert img.size == (128, 128)
    # resumable: a second call with the same budget trains nothing new and gives the same weights
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    train_reference(tmp_path / "out", tmp_path / "work", b, log=lambda *a: None)
    again = PixArtPipeline.from_pretrained(tmp_path / "out").transformer.state_dict()
    assert all(torch.equal(before[k], again[k]) for k in before)
    # other captions: new feature caches, and every stage on that data starts again (old runs kept aside)
    train_reference(tmp_path / "out", tmp_path / "work", dataclasses.replace(b, and_fraction=1.0), log=lambda *a: None)
    from pixart.data import read_folder
    from pixart.features import FeatureStore

    for size in (64, 128):  # the caches hold features of the new captions
        assert all(it.key in FeatureStore(work / f"cache{size}") for it in read_folder(work / f"data{size}"))
    assert len(list(work.glob("stage1-data-*"))) == 1 and len(list(work.glob("stage2b-from-*"))) == 1
    for stage in ("stage1", "stage2", "stage2b", "stage3", "stage3b"):
        # set aside once: for its data (stage 1, 2, 3) or for its parent's new weights (2b, 3b)
        assert len([d for d in work.iterdir() if d.name.startswith(stage + "-")]) == 1, stage
    captions = [json.loads(x)["caption"] for x in (work / "data64" / "manifest.jsonl").read_text().splitlines()]
    assert any(" and " in c and not {"left", "right", "above", "below"} & set(c.split()) and "background" not in c
               for c in captions)
    other = PixArtPipeline.from_pretrained(tmp_path / "out").transformer.state_dict()
    assert not all(torch.equal(before[k], other[k]) for k in before)


def test_loss_curve_is_window_means_of_unique_steps(tmp_path):
    rows = [{"step": s, "loss": float(s)} for s in range(1, 11)] + [{"step": 10, "loss": 20.0}]  # step 10 re-logged
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert loss_curve(tmp_path / "metrics.jsonl", max_points=100) == [[s, float(s)] for s in range(1, 10)] + [[10, 20.0]]
    assert loss_curve(tmp_path / "metrics.jsonl", max_points=3) == [[4, 2.5], [8, 6.5], [10, 14.5]]


def test_stage_configs_differ_where_the_stages_do(tmp_path):
    from bench.world.scene import NUM_CLASSES

    b = ReferenceBudget(stage_minutes={"stage2": 2}, compile_stages=("stage3",), stage3_lr=2e-4, latent_scale_128=0.5)
    cfgs = stage_configs(b, tmp_path)
    assert list(cfgs) == list(STAGES)
    assert cfgs["stage1"].class_conditional and cfgs["stage1"].num_classes == NUM_CLASSES
    assert not any(c.class_conditional for name, c in cfgs.items() if name != "stage1")
    for name, c in cfgs.items():
        at128 = name.startswith("stage3")
        assert c.model_overrides["input_size"] == (32 if at128 else 16)
        assert c.model_overrides.get("lewei_scale") == (2.0 if at128 else None)
        assert (c.data.resolution, c.data.multi_scale, c.latent_scale) == ((128, True, 0.5) if at128 else (64, False, 1.0))
        assert c.batch_size == (b.batch_size_128 if at128 else b.batch_size)
        assert c.data.manifest == str(tmp_path / f"data{c.data.resolution}" / "manifest.jsonl")
        assert c.output_dir == str(tmp_path / name) and c.init_from is None
        assert c.t5 == c.vae == str(tmp_path / "components")
        assert c.seed == (b.seed + 1 if name.endswith("b") else b.seed)
        assert c.max_seconds == (120.0 if name == "stage2" else None) and c.compile == (name == "stage3")
    assert [cfgs[n].optim.lr for n in STAGES] == [b.lr, b.lr, b.low_lr, 2e-4, b.low_lr]
    assert [cfgs[n].max_steps for n in STAGES] == [b.stage1_steps, b.stage2_steps, b.stage2_low_lr_steps,
                                                   b.stage3_steps, b.stage3_low_lr_steps]
    assert cfgs["stage1"].optim is not cfgs["stage2"].optim  # each stage's config is its own


def test_a_stage_whose_parent_grew_is_set_aside_not_deleted(tmp_path):
    stage = tmp_path / "stage3"
    (stage / "checkpoints").mkdir(parents=True)
    (stage / "train_config.yaml").write_text(f"init_from: {tmp_path / 'stage2/checkpoints/step-0000100/ema'}\n")
    set_aside_if_inputs_changed(stage, tmp_path / "stage2/checkpoints/step-0000100/ema", None, log=print)
    assert stage.is_dir()  # same parent: resume as usual
    set_aside_if_inputs_changed(stage, Path("work/stage2/checkpoints/step-0000100/ema"), None, log=print)
    assert stage.is_dir()  # the same parent named from another directory
    set_aside_if_inputs_changed(stage, tmp_path / "stage2/checkpoints/step-0000200/ema", None, log=print)
    assert not (stage / "checkpoints").exists()
    assert (tmp_path / "stage3-from-step-0000100" / "checkpoints").is_dir()


def test_a_stage_whose_data_or_parent_weights_changed_is_set_aside_not_deleted(tmp_path):
    manifest = tmp_path / "data128" / "manifest.jsonl"
    manifest.parent.mkdir()
    manifest.write_text('{"path": "000000.png"}\n')
    parent = tmp_path / "stage2b/checkpoints/step-0000100/ema"
    parent.mkdir(parents=True)
    (parent / "model.safetensors").write_bytes(b"weights 1")
    stage = tmp_path / "stage3"
    (stage / "checkpoints").mkdir(parents=True)
    (stage / "train_config.yaml").write_text(f"init_from: {parent}\n")  # a run from before inputs.json
    set_aside_if_inputs_changed(stage, parent, manifest, log=print)
    assert (stage / "checkpoints").is_dir() and (stage / "inputs.json").is_file()
    set_aside_if_inputs_changed(stage, parent, manifest, log=print)
    assert (stage / "checkpoints").is_dir()  # same parent and data: resume as usual
    old = json.loads((stage / "inputs.json").read_text())["data_sha256"]
    manifest.write_text('{"path": "000000.png"}\n{"path": "000001.png"}\n')  # the dataset grew
    set_aside_if_inputs_changed(stage, parent, manifest, log=print)
    assert (tmp_path / f"stage3-data-{old[:8]}" / "checkpoints").is_dir()
    assert not (stage / "checkpoints").exists()
    (stage / "checkpoints").mkdir()
    (parent / "model.safetensors").write_bytes(b"weights 2")  # the parent was retrained: same step name
    set_aside_if_inputs_changed(stage, parent, manifest, log=print)
    assert (tmp_path / "stage3-from-step-0000100" / "checkpoints").is_dir()
    assert json.loads((stage / "inputs.json").read_text())["init_from_sha256"] != old


def test_train_reference_cli_defaults_are_the_budget_defaults():
    import inspect

    from bench.cli.world import world_train_reference

    budget = ReferenceBudget()
    params = inspect.signature(world_train_reference).parameters
    shared = [f.name for f in dataclasses.fields(ReferenceBudget) if f.name in params]
    assert len(shared) >= 12
    from bench.world.reference import option_of, parse_stage_minutes

    for name in shared:
        default = params[name].default.default
        if name == "stage_minutes":
            default = parse_stage_minutes(default)
        elif name == "compile_stages":
            default = tuple(filter(None, default.split(",")))
        assert default == getattr(budget, name), name
    from bench.world.reference import STEP_OPTIONS

    options = {d for p in params.values() for d in getattr(p.default, "param_decls", ())}
    assert set(STEP_OPTIONS) == set(STAGES) and set(STEP_OPTIONS.values()) <= options
    # the options the budget's error messages name are the command's
    named = {option_of(f.name) for f in dataclasses.fields(ReferenceBudget)}
    assert {o for o in named if o.startswith("--")} <= options and len(named & options) >= 20


def test_train_reference_cli_refuses_bad_options_before_making_anything(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    for bad, message in ((["--stop-after", "stage9"], "is not a stage"),
                         (["--stage3-from", str(tmp_path)], "no *.safetensors weights"),
                         (["--latent-scale-128", "0"], "--latent-scale-128 must be a number above 0")):
        result = CliRunner().invoke(app, ["world", "train-reference", "--work", str(tmp_path / "w"),
                                          "--out", str(tmp_path / "o"), *bad])
        # one plain line on stderr, whatever the option's kind (a usage error or the library's own check)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert message in result.stderr, result.output
        assert not (tmp_path / "w").exists()


def test_prepare_elsewhere_then_train_with_bundled_components_and_time_caps(tmp_path, monkeypatch):
    """--components reuses a pipeline's tokenizer/T5/VAE; --prepare-only stops before training; a
    stage with a 0-minute cap stops after one step, with a checkpoint the next stage starts from.
    --compile reaches the stage's config and torch.compile (here recorded and run eagerly: compiling
    took ~25 s of a fresh 2-core machine; tests/test_train.py's slow test compiles)."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, mode=None, **kw: compiled.append(mode) or model)
    bundle = Path(__file__).resolve().parents[1] / "bench" / "world" / "reference"
    b = ReferenceBudget(n_images_64=24, n_images_128=12, stage1_steps=2, stage2_steps=50, stage2_low_lr_steps=2,
                        stage3_steps=2, stage3_low_lr_steps=0, batch_size=4, batch_size_128=2, hidden=48, depth=1,
                        heads=3, stage_minutes={"stage2": 0}, compile_stages=("stage2b",))
    work = tmp_path / "work"
    assert train_reference(tmp_path / "out", work, b, log=lambda *a: None, components=bundle, workers=2,
                           prepare_only=True) == {"prepared": str(work)}
    assert not (tmp_path / "out").exists() and not (work / "stage1").exists()
    for part in ("tokenizer", "text_encoder", "vae"):
        assert sorted(p.name for p in (work / "components" / part).iterdir()) == sorted(p.name for p in (bundle / part).iterdir())
    assert (work / "cache64" / "meta.json").is_file() or any((work / "cache64").iterdir())
    # an image the manifest does not list (left by an earlier, larger run) is neither cached nor trained on
    shutil.copy(work / "data128" / "000000.png", work / "data128" / "000999.png")
    (work / "data128" / "000999.txt").write_text("a red circle\n")
    record = train_reference(tmp_path / "out", work, b, log=lambda *a: None, components=bundle)
    assert len(record["loss_curves"]["stage2"]) == 1  # capped: one step
    from pixart.features import FeatureStore

    keys = list(FeatureStore(work / "cache128").index)
    assert len(keys) == 12 and not any("000999" in k for k in keys)
    cfg = yaml.safe_load((work / "stage2b" / "train_config.yaml").read_text())
    assert Path(cfg["init_from"]) == work / "stage2" / "checkpoints" / "step-0000001" / "ema"
    assert cfg["compile"] and not yaml.safe_load((work / "stage2" / "train_config.yaml").read_text())["compile"]
    assert compiled == [cfg["compile_mode"]]  # stage 2b's forward, and no other stage's
    assert record["vae_psnr_db"] == json.loads((bundle / "training.json").read_text())["vae_psnr_db"]
    with pytest.raises(ValueError, match="unknown stages"):
        train_reference(tmp_path / "out", work, dataclasses.replace(b, stage_minutes={"stage9": 1}), log=lambda *a: None)
    with pytest.raises(ValueError, match="--compile names unknown"):
        train_reference(tmp_path / "out", work, dataclasses.replace(b, compile_stages=("stage-2",)), log=lambda *a: None)


# slow (about 6 s): --stop-after and setting a changed stage aside; the records' rules are also checked
# without training in test_a_stage_whose_*_is_set_aside_not_deleted
@pytest.mark.slow
def test_stop_after_then_stage3_with_scaled_latents_from_a_copy(tmp_path, monkeypatch):
    """--stop-after stage2b trains stages 1-2b and writes no pipeline; a copy of the work folder,
    given the reached steps, resumes them untouched and trains stage 3 on latents × 0.5. Its
    pipeline's VAE carries the scale (diffusers reads it too), --components from it takes the scale
    back out, and stage 3 trained with another scale is set aside, not resumed."""
    from diffusers import PixArtAlphaPipeline

    from bench.world.components import reuse_components
    from bench.world.stage_records import continued_record
    from pixart.files import sha256_files
    from pixart.pipeline import PixArtPipeline
    from pixart.vae import VAE

    b = ReferenceBudget(n_images_64=48, n_images_128=24, vae_steps=2, vae_batch_size=4, stage1_steps=2,
                        stage2_steps=3, stage2_low_lr_steps=2, stage3_steps=2, stage3_low_lr_steps=1, batch_size=4,
                        batch_size_128=2, hidden=48, depth=1, heads=3)
    # both runs see their work folder as "w" (a relative path): the feature caches record the
    # components' path, so a copy elsewhere under another name would not match
    bundle = Path(__file__).resolve().parents[1] / "bench" / "world" / "reference"
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path / "base")
    base = Path("w")
    record = train_reference(tmp_path / "out0", base, b, log=lambda *a: None, stop_after="stage2b", components=bundle)
    assert record["stopped_after"] == "stage2b" and [v["steps"] for v in record["stages"].values()] == [2, 3, 2]
    assert not (base / "stage3").exists() and not (tmp_path / "out0").exists()
    with pytest.raises(ValueError, match="not a stage"):
        train_reference(tmp_path / "out0", base, b, log=lambda *a: None, stop_after="stage4")

    # a copy of the stopped run: data, caches and components are links, stages copies
    (tmp_path / "fork" / "w").mkdir(parents=True)
    for d in ("data64", "data128", "cache64", "cache128", "components"):
        (tmp_path / "fork" / "w" / d).symlink_to(tmp_path / "base" / "w" / d)
    for d in ("stage1", "stage2", "stage2b"):
        shutil.copytree(base / d, tmp_path / "fork" / "w" / d)
    monkeypatch.chdir(tmp_path / "fork")
    work = Path("w")
    weights = {p: p.read_bytes() for p in work.glob("stage*/checkpoints/*/*/*.safetensors")}
    scaled = dataclasses.replace(b, latent_scale_128=0.5)
    record = train_reference(tmp_path / "out", work, scaled, log=lambda *a: None)
    assert {p: p.read_bytes() for p in work.glob("stage[12]*/checkpoints/*/*/*.safetensors")} == weights
    assert all(len(list((work / s / "checkpoints").iterdir())) == 1 for s in ("stage1", "stage2", "stage2b"))
    for stage in ("stage3", "stage3b"):
        assert yaml.safe_load((work / stage / "train_config.yaml").read_text())["latent_scale"] == 0.5
        assert json.loads((work / stage / "inputs.json").read_text())["settings"] == {"latent_scale": 0.5}
    assert yaml.safe_load((work / "stage2b" / "train_config.yaml").read_text())["latent_scale"] == 1.0
    sf = VAE.from_pretrained(work / "components").scaling_factor
    assert PixArtPipeline.from_pretrained(tmp_path / "out").vae.scaling_factor == pytest.approx(0.5 * sf)
    assert PixArtAlphaPipeline.from_pretrained(tmp_path / "out").vae.config.scaling_factor == pytest.approx(0.5 * sf)
    assert record["budget"]["latent_scale_128"] == 0.5

    reuse_components(tmp_path / "out", tmp_path / "comp", log=lambda *a: None)
    assert VAE.from_pretrained(tmp_path / "comp").scaling_factor == pytest.approx(sf)

    # stage 3 from kept 64 px weights alone (stages 1-2b skipped), in a fresh folder
    kept = (base / "stage2b" / "checkpoints" / "step-0000002" / "ema").resolve()
    (tmp_path / "s3").mkdir()
    monkeypatch.chdir(tmp_path / "s3")
    record3 = train_reference(tmp_path / "out3", Path("w"), b, log=lambda *a: None, components=bundle, stage3_from=kept)
    assert not Path("w/stage1").exists() and not Path("w/stage2b").exists()
    assert Path(yaml.safe_load(Path("w/stage3/train_config.yaml").read_text())["init_from"]) == kept
    assert PixArtPipeline.from_pretrained(tmp_path / "out3").transformer.config.input_size == 32
    # a bare transformer folder has no record of its own: the weights are named and hashed
    assert record3["continued_from"]["weights"] == str(kept) and record3["continued_from"]["record"] == {}
    assert record3["continued_from"]["weights_sha256"] == sha256_files([kept / "model.safetensors"])
    assert list(record3["loss_curves"]) == ["stage3", "stage3b"]

    # a longer stage 3 from a pipeline (as from the bundle): its training.json keeps the parent's history
    (tmp_path / "s4").mkdir()
    monkeypatch.chdir(tmp_path / "s4")
    longer = dataclasses.replace(b, stage3_steps=3, stage3_low_lr_steps=0)
    train_reference(tmp_path / "out4", Path("w"), longer, log=lambda *a: None, components=bundle,
                    stage3_from=tmp_path / "out3")
    record4 = json.loads((tmp_path / "out4" / "training.json").read_text())
    assert list(record4["loss_curves"]) == ["stage3", "stage3b", "stage3 (continued)"]
    assert len(record4["loss_curves"]["stage3 (continued)"]) == 3 and not Path("w/stage3b").exists()
    assert record4["loss_curves"]["stage3"] == record3["loss_curves"]["stage3"]
    assert record4["seconds"]["stage3b"] == record3["seconds"]["stage3b"] and "stage3 (continued)" in record4["seconds"]
    parent = record4["continued_from"]
    assert parent["weights"] == str(tmp_path / "out3" / "transformer") and parent["record"]["budget"]["stage3_steps"] == 2
    assert parent["record"]["continued_from"]["weights"] == str(kept)  # the chain is kept
    assert record4["budget"]["stage3_steps"] == 3
    assert record4["seconds_this_run"] == pytest.approx(sum(v for k, v in record4["seconds"].items() if k.endswith("(continued)")))
    again = continued_record(tmp_path / "out4" / "transformer", {"seconds": {"stage3": 1.0}, "loss_curves": {}})
    assert list(again["seconds"])[-1] == "stage3 (continued 2)" and again["seconds"]["stage3"] == record3["seconds"]["stage3"]

    monkeypatch.chdir(tmp_path / "s3")
    with pytest.raises(BenchError, match="no \\*.safetensors"):
        train_reference(tmp_path / "out3", Path("w"), b, log=lambda *a: None, stage3_from=tmp_path)
    with pytest.raises(ValueError, match="would train nothing"):
        train_reference(tmp_path / "out3", Path("w"), b, log=lambda *a: None, stage3_from=kept, stop_after="stage2")
    monkeypatch.chdir(tmp_path / "fork")

    train_reference(tmp_path / "out", work, b, log=lambda *a: None)  # scale 1 again: stage 3 starts again
    assert (work / "stage3-latent_scale-0.5").is_dir()
    assert yaml.safe_load((work / "stage3" / "train_config.yaml").read_text())["latent_scale"] == 1.0
    assert PixArtPipeline.from_pretrained(tmp_path / "out").vae.scaling_factor == pytest.approx(sf)
