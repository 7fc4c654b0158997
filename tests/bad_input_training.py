"""Bad-input cases for the training commands and loaders: ``train``, ``extract-features``, and
``load_config``, the data readers, the feature cache and resume (see tests/bad_input.py); with the
cases of ``caption`` and ``vocab`` (tests/bad_input_captions.py) taken in.

Case ids start with the command they run (``"COMMAND: what is wrong"``) or the library call."""

import json
from functools import partial

from bad_input import ApiCase, CliCase, truncate, write
from bad_input_captions import API_CASES as CAPTION_API
from bad_input_captions import CLI_CASES as CAPTION_CLI
from bad_input_captions import LONG, bad_png, images

import torch

from pixart.checkpoints import CheckpointError
from pixart.data import DataError, read_items
from pixart.errors import PipelineError
from pixart.features import FeatureStore
from pixart.train import train
from pixart.train_config import ConfigError, TrainConfig, load_config

TINY = "tiny_stage2"
STEP1, STEP2 = "checkpoints/step-0000001", "checkpoints/step-0000002"
SHARD = "shard-r00-00000.safetensors"  # the feature cache's first shard

def config_file(f, text) -> list:
    """``train`` with the config file ``text`` (str or bytes)."""
    return ["train", "--config", write(f / "bad.yaml", text), "--output-dir", f / "run"]


def set_args(items) -> list:
    return [a for item in items for a in ("--set", item)]


def sets(f, *items) -> list:
    """``train`` with the tiny preset and ``--set`` items."""
    return ["train", "--config", TINY, "--output-dir", f / "run", *set_args(items)]


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
    return ["extract-features", "--config", TINY, "--out", out or f / "cache",
            *set_args([f"data.root={images(f, inputs, data_damage)}", f"t5={comp}", f"vae={comp}", *items])]


def resume(f, inputs, damage=None, *items, from_raw=False) -> list:
    """``train --resume`` of a copy of the finished two-checkpoint run, damaged by ``damage(run)``."""
    run = inputs.copy("train_run", f, damage)
    data = raw(f, inputs) if from_raw else cached(f, inputs)
    data[data.index("--output-dir") + 1] = run
    return [*data, "--resume", *set_args(items)]


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
    *[CliCase(f"train: {what}", partial(lambda items, f, i: sets(f, *items), items), match) for what, items, match in [
        # (what is wrong, --set items, the message)
        ("a list where a number goes", ["optim.lr=[1, 2]"],
         r"config\.optim\.lr must be a number, got \[1, 2\] \(from --set optim\.lr=\[1, 2\]\)"),
        ("a number where a section goes", ["data=3"],
         r"config\.data must be a section of keys .*got 3 \(from --set data=3\)"),
        ("text where true/false goes", ["data.multi_scale=maybe"],
         r"config\.data\.multi_scale must be true or false, got 'maybe'"),
        ("batch_size zero", ["batch_size=0"],
         r"config\.batch_size must be at least 1, got 0 \(from --set batch_size=0\)"),
        ("negative grad_accum", ["grad_accum=-2"], r"config\.grad_accum must be at least 1, got -2"),
        ("max_steps zero", ["max_steps=0"], r"config\.max_steps must be at least 1"),
        ("save_every zero", ["save_every=0"], r"config\.save_every must be at least 1"),
        ("keep_checkpoints zero", ["keep_checkpoints=0"], r"config\.keep_checkpoints must be at least 1"),
        ("negative learning rate", ["optim.lr=-1e-4"],
         r"config\.optim\.lr must be positive, got -0\.0001 \(from --set optim\.lr=-1e-4\)"),
        ("NaN learning rate", ["optim.lr=.nan"], r"config\.optim\.lr must be positive, got nan"),
        ("caption_dropout above 1", ["caption_dropout=1.5"],
         r"config\.caption_dropout must be between 0 and 1, got 1\.5"),
        ("unknown compile_mode", ["compile_mode=fast"],
         r"config\.compile_mode must be one of default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs, "
         r"got 'fast'"),
        ("unknown mixed_precision", ["mixed_precision=fp8"],
         r"config\.mixed_precision must be one of no, bf16, fp16, got 'fp8'"),
        ("unknown model preset", ["model=XL-9"], r"config\.model must be a model preset: one of .*tiny.*got 'XL-9'"),
        ("model_overrides that do not fit together", ["model_overrides.num_heads=5"],
         r"config\.model tiny with model_overrides .* is not a valid model: "
         r"hidden_size 48 is not divisible by num_heads 5"),
        ("unknown model setting", ["model_overrides.layers=3"],
         r"unknown model setting config\.model_overrides\.layers \(from --set model_overrides\.layers=3\)"),
        ("zero resolution", ["data.resolution=0"],
         r"config\.data\.resolution must be between 1 and 8192 \(pixels\), got 0"),
        ("absurd resolution", ["data.resolution=1000000"],
         r"config\.data\.resolution must be between 1 and 8192 .*got 1000000"),
        ("negative scale", ["data.scales=[-16]"], r"config\.data\.scales must be a list of resolutions"),
        ("max_length longer than the model's", ["max_length=300"],
         r"config\.max_length 300 is longer than the model's caption length \(model_max_length 120\)"),
        ("init_from and init_from_dit both", ["init_from=a", "init_from_dit=b"],
         r"config sets both init_from and init_from_dit"),
        ("--set without =", ["batch_size"], r"--set batch_size is not key=value \(e\.g\. --set optim\.lr=1e-4\)"),
        ("--set with an empty key", ["=4"], r"--set =4: the key is empty"),
        ("--set under a value", ["batch_size.x=1"],
         r"--set batch_size\.x=1: config\.batch_size is a value, not a section"),
        ("--set with malformed YAML", ["optim.betas=[0.9, 0.99"],
         r"cannot read --set optim\.betas=\[0\.9, 0\.99: invalid YAML"),
        ("very long --set value", [f"mixed_precision={LONG}"],
         r"config\.mixed_precision must be one of no, bf16, fp16, got 'a red square .*\(10,01\d characters\)"),
    ]],
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
    CliCase("train: missing caption file", lambda f, i: raw(f, i, data_damage=lambda d: (d / "img003.txt").unlink()),
            r"missing caption for .*img003\.png: expected .*img003\.txt \(or set data\.skip_bad=true\)"),
    CliCase("train: non-UTF-8 caption",
            lambda f, i: raw(f, i, data_damage=lambda d: write(d / "img003.txt", b"a \xff red")),
            r"cannot read caption file .*img003\.txt: not UTF-8 text \(byte 2"),
    CliCase("train: missing manifest", lambda f, i: sets(f, f"data.manifest={f / 'nope.jsonl'}"),
            r"manifest not found: .*nope\.jsonl"),
    CliCase("train: corrupt manifest line",
            lambda f, i: sets(f, "data.manifest=" + str(write(f / "m.jsonl", '{"path": "a.png"}\n{oops'))),
            r"m\.jsonl:2: not valid JSON"),
    CliCase("train: manifest line without a path",
            lambda f, i: sets(f, f"data.manifest={write(f / 'm.jsonl', json.dumps({'caption': 'x'}))}"),
            r"m\.jsonl:1: bad manifest line .*need at least"),
    CliCase("train: manifest width of the wrong type",
            lambda f, i: sets(f, "data.manifest=" + str(write(f / "m.jsonl", '{"path": "a.png", "width": "abc"}'))),
            r"m\.jsonl:1: 'width' must be a whole number, at least 1, got 'abc'"),
    CliCase("train: empty manifest", lambda f, i: sets(f, f"data.manifest={write(f / 'm.jsonl', chr(10))}"),
            r"manifest .*m\.jsonl lists no items"),
    CliCase("train: missing VAE folder",
            lambda f, i: sets(f, f"data.root={images(f, i)}", f"t5={f / 'nope'}", f"vae={f / 'nope'}"),
            r"config\.vae: no VAE at .*nope"),
    CliCase("train: no T5 folder given",
            lambda f, i: sets(f, f"data.root={images(f, i)}", f"vae={i.copy('pipeline', f)}"),
            r"config\.t5 is not set: captions are encoded with a T5 folder \(t5: PATH\); "
            r"or train from a feature cache"),
    CliCase("train: truncated VAE weights",
            lambda f, i: raw(f, i, comp_damage=lambda c: truncate(c / "vae" / "diffusion_pytorch_model.safetensors")),
            r"config\.vae: cannot load VAE .*vae"),
    CliCase("train: corrupt T5 config.json",
            lambda f, i: raw(f, i, comp_damage=lambda c: write(c / "text_encoder" / "config.json", "{")),
            r"config\.t5: cannot load T5 encoder .*text_encoder"),
    CliCase("train: missing feature cache",
            lambda f, i: sets(f, f"data.root={images(f, i)}", f"data.features={f / 'nope'}"),
            r"no feature cache at .*nope \(missing features\.json\); run `pixart-bench extract-features`"),
    CliCase("train: corrupt features.json", lambda f, i: cached(f, i, lambda c: write(c / "features.json", '{"t5": ')),
            r"cannot read feature cache index .*features\.json: invalid JSON"),
    CliCase("train: feature cache shard that is not safetensors",
            lambda f, i: cached(f, i, lambda c: write(c / SHARD, b"PK\x03\x04 a zip file")),
            r"feature cache shard .*shard-r00-00000\.safetensors is truncated or not a safetensors file .*delete it"),
    CliCase("train: truncated feature cache shard",
            lambda f, i: cached(f, i, lambda c: truncate(c / SHARD)),
            r"feature cache shard .*shard-r00-00000\.safetensors is truncated"),
    CliCase("train: feature cache made at another resolution", lambda f, i: cached(f, i, None, "data.resolution=32"),
            r"feature cache .*feature-cache was made with different resolution "
            r"\(resolution=16; the config has resolution=32\)"),
    CliCase("train: images missing from the feature cache",
            lambda f, i: sets(f, f"data.root={images(f, i)}", f"data.features={i.copy('feature_cache', f)}"),
            r"8 items are not in the feature cache .*run `pixart-bench extract-features` first"),
    CliCase("train: init_from missing",
            lambda f, i: cached(f, i, None, f"init_from={f / 'nope'}"), r"not found: .*nope"),
    # --- train: the run folder and resume
    CliCase("train: output_dir is a file",
            lambda f, i: ["train", "--config", TINY, "--output-dir", write(f / "out", "x")],
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
            lambda f, i: resume(f, i, lambda r: torch.save({"step": "two"}, r / STEP2 / "training_state.pt")),
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
            r"cannot resume from checkpoint .*step-0000002: cannot read checkpoint config "
            r".*train_config\.yaml: invalid YAML"),
    CliCase("train: resume, the only checkpoint damaged",
            lambda f, i: resume(f, i, lambda r: (__import__("shutil").rmtree(r / STEP1),
                                                 truncate(r / STEP2 / "training_state.pt"))),
            r"Delete .*step-0000002 to start the run over"),
    CliCase("train: resume, corrupt metrics.jsonl line",
            lambda f, i: resume(f, i, lambda r: write(r / "metrics.jsonl",
                                                      '{"step": 1}\n{"step": 2, "lo\n{"step": 3}')),
            r"metrics\.jsonl:2: not a metrics record .*fix or delete that line"),
    CliCase("train: resume a run of another model",
            lambda f, i: resume(f, i, None, "model_overrides.depth=3", from_raw=True),
            r"cannot resume .*train-run: .*The run was trained with another model; resume it with its own config "
            r"\(.*train_config\.yaml\)"),
    CliCase("train: resume, class_conditional changed",
            lambda f, i: resume(f, i, None, "class_conditional=true", "num_classes=4", from_raw=True)
            + ["--set", "data.root=null", "--set", f"data.manifest={f / 'train-images' / 'train.jsonl'}"],
            r"it was trained without class labels \(class_conditional\), the config says class_conditional=True"),
    # --- extract-features
    CliCase("extract-features: --batch-size 0",
            lambda f, i: ["extract-features", "--out", f / "c", "--batch-size", "0"],
            r"Invalid value for '--batch-size'"),
    CliCase("extract-features: negative --shard-size",
            lambda f, i: ["extract-features", "--out", f / "c", "--shard-size", "-1"],
            r"Invalid value for '--shard-size'"),
    CliCase("extract-features: config file missing",
            lambda f, i: ["extract-features", "--out", f / "c", "--config", f / "nope.yaml"],
            r"no config file or preset '.*nope\.yaml'"),
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
            lambda f, i: extract(f, i, out=i.copy("feature_cache", f, lambda c: write(c / SHARD, "{}"))),
            r"feature cache shard .*shard-r00-00000\.safetensors is truncated or not a safetensors file"),
    CliCase("extract-features: a non-image file named .png", lambda f, i: extract(f, i, data_damage=bad_png),
            r"cannot read image .*img005\.png"),
    CliCase("extract-features: non-UTF-8 caption",
            lambda f, i: extract(f, i, data_damage=lambda d: write(d / "img001.txt", b"\xc3\x28")),
            r"cannot read caption file .*img001\.txt: not UTF-8"),
    CliCase("extract-features: corrupt manifest line",
            lambda f, i: extract(f, i, "data.root=null", f"data.manifest={write(f / 'm.jsonl', '[1, 2]')}"),
            r"m\.jsonl:1: bad manifest line"),
    *CAPTION_CLI,
]


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
            lambda f, i: (load_config(TINY, [f"data.root={images(f, i)}", "output_dir=" + str(i.copy(
                "train_run", f, lambda r: truncate(r / STEP2 / "training_state.pt")))]),),
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
            lambda m: read_items(manifest=m), DataError,
            r"m\.jsonl:1: 'class' must be a whole number, at least 0, got -1"),
    ApiCase("read_items: data root is a file", lambda f, i: (write(f / "data", "x"),), lambda r: read_items(root=r),
            DataError, r"data is a file, not an image folder"),
    ApiCase("read_items: non-UTF-8 caption", lambda f, i: (images(f, i, lambda d: write(d / "img002.txt", b"\xff")),),
            lambda r: read_items(root=r), DataError, r"cannot read caption file .*img002\.txt: not UTF-8"),
    ApiCase("FeatureStore: shard that is not safetensors",
            lambda f, i: (write(i.copy("feature_cache", f) / SHARD, LONG).parent,),
            FeatureStore, DataError, r"shard-r00-00000\.safetensors is truncated or not a safetensors file"),
    ApiCase("FeatureStore.check: a cache made with other settings", lambda f, i: (i.copy("feature_cache", f),),
            lambda c: FeatureStore(c).check({"max_length": 77}), DataError,
            r"was made with different max_length \(max_length=120; the config has max_length=77\)"),
    *CAPTION_API,
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("train: output_dir holds another command's run", lambda f, i: [
        "train", "--config", TINY, "--output-dir", another_run(f, i)], r"output_dir .*demo-report " + TAKEN),
    CliCase("extract-features: --out holds another command's run", lambda f, i: extract(f, i, out=another_run(f, i)),
            r"--out .*demo-report " + TAKEN),
]
