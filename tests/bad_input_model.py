"""Bad-input cases for the model half: ``params``, ``convert``, ``sample``, ``export-diffusers``, and the
loaders, pipeline and model they use (see tests/bad_input.py)."""

import json
import shutil

import pytest
import torch
from bad_input import ApiCase, CliCase, truncate

from pixart.checkpoints import CheckpointError, config_from_diffusers, load_transformer, save_transformer
from pixart.errors import PipelineError
from pixart.pipeline import PixArtPipeline, SampleSettings
from pixart.sample_run import read_prompts, run_sampling
from pixart.text import TextEncoder
from pixart.vae import VAE

LONG = "a red circle " * 770  # 10,010 characters


def write(path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return str(path)


def edit_json(path, change) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


def pipeline(f, inputs, damage=None) -> str:
    """A copy of the tiny pipeline folder, damaged by ``damage(folder)``."""
    folder = inputs.copy("pipeline", f)
    if damage is not None:
        damage(folder)
    return str(folder)


def native(f, inputs, damage=None) -> str:
    folder = inputs.copy("native", f)
    if damage is not None:
        damage(folder)
    return str(folder)


def diffusers_transformer(f, inputs, change) -> str:
    folder = inputs.copy("diffusers_pipeline", f)
    edit_json(folder / "transformer" / "config.json", change)
    return str(folder / "transformer")


def sample(ckpt, f, *extra) -> list:
    return ["sample", "--ckpt", ckpt, "--out", f / "run", "--steps", "2", *extra]


def a_finished_run(f, inputs) -> list:
    """A finished two-image run in f/run (the images and manifest the case must not lose)."""
    from typer.testing import CliRunner

    from bench.cli import app

    args = sample(pipeline(f, inputs), f, "--prompt", "a red circle", "--images-per-prompt", "2")
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return args


def in_run(f, files: dict, args: list) -> list:
    """``args`` after writing ``files`` into the run folder f/run (what an earlier run left there)."""
    for name, data in files.items():
        write(f / "run" / name, data)
    return args


def no_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available: --device cuda is valid input here")


CLI_CASES = [
    # ---- params ---------------------------------------------------------------------------------
    CliCase("params: --json under a file", lambda f, i: ["params", "--json", write(f / "taken", "x") + "/p.json"],
            r"lies under a file"),
    # ---- convert --------------------------------------------------------------------------------
    CliCase("convert: missing checkpoint", lambda f, i: ["convert", f / "missing.pth", f / "out"],
            r"checkpoint not found: .*missing\.pth"),
    CliCase("convert: truncated .safetensors", lambda f, i: [
        "convert", native(f, i, lambda d: truncate(d / "model.safetensors")), f / "out"],
        r"cannot read weights file .*model\.safetensors: not a valid safetensors file"),
    CliCase("convert: empty .safetensors", lambda f, i: [
        "convert", native(f, i, lambda d: write(d / "model.safetensors", b"")), f / "out"],
        r"weights file .*model\.safetensors.*truncated or corrupt"),
    CliCase("convert: empty .pth", lambda f, i: ["convert", write(f / "empty.pth", b""), f / "out"],
            r"cannot read .*empty\.pth as a torch checkpoint"),
    CliCase("convert: a text file named .pth", lambda f, i: ["convert", write(f / "notes.pth", "not weights\n"), f / "o"],
            r"cannot read .*notes\.pth as a torch checkpoint"),
    CliCase("convert: truncated .pth", lambda f, i: ["convert", truncate(i.copy("official", f)), f / "out"],
            r"cannot read .*official\.pth as a torch checkpoint \(truncated"),
    CliCase("convert: official .safetensors that is corrupt", lambda f, i: [
        "convert", write(f / "m.safetensors", b"\x00" * 64), f / "out"], r"cannot read weights file .*m\.safetensors"),
    CliCase("convert: corrupt config.json", lambda f, i: [
        "convert", native(f, i, lambda d: write(d / "config.json", '{"hidden_size": 96,')), f / "out"],
        r"cannot read transformer config .*config\.json: invalid JSON at line 1"),
    CliCase("convert: empty config.json", lambda f, i: [
        "convert", native(f, i, lambda d: write(d / "config.json", "")), f / "out"],
        r"config\.json: invalid JSON at line 1, column 1"),
    CliCase("convert: config.json holds a list", lambda f, i: [
        "convert", native(f, i, lambda d: write(d / "config.json", "[1, 2]")), f / "out"],
        r"config\.json holds a JSON list, not an object"),
    CliCase("convert: native config with an unknown field", lambda f, i: [
        "convert", native(f, i, lambda d: edit_json(d / "config.json", lambda c: c.update(hiden_size=3))), f / "out"],
        r"config\.json is not a valid PixArt config: unknown PixArtConfig fields \['hiden_size'\]"),
    CliCase("convert: diffusers config without num_layers", lambda f, i: [
        "convert", diffusers_transformer(f, i, lambda c: c.pop("num_layers")), f / "out"],
        r"diffusers config lacks num_layers"),
    CliCase("convert: diffusers config with a word for a number", lambda f, i: [
        "convert", diffusers_transformer(f, i, lambda c: c.update(num_layers="many")), f / "out"],
        r"diffusers config has a value of the wrong type"),
    CliCase("convert: folder without a config", lambda f, i: ["convert", (f / "empty").mkdir() or f / "empty", f / "o"],
            r"no transformer config\.json in .*empty"),
    CliCase("convert: unknown preset", lambda f, i: [
        "convert", i.copy("official", f), f / "x.pth", "--to", "official", "--config", "XL-3"],
        r"unknown preset 'XL-3'"),
    CliCase("convert: --config file missing", lambda f, i: [
        "convert", i.copy("official", f), f / "out", "--config", f / "nope.json"], r"model config not found: .*nope\.json"),
    CliCase("convert: --config file corrupt", lambda f, i: [
        "convert", i.copy("official", f), f / "out", "--config", write(f / "c.json", "{")],
        r"cannot read model config .*c\.json: invalid JSON"),
    CliCase("convert: --to native onto a file", lambda f, i: ["convert", native(f, i), write(f / "taken.txt", "keep")],
            r"output .*taken\.txt is a file; a native checkpoint is a folder"),
    CliCase("convert: --to official onto a folder", lambda f, i: [
        "convert", native(f, i), (f / "dir").mkdir() or f / "dir", "--to", "official"],
        r"output .*dir is a folder; an official checkpoint is one \.pth file"),
    CliCase("convert: --from dit with a text file", lambda f, i: [
        "convert", write(f / "dit.pt", "text"), f / "out", "--from", "dit"], r"cannot read .*dit\.pt as a torch checkpoint"),
    CliCase("convert: --from diffusers on a native folder", lambda f, i: [
        "convert", native(f, i), f / "out", "--from", "diffusers"], r"is a native checkpoint, not diffusers"),
    # ---- sample: settings -----------------------------------------------------------------------
    *[CliCase(f"sample: --steps {v}", lambda f, i, v=v: sample(pipeline(f, i), f, "--prompt", "a", "--steps", v),
              r"--steps must be a whole number from 1 to 1000") for v in ("0", "-3", "100000")],
    *[CliCase(f"sample: --cfg {v}", lambda f, i, v=v: sample(pipeline(f, i), f, "--prompt", "a", "--cfg", v),
              r"--cfg must be a number from 0 to 100") for v in ("-1", "nan", "1e9")],
    *[CliCase(f"sample: --height {v}", lambda f, i, v=v: sample(pipeline(f, i), f, "--prompt", "a", "--height", v),
              r"--height must be a whole number of pixels from 1 to 8192") for v in ("0", "-16", "100000")],
    CliCase("sample: --width not a multiple of the patch", lambda f, i: sample(
        pipeline(f, i), f, "--prompt", "a", "--width", "18"), r"height and width must be multiples of 4, got 16x18"),
    CliCase("sample: --images-per-prompt 0", lambda f, i: sample(pipeline(f, i), f, "--prompt", "a",
                                                                 "--images-per-prompt", "0"),
            r"--images-per-prompt must be a whole number ≥ 1, got 0"),
    CliCase("sample: --batch-size 0", lambda f, i: sample(pipeline(f, i), f, "--prompt", "a", "--batch-size", "0"),
            r"--batch-size must be a whole number ≥ 1, got 0"),
    # ---- sample: prompts ------------------------------------------------------------------------
    CliCase("sample: empty --prompt", lambda f, i: sample(pipeline(f, i), f, "--prompt", ""), r"--prompt is empty"),
    CliCase("sample: whitespace-only --prompt", lambda f, i: sample(pipeline(f, i), f, "--prompt", " \t "),
            r"--prompt is empty"),
    CliCase("sample: --prompt of 10,000 characters", lambda f, i: sample(pipeline(f, i), f, "--prompt", LONG),
            r"--prompt 1 has 10,010 characters; at most 2,000"),
    CliCase("sample: both --prompt and --prompts", lambda f, i: sample(
        pipeline(f, i), f, "--prompt", "a", "--prompts", write(f / "p.txt", "b\n")), r"exactly one of --prompt"),
    CliCase("sample: neither --prompt nor --prompts", lambda f, i: sample(pipeline(f, i), f), r"exactly one of --prompt"),
    CliCase("sample: --prompts missing", lambda f, i: sample(pipeline(f, i), f, "--prompts", f / "nope.txt"),
            r"prompt file not found: .*nope\.txt"),
    CliCase("sample: --prompts is a folder", lambda f, i: sample(pipeline(f, i), f, "--prompts", f),
            r"prompt file .* is a folder, not a file"),
    CliCase("sample: empty --prompts file", lambda f, i: sample(pipeline(f, i), f, "--prompts", write(f / "p.txt", "")),
            r"prompt file .*p\.txt has no prompts"),
    CliCase("sample: whitespace-only --prompts file", lambda f, i: sample(
        pipeline(f, i), f, "--prompts", write(f / "p.txt", "  \n\t\n")), r"prompt file .*p\.txt has no prompts"),
    CliCase("sample: non-UTF-8 --prompts file", lambda f, i: sample(
        pipeline(f, i), f, "--prompts", write(f / "p.txt", "a red circle\n".encode() + b"caf\xe9\n")),
        r"cannot read prompt file .*p\.txt: not UTF-8 text \(byte 16"),
    CliCase("sample: a 10,000-character line in --prompts", lambda f, i: sample(
        pipeline(f, i), f, "--prompts", write(f / "p.txt", f"a red circle\n{LONG}\n")),
        r"prompt file .*p\.txt: line 2 has 10,0\d\d characters"),
    # ---- sample: checkpoints and folders --------------------------------------------------------
    CliCase("sample: missing checkpoint", lambda f, i: sample(str(f / "nothing"), f, "--prompt", "a"),
            r"checkpoint not found: .*nothing"),
    CliCase("sample: corrupt scheduler config", lambda f, i: sample(pipeline(
        f, i, lambda d: write(d / "scheduler" / "scheduler_config.json", "{oops")), f, "--prompt", "a"),
        r"cannot read scheduler config .*scheduler_config\.json: invalid JSON"),
    CliCase("sample: truncated T5 weights", lambda f, i: sample(pipeline(
        f, i, lambda d: truncate(d / "text_encoder" / "model.safetensors")), f, "--prompt", "a"),
        r"cannot load T5 encoder .*text_encoder"),
    CliCase("sample: corrupt T5 config", lambda f, i: sample(pipeline(
        f, i, lambda d: write(d / "text_encoder" / "config.json", "{")), f, "--prompt", "a"),
        r"cannot load T5 encoder .*text_encoder"),
    CliCase("sample: corrupt tokenizer", lambda f, i: sample(pipeline(
        f, i, lambda d: write(d / "tokenizer" / "tokenizer.json", "{")), f, "--prompt", "a"),
        r"cannot load T5 tokenizer .*tokenizer"),
    CliCase("sample: pipeline without vae/", lambda f, i: sample(pipeline(
        f, i, lambda d: shutil.rmtree(d / "vae")), f, "--prompt", "a"), r"no VAE at .*pipeline"),
    CliCase("sample: truncated VAE weights", lambda f, i: sample(pipeline(
        f, i, lambda d: truncate(d / "vae" / "diffusion_pytorch_model.safetensors")), f, "--prompt", "a"),
        r"cannot load VAE .*vae"),
    CliCase("sample: truncated transformer weights", lambda f, i: sample(pipeline(
        f, i, lambda d: truncate(d / "transformer" / "model.safetensors")), f, "--prompt", "a"),
        r"cannot read weights file .*transformer/model\.safetensors"),
    CliCase("sample: a transformer alone without --t5 / --vae", lambda f, i: sample(native(f, i), f, "--prompt", "a"),
            r"is a transformer checkpoint only: also pass the T5 encoder \(--t5 PATH\)"),
    CliCase("sample: --t5 folder missing", lambda f, i: sample(
        native(f, i), f, "--prompt", "a", "--t5", f / "no-t5", "--vae", f / "no-vae"), r"no T5 encoder at .*no-t5"),
    CliCase("sample: unknown preset for a .pth", lambda f, i: sample(
        str(i.copy("official", f)), f, "--prompt", "a", "--config", "XL-9", "--t5", i.pipeline, "--vae", i.pipeline),
        r"unknown preset 'XL-9'"),
    CliCase("sample: --device cuda without a GPU", lambda f, i: no_cuda() or sample(
        pipeline(f, i), f, "--prompt", "a", "--device", "cuda"), r"--device cuda: no CUDA device is available"),
    # ---- sample: the output folder --------------------------------------------------------------
    CliCase("sample: --out holds a run with other settings", lambda f, i: a_finished_run(f, i) + ["--seed", "5"],
            r"/run holds a run with different seed; use another --out folder"),
    CliCase("sample: --out is a file", lambda f, i: ["sample", "--ckpt", pipeline(f, i), "--prompt", "a",
                                                     "--out", write(f / "out.png", b"png")],
            r"output folder .*out\.png is a file"),
    CliCase("sample: corrupt manifest.json in --out", lambda f, i: in_run(
        f, {"manifest.json": '{"images": [', "00000.png": b"done"}, sample(pipeline(f, i), f, "--prompt", "a")),
        r"cannot read run manifest .*manifest\.json: invalid JSON"),
    CliCase("sample: manifest.json without images", lambda f, i: in_run(
        f, {"manifest.json": '{"seed": 0}'}, sample(pipeline(f, i), f, "--prompt", "a")),
        r"manifest\.json is not a run manifest"),
    # ---- export-diffusers -----------------------------------------------------------------------
    CliCase("export-diffusers: missing source", lambda f, i: ["export-diffusers", str(f / "none"), f / "out"],
            r"checkpoint not found: .*none"),
    CliCase("export-diffusers: truncated transformer weights", lambda f, i: ["export-diffusers", pipeline(
        f, i, lambda d: truncate(d / "transformer" / "model.safetensors", 0.1)), f / "out"],
        r"cannot read weights file .*model\.safetensors"),
    CliCase("export-diffusers: destination is a file", lambda f, i: ["export-diffusers", pipeline(f, i),
                                                                     write(f / "out", "keep me")],
            r"output .*out is a file; a pipeline is a folder"),
]


def loaded_pipeline(f, inputs):
    return (PixArtPipeline.from_pretrained(inputs.pipeline),)


def tiny_model_inputs(**change):
    from conftest import text_inputs, tiny_model

    model = tiny_model()
    c = model.config
    y, mask = text_inputs(2, 6, c.caption_channels)
    args = {"x": torch.randn(2, c.in_channels, 8, 8), "timestep": torch.tensor([10, 500]), "y": y, "mask": mask}
    args.update(change)
    return (model, args)


def call_model(model, args):
    return model(**args)


API_CASES = [
    ApiCase("load_transformer: truncated native weights", lambda f, i: (native(f, i, lambda d: truncate(d / "model.safetensors")),),
            load_transformer, CheckpointError, r"not a valid safetensors file"),
    ApiCase("load_transformer: corrupt .pth", lambda f, i: (write(f / "m.pth", b"PK\x03\x04 broken"),),
            load_transformer, CheckpointError, r"cannot read .*m\.pth as a torch checkpoint"),
    ApiCase("load_transformer: missing path", lambda f, i: (f / "none",), load_transformer, CheckpointError,
            r"checkpoint not found"),
    ApiCase("config_from_diffusers: no num_layers", lambda f, i: ({
        "_class_name": "PixArtTransformer2DModel", "caption_channels": 16, "num_attention_heads": 2,
        "attention_head_dim": 8, "in_channels": 4, "sample_size": 8},),
        config_from_diffusers, CheckpointError, r"lacks num_layers"),
    ApiCase("save_transformer: a native folder onto a file", lambda f, i: (load_transformer(i.native), write(f / "t", "x")),
            save_transformer, CheckpointError, r"is a file; a native checkpoint is a folder"),
    ApiCase("PixArt: 3-D x", lambda f, i: tiny_model_inputs(x=torch.randn(4, 8, 8)), call_model, ValueError,
            r"x must be latents \[B, 4, H, W\], got shape \[4, 8, 8\]"),
    ApiCase("PixArt: x with 3 channels", lambda f, i: tiny_model_inputs(x=torch.randn(2, 3, 8, 8)), call_model,
            ValueError, r"x must be latents \[B, 4, H, W\]"),
    ApiCase("PixArt: timesteps for another batch", lambda f, i: tiny_model_inputs(timestep=torch.tensor([1, 2, 3])),
            call_model, ValueError, r"timestep must be a scalar or \[B=2\], got shape \[3\]"),
    ApiCase("PixArt: y of the wrong width", lambda f, i: tiny_model_inputs(y=torch.randn(2, 6, 5)), call_model,
            ValueError, r"y must be \[B=2, L, 16\], got \[2, 6, 5\]"),
    ApiCase("PixArt: mask of the wrong length", lambda f, i: tiny_model_inputs(mask=torch.ones(2, 4)), call_model,
            ValueError, r"mask must be \[B, L\] = \[2, 6\], got \[2, 4\]"),
    ApiCase("PixArt: odd latent size", lambda f, i: tiny_model_inputs(x=torch.randn(2, 4, 7, 8)), call_model,
            ValueError, r"latent size 7x8 is not divisible by patch_size 2"),
    ApiCase("PixArtPipeline: steps=0", lambda f, i: (*loaded_pipeline(f, i), ["a"], [0], SampleSettings(steps=0)),
            PixArtPipeline.__call__, PipelineError, r"--steps must be a whole number from 1 to 1000 .*, got 0"),
    ApiCase("PixArtPipeline: height=0", lambda f, i: (*loaded_pipeline(f, i), ["a"], [0], SampleSettings(height=0)),
            PixArtPipeline.__call__, PipelineError, r"--height must be a whole number of pixels"),
    ApiCase("PixArtPipeline: negative guidance", lambda f, i: (
        *loaded_pipeline(f, i), ["a"], [0], SampleSettings(guidance_scale=-2.0)), PixArtPipeline.__call__,
        PipelineError, r"--cfg must be a number from 0 to 100 .*, got -2\.0"),
    ApiCase("PixArtPipeline: an empty prompt", lambda f, i: (*loaded_pipeline(f, i), ["a", " "], [0, 1]),
            PixArtPipeline.__call__, PipelineError, r"prompt 2 is empty"),
    ApiCase("PixArtPipeline: seeds for other prompts", lambda f, i: (*loaded_pipeline(f, i), ["a", "b"], [0]),
            PixArtPipeline.__call__, PipelineError, r"1 seeds for 2 prompts"),
    ApiCase("PixArtPipeline.from_pretrained: corrupt scheduler config", lambda f, i: (
        pipeline(f, i, lambda d: write(d / "scheduler" / "scheduler_config.json", "")),),
        PixArtPipeline.from_pretrained, PipelineError, r"cannot read scheduler config"),
    ApiCase("TextEncoder.from_pretrained: missing folder", lambda f, i: (f / "t5",), TextEncoder.from_pretrained,
            PipelineError, r"no T5 encoder at .*t5"),
    ApiCase("VAE.from_pretrained: corrupt config", lambda f, i: (pipeline(
        f, i, lambda d: write(d / "vae" / "config.json", "{")),), VAE.from_pretrained, PipelineError,
        r"cannot load VAE .*vae"),
    ApiCase("read_prompts: non-UTF-8 file", lambda f, i: (write(f / "p.txt", b"\xff\xfe"),), read_prompts,
            PipelineError, r"not UTF-8 text \(byte 0"),
    ApiCase("run_sampling: images_per_prompt=0", lambda f, i: (
        *loaded_pipeline(f, i), ["a"], f / "run", SampleSettings(steps=2)), lambda pipe, prompts, out, s: run_sampling(
            pipe, prompts, out, s, images_per_prompt=0), PipelineError, r"--images-per-prompt must be a whole number"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("sample: --out holds another command's run", lambda f, i: [
        "sample", "--ckpt", i.pipeline, "--prompt", "a", "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("convert: DST holds another command's run", lambda f, i: ["convert", i.native, another_run(f, i)],
            r"DST .*demo-report " + TAKEN),
    CliCase("convert: DST holds a converted checkpoint", lambda f, i: ["convert", i.native, i.copy("native", f)],
            r"DST .*native holds a model folder \(config\.json\); choose another folder or pass --overwrite"),
    CliCase("export-diffusers: DST holds another command's run", lambda f, i: [
        "export-diffusers", i.pipeline, another_run(f, i)], r"DST .*demo-report " + TAKEN),
    CliCase("sample: --ckpt is a text file", lambda f, i: [
        "sample", "--ckpt", write(f / "notes.txt", "my notes\n"), "--prompt", "a", "--out", f / "run"],
        r"cannot read .*notes\.txt as a torch checkpoint: the file is a text file, not a checkpoint"),
]
