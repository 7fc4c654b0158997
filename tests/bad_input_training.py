"""Bad-input cases for the training commands and loaders: ``train``, ``extract-features``, ``caption``,
``vocab``, and ``load_config``, the data readers, the feature cache and resume (see tests/bad_input.py).

Case ids start with the command they run (``"COMMAND: what is wrong"``) or the library call."""

import json
from functools import partial
from pathlib import Path

from bad_input import ApiCase, CliCase, truncate

from pixart.captions import caption_images, find_images, read_done
from pixart.checkpoints import CheckpointError
from pixart.data import DataError, read_items
from pixart.errors import PipelineError
from pixart.features import FeatureStore
from pixart.train import train
from pixart.train_config import ConfigError, TrainConfig, load_config
from pixart.vocab import load_spacy, read_captions

TINY = "tiny_stage2"
LONG = "a red square " * 770  # 10,010 characters
STEP1, STEP2 = "checkpoints/step-0000001", "checkpoints/step-0000002"


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def config_file(f, text) -> list:
    """``train`` with the config file ``text`` (str or bytes)."""
    return ["train", "--config", write(f / "bad.yaml", text), "--output-dir", f / "run"]


def sets(f, *items) -> list:
    """``train`` with the tiny preset and ``--set`` items."""
    return ["train", "--config", TINY, "--output-dir", f / "run", *[a for item in items for a in ("--set", item)]]


def images(f, inputs, damage=None) -> Path:
    """A copy of the tiny image dataset (images, captions, train.jsonl), damaged by ``damage(folder)``."""
    return inputs.copy("train_images", f, damage)


def raw(f, inputs, *items, data_damage=None, comp_damage=None) -> list:
    """``train`` from raw images with the tiny pipeline's T5 and VAE (copies), plus ``--set`` items."""
    comp = inputs.copy("pipeline", f, comp_damage)
    return sets(f, f"data.root={images(f, inputs, data_damage)}", f"t5={comp}", f"vae={comp}", *items)


def cached(f, inputs, damage=None, *items) -> list:
    """``train`` from a copy of the feature cache (damaged by ``damage(cache)``), plus ``--set`` items."""
    cache = inputs.copy("feature_cache", f, damage)
    return sets(f, f"data.root={images(f, inputs)}", f"data.features={cache}", *items)


def extract(f, inputs, *items, out=None, data_damage=None, comp_damage=None) -> list:
    comp = inputs.copy("pipeline", f, comp_damage)
    return ["extract-features", "--config", TINY, "--out", out or f / "cache", "--set",
            f"data.root={images(f, inputs, data_damage)}", "--set", f"t5={comp}", "--set", f"vae={comp}",
            *[a for item in items for a in ("--set", item)]]


def resume(f, inputs, damage=None, *items, from_raw=False) -> list:
    """``train --resume`` of a copy of the finished two-checkpoint run, damaged by ``damage(run)``."""
    run = inputs.copy("train_run", f, damage)
    data = raw(f, inputs) if from_raw else cached(f, inputs)
    data[data.index("--output-dir") + 1] = run
    return [*data, "--resume", *[a for item in items for a in ("--set", item)]]


def caption(f, inputs, *extra, folder=None, model=None) -> list:
    if folder is None:
        folder = images(f, inputs)
    return ["caption", folder, "--out", f / "captions.jsonl", "--model", model or inputs.copy("llava", f),
            "--max-new-tokens", "2", *extra]


def vocab(path, *extra) -> list:
    return ["vocab", path, *extra]


def blank_spacy(folder: Path, damage=None) -> Path:
    import spacy

    spacy.blank("en").to_disk(folder)
    if damage is not None:
        damage(folder)
    return folder


def captions_out(f, lines: list) -> Path:
    """A captions.jsonl from an earlier run (lines as given: str or bytes)."""
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    return write(f / "captions.jsonl", data)


def caption_after(f, inputs, lines: list) -> list:
    """``caption`` into a captions.jsonl an earlier run left with ``lines``."""
    captions_out(f, lines)
    return caption(f, inputs)


def good_record(name: str) -> str:
    return json.dumps({"path": name, "caption": "a red square", "model": "m", "prompt": "p"})


def unlink(path: Path):
    path.unlink()


def bad_png(folder: Path, name: str = "img005.png"):
    write(folder / name, b"not a png at all")


CLI_CASES = [
    # --- train: the config file and --set overrides
    CliCase("train: config file missing", lambda f, i: ["train", "--config", f / "nope.yaml"],
            r"no config file or preset '.*nope\.yaml'; presets: .*tiny_stage2"),
    CliCase("train: unknown preset", lambda f, i: ["train", "--config", "tiny_stage9"],
            r"no config file or preset 'tiny_stage9'; presets: .*tiny_stage2"),
    CliCase("train: config is a folder", lambda f, i: ["train", "--config", f],
            r"config .* is a folder, not a YAML file"),
    CliCase("train: malformed YAML", lambda f, i: config_file(f, "model: tiny\nbatch_size: [1, 2\nmax_steps: 3\n"),
            r"config file .*bad\.yaml: invalid YAML at line \d+"),
    CliCase("train: incomplete YAML (a preset cut off)",
            lambda f, i: config_file(f, "model: tiny\ndata: {resolution: 16, multi_sc"),
            r"config file .*bad\.yaml: invalid YAML at line 2"),
    CliCase("train: empty config file", lambda f, i: config_file(f, ""), r"config file .*bad\.yaml is empty"),
    CliCase("train: whitespace-only config file", lambda f, i: config_file(f, "  \n\n   \n"),
            r"config file .*bad\.yaml is empty"),
    CliCase("train: config is a YAML list", lambda f, i: config_file(f, "- batch_size\n- 4\n"),
            r"config file .*bad\.yaml holds a YAML list, not a mapping"),
    CliCase("train: non-UTF-8 config file", lambda f, i: config_file(f, b"model: tiny\nmax_steps: \xff\xfe\n"),
            r"cannot read config file .*bad\.yaml: not UTF-8 text \(byte 23"),
    CliCase("train: very long config line", lambda f, i: config_file(f, f"model: {LONG}\n"),
            r"config\.model must be a model preset: .*10,01\d characters\) \(in config file .*bad\.yaml\)"),
    CliCase("train: unknown key in the config file", lambda f, i: config_file(f, "model: tiny\nbatch_sise: 4\n"),
            r"unknown config keys \['batch_sise'\] \(in config file .*bad\.yaml\); known: .*batch_size"),
    CliCase("train: wrong type (batch_size: abc)", lambda f, i: config_file(f, "batch_size: abc\n"),
            r"config\.batch_size must be a whole number, got 'abc' \(in config file .*bad\.yaml\)"),
    CliCase("train: a list where a number goes", lambda f, i: sets(f, "optim.lr=[1, 2]"),
            r"config\.optim\.lr must be a number, got \[1, 2\] \(from --set optim\.lr=\[1, 2\]\)"),
    CliCase("train: a number where a section goes", lambda f, i: sets(f, "data=3"),
            r"config\.data must be a section of keys .*got 3 \(from --set data=3\)"),
    CliCase("train: text where true/false goes", lambda f, i: sets(f, "data.multi_scale=maybe"),
            r"config\.data\.multi_scale must be true or false, got 'maybe'"),
    CliCase("train: batch_size zero", lambda f, i: sets(f, "batch_size=0"),
            r"config\.batch_size must be at least 1, got 0 \(from --set batch_size=0\)"),
    CliCase("train: negative grad_accum", lambda f, i: sets(f, "grad_accum=-2"),
            r"config\.grad_accum must be at least 1, got -2"),
    CliCase("train: max_steps zero", lambda f, i: sets(f, "max_steps=0"), r"config\.max_steps must be at least 1"),
    CliCase("train: save_every zero", lambda f, i: sets(f, "save_every=0"), r"config\.save_every must be at least 1"),
    CliCase("train: keep_checkpoints zero", lambda f, i: sets(f, "keep_checkpoints=0"),
            r"config\.keep_checkpoints must be at least 1"),
    CliCase("train: negative learning rate", lambda f, i: sets(f, "optim.lr=-1e-4"),
            r"config\.optim\.lr must be positive, got -0\.0001 \(from --set optim\.lr=-1e-4\)"),
    CliCase("train: NaN learning rate", lambda f, i: sets(f, "optim.lr=.nan"), r"config\.optim\.lr must be positive, got nan"),
    CliCase("train: caption_dropout above 1", lambda f, i: sets(f, "caption_dropout=1.5"),
            r"config\.caption_dropout must be between 0 and 1, got 1\.5"),
    CliCase("train: unknown mixed_precision", lambda f, i: sets(f, "mixed_precision=fp8"),
            r"config\.mixed_precision must be one of no, bf16, fp16, got 'fp8'"),
    CliCase("train: unknown model preset", lambda f, i: sets(f, "model=XL-9"),
            r"config\.model must be a model preset: one of .*tiny.*got 'XL-9'"),
    CliCase("train: model_overrides that do not fit together", lambda f, i: sets(f, "model_overrides.num_heads=5"),
            r"config\.model tiny with model_overrides .* is not a valid model: hidden_size 48 is not divisible by num_heads 5"),
    CliCase("train: unknown model setting", lambda f, i: sets(f, "model_overrides.layers=3"),
            r"unknown model setting config\.model_overrides\.layers \(from --set model_overrides\.layers=3\)"),
    CliCase("train: zero resolution", lambda f, i: sets(f, "data.resolution=0"),
            r"config\.data\.resolution must be between 1 and 8192 \(pixels\), got 0"),
    CliCase("train: absurd resolution", lambda f, i: sets(f, "data.resolution=1000000"),
            r"config\.data\.resolution must be between 1 and 8192 \(pixels\), got 1000000"),
    CliCase("train: negative scale", lambda f, i: sets(f, "data.scales=[-16]"), r"config\.data\.scales must be a list of resolutions"),
    CliCase("train: max_length longer than the model's", lambda f, i: sets(f, "max_length=300"),
            r"config\.max_length 300 is longer than the model's caption length \(model_max_length 120\)"),
    CliCase("train: init_from and init_from_dit both", lambda f, i: sets(f, "init_from=a", "init_from_dit=b"),
            r"config sets both init_from and init_from_dit"),
    CliCase("train: --set without =", lambda f, i: sets(f, "batch_size"),
            r"--set batch_size is not key=value \(e\.g\. --set optim\.lr=1e-4\)"),
    CliCase("train: --set with an empty key", lambda f, i: sets(f, "=4"), r"--set =4: the key is empty"),
    CliCase("train: --set under a value", lambda f, i: sets(f, "batch_size.x=1"),
            r"--set batch_size\.x=1: config\.batch_size is a value, not a section"),
    CliCase("train: --set with malformed YAML", lambda f, i: sets(f, "optim.betas=[0.9, 0.99"),
            r"cannot read --set optim\.betas=\[0\.9, 0\.99: invalid YAML"),
    CliCase("train: very long --set value", lambda f, i: sets(f, f"mixed_precision={LONG}"),
            r"config\.mixed_precision must be one of no, bf16, fp16, got 'a red square .*\(10,01\d characters\)"),
    # --- train: the data
    CliCase("train: missing data folder", lambda f, i: sets(f, f"data.root={f / 'nope'}"),
            r"image folder not found: .*nope"),
    CliCase("train: no data source", lambda f, i: sets(f), r"give exactly one data source: data\.root"),
    CliCase("train: two data sources",
            lambda f, i: sets(f, f"data.root={images(f, i)}", f"data.manifest={f / 'train-images' / 'train.jsonl'}"),
            r"give exactly one data source"),
    CliCase("train: image folder with only non-image files",
            lambda f, i: sets(f, f"data.root={write(f / 'data' / 'notes.txt', 'hello').parent}"),
            r"no images \(\.png, .*\) in .*data"),
    CliCase("train: a non-image file named .png", lambda f, i: raw(f, i, data_damage=bad_png),
            r"cannot read image .*img005\.png: .*set data\.skip_bad=true"),
    CliCase("train: every image unreadable, with skip_bad",
            lambda f, i: raw(f, i, "data.skip_bad=true", "batch_size=8",
                             data_damage=lambda d: [bad_png(d, p.name) for p in d.glob("*.png")]),
            r"every image of step 0's batch was unreadable .*cannot read image .*img00\d\.png"),
    CliCase("train: missing caption file", lambda f, i: raw(f, i, data_damage=lambda d: unlink(d / "img003.txt")),
            r"missing caption for .*img003\.png: expected .*img003\.txt \(or set data\.skip_bad=true\)"),
    CliCase("train: non-UTF-8 caption", lambda f, i: raw(f, i, data_damage=lambda d: write(d / "img003.txt", b"a \xff red")),
            r"cannot read caption file .*img003\.txt: not UTF-8 text \(byte 2"),
    CliCase("train: missing manifest", lambda f, i: sets(f, f"data.manifest={f / 'nope.jsonl'}"),
            r"manifest not found: .*nope\.jsonl"),
    CliCase("train: corrupt manifest line",
            lambda f, i: sets(f, f"data.manifest={write(f / 'm.jsonl', json.dumps({'path': 'a.png'}) + chr(10) + '{oops')}"),
            r"m\.jsonl:2: not valid JSON"),
    CliCase("train: manifest line without a path",
            lambda f, i: sets(f, f"data.manifest={write(f / 'm.jsonl', json.dumps({'caption': 'x'}))}"),
            r"m\.jsonl:1: bad manifest line .*need at least"),
    CliCase("train: manifest width of the wrong type",
            lambda f, i: sets(f, f"data.manifest={write(f / 'm.jsonl', json.dumps({'path': 'a.png', 'width': 'abc'}))}"),
            r"m\.jsonl:1: 'width' must be a whole number, at least 1, got 'abc'"),
    CliCase("train: empty manifest", lambda f, i: sets(f, f"data.manifest={write(f / 'm.jsonl', chr(10))}"),
            r"manifest .*m\.jsonl lists no items"),
    CliCase("train: missing VAE folder", lambda f, i: sets(f, f"data.root={images(f, i)}", f"t5={f / 'nope'}", f"vae={f / 'nope'}"),
            r"config\.vae: no VAE at .*nope"),
    CliCase("train: no T5 folder given", lambda f, i: sets(f, f"data.root={images(f, i)}", f"vae={i.copy('pipeline', f)}"),
            r"config\.t5 is not set: captions are encoded with a T5 folder \(t5: PATH\); or train from a feature cache"),
    CliCase("train: truncated VAE weights",
            lambda f, i: raw(f, i, comp_damage=lambda c: truncate(c / "vae" / "diffusion_pytorch_model.safetensors")),
            r"config\.vae: cannot load VAE .*vae"),
    CliCase("train: corrupt T5 config.json",
            lambda f, i: raw(f, i, comp_damage=lambda c: write(c / "text_encoder" / "config.json", "{")),
            r"config\.t5: cannot load T5 encoder .*text_encoder"),
    CliCase("train: missing feature cache", lambda f, i: sets(f, f"data.root={images(f, i)}", f"data.features={f / 'nope'}"),
            r"no feature cache at .*nope \(missing features\.json\); run `pixart-bench extract-features`"),
    CliCase("train: corrupt features.json", lambda f, i: cached(f, i, lambda c: write(c / "features.json", '{"t5": ')),
            r"cannot read feature cache index .*features\.json: invalid JSON"),
    CliCase("train: feature cache shard that is not safetensors",
            lambda f, i: cached(f, i, lambda c: write(c / "shard-r00-00000.safetensors", b"PK\x03\x04 a zip file")),
            r"feature cache shard .*shard-r00-00000\.safetensors is truncated or not a safetensors file .*delete it"),
    CliCase("train: truncated feature cache shard", lambda f, i: cached(f, i, lambda c: truncate(c / "shard-r00-00000.safetensors")),
            r"feature cache shard .*shard-r00-00000\.safetensors is truncated"),
    CliCase("train: feature cache made at another resolution", lambda f, i: cached(f, i, None, "data.resolution=32"),
            r"feature cache .*feature-cache was made with different resolution \(resolution=16; the config has resolution=32\)"),
    CliCase("train: images missing from the feature cache",
            lambda f, i: sets(f, f"data.root={images(f, i)}", f"data.features={i.copy('feature_cache', f)}"),
            r"8 items are not in the feature cache .*run `pixart-bench extract-features` first"),
    CliCase("train: init_from missing", lambda f, i: cached(f, i, None, f"init_from={f / 'nope'}"), r"not found: .*nope"),
    # --- train: the run folder and resume
    CliCase("train: output_dir is a file", lambda f, i: ["train", "--config", TINY, "--output-dir", write(f / "out", "x")],
            r"config\.output_dir .*out is a file, not a folder"),
    CliCase("train: output_dir holds a run, no --resume",
            lambda f, i: [a for a in resume(f, i) if a != "--resume"],
            r"output_dir .*train-run already holds a run \(latest checkpoint step-0000002\): resume it \(--resume"),
    CliCase("train: resume, truncated training_state.pt",
            lambda f, i: resume(f, i, lambda r: truncate(r / STEP2 / "training_state.pt")),
            r"cannot resume from checkpoint .*step-0000002: cannot read .*training_state\.pt.*Delete .*step-0000002 "
            r"to resume from the one before \(step-0000001\)"),
    CliCase("train: resume, empty training_state.pt",
            lambda f, i: resume(f, i, lambda r: write(r / STEP2 / "training_state.pt", b"")),
            r"cannot resume from checkpoint .*step-0000002: cannot read .*training_state\.pt"),
    CliCase("train: resume, training_state.pt of another kind",
            lambda f, i: resume(f, i, lambda r: __import__("torch").save({"step": "two"}, r / STEP2 / "training_state.pt")),
            r"training_state\.pt is not a training state \(step, optimizer, lr_scheduler\)"),
    CliCase("train: resume, corrupt model.safetensors",
            lambda f, i: resume(f, i, lambda r: write(r / STEP2 / "model" / "model.safetensors", b"\x00" * 64)),
            r"cannot resume from checkpoint .*step-0000002: .*model\.safetensors.*Delete .*step-0000002"),
    CliCase("train: resume, truncated EMA weights",
            lambda f, i: resume(f, i, lambda r: truncate(r / STEP2 / "ema" / "model.safetensors")),
            r"cannot resume from checkpoint .*step-0000002: .*ema.*model\.safetensors"),
    CliCase("train: resume, corrupt checkpoint config.json",
            lambda f, i: resume(f, i, lambda r: write(r / STEP2 / "model" / "config.json", '{"hidden_size": ')),
            r"cannot resume from checkpoint .*step-0000002: .*config\.json: invalid JSON"),
    CliCase("train: resume, corrupt train_config.yaml",
            lambda f, i: resume(f, i, lambda r: write(r / STEP2 / "train_config.yaml", "model: [tiny\n")),
            r"cannot resume from checkpoint .*step-0000002: cannot read checkpoint config .*train_config\.yaml: invalid YAML"),
    CliCase("train: resume, the only checkpoint damaged",
            lambda f, i: resume(f, i, lambda r: (__import__("shutil").rmtree(r / STEP1),
                                                 truncate(r / STEP2 / "training_state.pt"))),
            r"Delete .*step-0000002 to start the run over"),
    CliCase("train: resume, corrupt metrics.jsonl line",
            lambda f, i: resume(f, i, lambda r: write(r / "metrics.jsonl", '{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')),
            r"metrics\.jsonl:2: not a metrics record .*fix or delete that line"),
    CliCase("train: resume a run of another model", lambda f, i: resume(f, i, None, "model_overrides.depth=3", from_raw=True),
            r"cannot resume .*train-run: .*The run was trained with another model; resume it with its own config "
            r"\(.*train_config\.yaml\)"),
    CliCase("train: resume, class_conditional changed",
            lambda f, i: resume(f, i, None, "class_conditional=true", "num_classes=4", from_raw=True)
            + ["--set", "data.root=null", "--set", f"data.manifest={f / 'train-images' / 'train.jsonl'}"],
            r"it was trained without class labels \(class_conditional\), the config says class_conditional=True"),
    # --- extract-features
    CliCase("extract-features: --batch-size 0", lambda f, i: ["extract-features", "--out", f / "c", "--batch-size", "0"],
            r"Invalid value for '--batch-size'"),
    CliCase("extract-features: negative --shard-size", lambda f, i: ["extract-features", "--out", f / "c", "--shard-size", "-1"],
            r"Invalid value for '--shard-size'"),
    CliCase("extract-features: config file missing",
            lambda f, i: ["extract-features", "--out", f / "c", "--config", f / "nope.yaml"], r"no config file or preset"),
    CliCase("extract-features: wrong type in --set", lambda f, i: extract(f, i, "max_length=long"),
            r"config\.max_length must be a whole number, got 'long' \(from --set max_length=long\)"),
    CliCase("extract-features: no VAE given", lambda f, i: ["extract-features", "--config", TINY, "--out", f / "c",
                                                            "--set", f"data.root={images(f, i)}"],
            r"config\.vae is not set: images are encoded with a VAE folder \(vae: PATH\)"),
    CliCase("extract-features: missing T5 folder", lambda f, i: extract(f, i, f"t5={f / 'nope'}"),
            r"config\.t5: no T5 encoder at .*nope"),
    CliCase("extract-features: truncated T5 weights",
            lambda f, i: extract(f, i, comp_damage=lambda c: truncate(c / "text_encoder" / "model.safetensors")),
            r"config\.t5: cannot load T5 encoder .*text_encoder"),
    CliCase("extract-features: --out is a file", lambda f, i: extract(f, i, out=write(f / "cache", "x")),
            r"feature cache .*cache is a file, not a folder"),
    CliCase("extract-features: cache made with other settings",
            lambda f, i: extract(f, i, "data.resolution=32", out=i.copy("feature_cache", f)),
            r"feature cache .*feature-cache was made with different .*resolution=16.*the config has .*resolution=32.*"
            r"extract into another folder"),
    CliCase("extract-features: corrupt features.json",
            lambda f, i: extract(f, i, out=write(i.copy("feature_cache", f) / "features.json", b"\x00\x01").parent),
            r"feature cache index .*features\.json"),
    CliCase("extract-features: shard that is not safetensors",
            lambda f, i: extract(f, i, out=write(i.copy("feature_cache", f) / "shard-r00-00000.safetensors", "{}").parent),
            r"feature cache shard .*shard-r00-00000\.safetensors is truncated or not a safetensors file"),
    CliCase("extract-features: a non-image file named .png", lambda f, i: extract(f, i, data_damage=bad_png),
            r"cannot read image .*img005\.png"),
    CliCase("extract-features: non-UTF-8 caption",
            lambda f, i: extract(f, i, data_damage=lambda d: write(d / "img001.txt", b"\xc3\x28")),
            r"cannot read caption file .*img001\.txt: not UTF-8"),
    CliCase("extract-features: corrupt manifest line",
            lambda f, i: extract(f, i, "data.root=null", f"data.manifest={write(f / 'm.jsonl', '[1, 2]')}"),
            r"m\.jsonl:1: bad manifest line"),
    # --- caption
    CliCase("caption: missing image folder", lambda f, i: caption(f, i, folder=f / "nope"),
            r"image folder .*nope does not exist"),
    CliCase("caption: image folder is a file", lambda f, i: caption(f, i, folder=write(f / "x.png", "x")),
            r".*x\.png is a file, not an image folder"),
    CliCase("caption: folder with only non-image files", lambda f, i: caption(f, i, folder=write(f / "d" / "a.txt", "x").parent),
            r"no images \(\.png, .*\) in .*d"),
    CliCase("caption: a non-image file named .png", lambda f, i: caption(f, i, folder=images(f, i, bad_png)),
            r"cannot read image .*img005\.png"),
    CliCase("caption: missing model folder", lambda f, i: caption(f, i, model=f / "no-llava"),
            r"LLaVA model '.*no-llava' not found: .*nothing is downloaded"),
    CliCase("caption: model folder without config.json", lambda f, i: caption(f, i, model=write(f / "m" / "x", "x").parent),
            r"no LLaVA model at .*m: .*config\.json does not exist"),
    CliCase("caption: corrupt model config.json",
            lambda f, i: caption(f, i, model=write(i.copy("llava", f) / "config.json", "{").parent),
            r"cannot load LLaVA model folder .*llava"),
    CliCase("caption: truncated model weights",
            lambda f, i: caption(f, i, model=truncate(i.copy("llava", f) / "model.safetensors").parent),
            r"cannot load LLaVA model folder .*llava: .*header"),
    CliCase("caption: corrupt tokenizer.json",
            lambda f, i: caption(f, i, model=write(i.copy("llava", f) / "tokenizer.json", "[").parent),
            r"cannot load LLaVA model folder .*llava"),
    CliCase("caption: output JSONL with a corrupt line",
            lambda f, i: caption_after(f, i, [good_record("a.png"), "{garbage", good_record("b.png")]),
            r"captions\.jsonl: line 2 is not a caption record .*fix or delete that line \(the other captions are kept\)"),
    CliCase("caption: output JSONL with a non-UTF-8 line",
            lambda f, i: caption_after(f, i, [good_record("a.png"), b"\xff\xfe", good_record("b.png")]),
            r"captions\.jsonl: line 2 is not a caption record"),
    CliCase("caption: --out is a folder", lambda f, i: ["caption", f, "--out", f, "--model", "m"],
            r"Invalid value for '--out'"),
    CliCase("caption: --batch-size 0", lambda f, i: ["caption", f, "--out", f / "c.jsonl", "--model", "m", "--batch-size", "0"],
            r"Invalid value for '--batch-size'"),
    CliCase("caption: --max-new-tokens -1",
            lambda f, i: ["caption", f, "--out", f / "c.jsonl", "--model", "m", "--max-new-tokens", "-1"],
            r"Invalid value for '--max-new-tokens'"),
    CliCase("caption: unknown device", lambda f, i: caption(f, i, "--device", "gpu9"),
            r"device 'gpu9' is not a torch device"),
    CliCase("caption: whitespace-only prompt", lambda f, i: caption(f, i, "--prompt", "   "),
            r"the prompt is empty"),
    # --- vocab
    CliCase("vocab: missing captions file", lambda f, i: vocab(f / "nope.txt"), r"caption file .*nope\.txt does not exist"),
    CliCase("vocab: empty file", lambda f, i: vocab(write(f / "caps.txt", "")), r"no captions in .*caps\.txt \(empty or blank\)"),
    CliCase("vocab: whitespace-only file", lambda f, i: vocab(write(f / "caps.jsonl", "\n  \n\t\n")),
            r"no captions in .*caps\.jsonl"),
    CliCase("vocab: non-UTF-8 file", lambda f, i: vocab(write(f / "caps.txt", b"a cat\n\xff a dog\n")),
            r"cannot read caption file .*caps\.txt: not UTF-8 text \(byte 6"),
    CliCase("vocab: corrupt JSONL line", lambda f, i: vocab(write(f / "caps.jsonl", '{"caption": "a cat"}\n{"caption": \n')),
            r"caps\.jsonl:2: not valid JSON"),
    CliCase("vocab: JSONL record without a caption", lambda f, i: vocab(write(f / "caps.jsonl", '{"caption": 3}\n')),
            r"caps\.jsonl:1: no caption field \(expected one of caption, prompt, text\)"),
    CliCase("vocab: folder without .txt files", lambda f, i: vocab(write(f / "d" / "a.json", "{}").parent),
            r"no \.txt caption files in .*d"),
    CliCase("vocab: folder with a non-UTF-8 caption file", lambda f, i: vocab(write(f / "d" / "a.txt", b"\x80").parent),
            r"cannot read caption file .*a\.txt: not UTF-8"),
    CliCase("vocab: unsupported file type", lambda f, i: vocab(write(f / "caps.csv", "a cat\n")),
            r"unsupported caption file .*caps\.csv: expected \.jsonl, \.txt or a folder"),
    CliCase("vocab: unknown spaCy model",
            lambda f, i: vocab(write(f / "caps.txt", f"a cat\n{LONG}\n"), "--spacy-model", "no_such_spacy_model"),
            r"spaCy model 'no_such_spacy_model' is missing .*--spacy-model"),
    CliCase("vocab: spaCy pipeline without a tagger",
            lambda f, i: vocab(write(f / "caps.txt", "a cat\n"), "--spacy-model", blank_spacy(f / "nlp")),
            r"spaCy pipeline '.*nlp' has no part-of-speech tagger"),
    CliCase("vocab: corrupt spaCy pipeline folder",
            lambda f, i: vocab(write(f / "caps.txt", "a cat\n"), "--spacy-model",
                               blank_spacy(f / "nlp", lambda d: write(d / "config.cfg", "[nlp\nlang = "))),
            r"cannot load spaCy pipeline folder .*nlp"),
    CliCase("vocab: --min-count 0", lambda f, i: vocab(write(f / "caps.txt", "a cat\n"), "--min-count", "0"),
            r"Invalid value for '--min-count'"),
    CliCase("vocab: --json is a folder", lambda f, i: vocab(write(f / "caps.txt", "a cat\n"), "--json", f),
            r"Invalid value for '--json'"),
]


def damaged_run(f, inputs) -> Path:
    """A copy of the finished run with its latest training state truncated."""
    return inputs.copy("train_run", f, lambda r: truncate(r / STEP2 / "training_state.pt"))


def training_config(f, **changes) -> tuple:
    return (TrainConfig(output_dir=str(f / "run"), **changes),)


API_CASES = [
    ApiCase("load_config: missing file", lambda f, i: (f / "nope.yaml",), load_config, ConfigError,
            r"no config file or preset '.*nope\.yaml'"),
    ApiCase("load_config: malformed YAML names the line", lambda f, i: (write(f / "c.yaml", "a: 1\nb: [\n"),),
            load_config, ConfigError, r"config file .*c\.yaml: invalid YAML at line 3"),
    ApiCase("load_config: wrong type names key and file", lambda f, i: (write(f / "c.yaml", "optim: {lr: fast}\n"),),
            load_config, ConfigError, r"config\.optim\.lr must be a number, got 'fast' \(in config file .*c\.yaml\)"),
    ApiCase("load_config: out of range names the --set", lambda f, i: (TINY, ["log_every=0"]), load_config, ConfigError,
            r"config\.log_every must be at least 1, got 0 \(from --set log_every=0\)"),
    ApiCase("load_config: bad override", lambda f, i: (None, ["optim.lr"]), load_config, ConfigError,
            r"--set optim\.lr is not key=value"),
    ApiCase("load_config: a ConfigError is a ValueError", lambda f, i: (None, ["optim.betas=[2, 3]"]), load_config,
            ValueError, r"config\.optim\.betas must be two numbers in \[0, 1\)"),
    ApiCase("train: a config built in Python is validated", lambda f, i: training_config(f, batch_size=-1), train,
            ConfigError, r"config\.batch_size must be at least 1, got -1"),
    ApiCase("train: a config built in Python with a wrong type", lambda f, i: training_config(f, max_steps="10"), train,
            ConfigError, r"config\.max_steps must be a whole number, got '10'"),
    ApiCase("train: resume from a damaged checkpoint",
            lambda f, i: (load_config(TINY, [f"output_dir={damaged_run(f, i)}", f"data.root={images(f, i)}"]),),
            partial(train, resume=True, progress=False), CheckpointError,
            r"cannot resume from checkpoint .*step-0000002: .*Delete"),
    ApiCase("train: a VAE folder that is a file",
            lambda f, i: (load_config(TINY, [f"output_dir={f / 'run'}", f"data.root={images(f, i)}",
                                             f"vae={write(f / 'vae', 'x')}", f"t5={f / 'vae'}"]),),
            partial(train, progress=False), PipelineError, r"config\.vae: no VAE at .*vae"),
    ApiCase("read_items: corrupt manifest line",
            lambda f, i: (write(f / "m.jsonl", json.dumps({"path": "a.png", "caption": "x"}) + "\n{\n"),),
            lambda m: read_items(manifest=m), DataError, r"m\.jsonl:2: not valid JSON"),
    ApiCase("read_items: manifest class of the wrong type",
            lambda f, i: (write(f / "m.jsonl", json.dumps({"path": "a.png", "class": -1})),),
            lambda m: read_items(manifest=m), DataError, r"m\.jsonl:1: 'class' must be a whole number, at least 0, got -1"),
    ApiCase("read_items: data root is a file", lambda f, i: (write(f / "data", "x"),), lambda r: read_items(root=r),
            DataError, r"data is a file, not an image folder"),
    ApiCase("read_items: non-UTF-8 caption", lambda f, i: (images(f, i, lambda d: write(d / "img002.txt", b"\xff")),),
            lambda r: read_items(root=r), DataError, r"cannot read caption file .*img002\.txt: not UTF-8"),
    ApiCase("FeatureStore: shard that is not safetensors",
            lambda f, i: (write(i.copy("feature_cache", f) / "shard-r00-00000.safetensors", LONG).parent,),
            FeatureStore, DataError, r"shard-r00-00000\.safetensors is truncated or not a safetensors file"),
    ApiCase("FeatureStore.check: a cache made with other settings", lambda f, i: (i.copy("feature_cache", f),),
            lambda c: FeatureStore(c).check({"max_length": 77}), DataError,
            r"was made with different max_length \(max_length=120; the config has max_length=77\)"),
    ApiCase("find_images: missing folder", lambda f, i: (f / "nope",), find_images, DataError,
            r"image folder .*nope does not exist"),
    ApiCase("read_done: a corrupt line is an error, the file is kept",
            lambda f, i: (captions_out(f, [good_record("a.png"), "not json", good_record("b.png")]),), read_done,
            DataError, r"captions\.jsonl: line 2 is not a caption record"),
    ApiCase("caption_images: corrupt model weights",
            lambda f, i: (images(f, i), f / "c.jsonl", write(i.copy("llava", f) / "model.safetensors", b"").parent),
            partial(caption_images, progress=False), DataError, r"cannot load LLaVA model folder .*llava"),
    ApiCase("read_captions: empty file", lambda f, i: (write(f / "caps.txt", ""),), read_captions, DataError,
            r"no captions in .*caps\.txt"),
    ApiCase("load_spacy: unknown model", lambda f, i: ("no_such_spacy_model",), load_spacy, DataError,
            r"spaCy model 'no_such_spacy_model' is missing"),
]

