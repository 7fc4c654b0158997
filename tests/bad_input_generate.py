"""Bad-input cases for ``generate`` and the generation store behind it (``bench.generate``,
``pixart.sample_run.fill_folder``); see tests/bad_input.py. Every case fails before an image is made
or a record is written, and the case's folder (a finished run, an image folder, a model) stays as it was."""

import json
import shutil
from pathlib import Path

from bad_input import ApiCase, CliCase, truncate, write
from bad_input_model import no_cuda
from bad_input_world import png

from bench.errors import BenchError
from bench.generate import FolderSource, generate, load_source
from bench.generate.plan import read_prompt_file
from pixart.errors import PipelineError
from pixart.sample_run import Job, fill_folder

PROMPTS = "a red cat\na blue dog.\n"


def tiny_sd(inputs) -> Path:
    """The tiny random Stable Diffusion pipeline, built once per session beside the other inputs."""
    from test_generate import build_tiny_sd

    folder = inputs.root / "generate-sd" / "tiny-sd"
    return folder if folder.is_dir() else build_tiny_sd(inputs.root / "generate-sd")


def finished_run(inputs) -> Path:
    """A finished run of the tiny PixArt pipeline: PROMPTS, 2 images each, 2 steps."""
    folder = inputs.root / "generate-run"
    if not (folder / "manifest.json").is_file():
        generate(load_source(str(inputs.pipeline), steps=2), PROMPTS.split("\n")[:2], folder, images_per_prompt=2,
                 progress=False)
    return folder


def prompts(f, text=PROMPTS) -> Path:
    return write(f / "prompts.txt", text)


def gen(f, inputs, *extra, ckpt=None, prompt_file=None, out=None) -> list:
    """``generate`` of the tiny PixArt pipeline (or ``ckpt``) on PROMPTS into f/run, 2 images each, 2 steps."""
    return ["generate", "--ckpt", ckpt or inputs.pipeline, "--prompts", prompt_file or prompts(f), "--out",
            out or f / "run", "--images-per-prompt", "2", *(extra or ("--steps", "2"))]


def in_run(f, inputs, damage=None) -> Path:
    """A copy of the finished run in f/run, changed by ``damage(folder)``."""
    shutil.copytree(finished_run(inputs), f / "run")
    if damage is not None:
        damage(f / "run")
    return f / "run"


def image_folder(f, inputs, damage=None) -> Path:
    """The finished run's images alone (no manifest) in f/images: a folder of images made elsewhere."""
    shutil.copytree(finished_run(inputs) / "samples", f / "images" / "samples")
    if damage is not None:
        damage(f / "images")
    return f / "images"


def sd_copy(f, inputs, damage) -> Path:
    folder = f / "tiny-sd"
    shutil.copytree(tiny_sd(inputs), folder)
    damage(folder)
    return folder


def edit_manifest(change):
    def damage(folder: Path):
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return damage


def folder_args(f, i, damage=None, *extra) -> list:
    folder = image_folder(f, i, damage)
    return ["generate", "--ckpt", folder, "--prompts", prompts(f), "--out", folder, "--images-per-prompt", "2", *extra]


CLI_CASES = [
    # ---- prompts --------------------------------------------------------------------------------
    CliCase("generate: --prompts neither a file nor a category", lambda f, i: gen(f, i, prompt_file=f / "colour"),
            r"--prompts .*colour: no such file, and not a T2I-CompBench category \(color, shape"),
    CliCase("generate: --prompts a folder", lambda f, i: gen(f, i, prompt_file=(f / "p").mkdir() or f / "p"),
            r"--prompts .*p is a folder; give a text file"),
    CliCase("generate: --prompts file with no prompts", lambda f, i: gen(f, i, prompt_file=prompts(f, "\n \n\t\n")),
            r"prompt file .*prompts\.txt has no prompts"),
    CliCase("generate: --prompts file not UTF-8", lambda f, i: gen(f, i, prompt_file=prompts(f, b"a cat\n\xff\n")),
            r"cannot read prompt file .*prompts\.txt: not UTF-8 text \(byte 6"),
    CliCase("generate: a prompt with '_'", lambda f, i: gen(f, i, prompt_file=prompts(f, "a cat\na dog_house\n")),
            r"prompts\.txt, line 2: the prompt 'a dog_house' contains '_' or '/'"),
    CliCase("generate: a prompt with '/'", lambda f, i: gen(f, i, prompt_file=prompts(f, "a cat/dog\n")),
            r"line 1: the prompt 'a cat/dog' contains '_' or '/'"),
    CliCase("generate: a prompt too long for a file name", lambda f, i: gen(f, i, prompt_file=prompts(f, "a" * 250)),
            r"line 1: the prompt is 250 bytes long, too long for its file name"),
    CliCase("generate: --color-list unknown", lambda f, i: gen(f, i, "--color-list", "1999", prompt_file="color"),
            r"--color-list must be one of 2025, 2023, got '1999'"),
    # ---- counts and seeds -----------------------------------------------------------------------
    CliCase("generate: --images-per-prompt 0", lambda f, i: gen(f, i) + ["--images-per-prompt", "0"],
            r"--images-per-prompt must be a whole number from 1 to 100,000, got 0"),
    CliCase("generate: --batch-size 0", lambda f, i: gen(f, i, "--batch-size", "0"),
            r"--batch-size must be a whole number from 1 to 4,096, got 0"),
    CliCase("generate: --seeds a word", lambda f, i: gen(f, i, "--seeds", "random"),
            r"--seeds must be 'official' or a whole number .*got 'random'"),
    CliCase("generate: --seeds negative", lambda f, i: gen(f, i, "--seeds", "-1"),
            r"--seeds must be a whole number from 0 to 4,294,967,294 \(each prompt's 2 images use"),
    CliCase("generate: --seeds past the last seed", lambda f, i: gen(f, i, "--seeds", str(2**32 - 1)),
            r"--seeds must be a whole number from 0 to 4,294,967,294 .*got 4294967295"),
    # ---- settings -------------------------------------------------------------------------------
    CliCase("generate: --steps 0", lambda f, i: gen(f, i, "--steps", "0"),
            r"--steps must be a whole number from 1 to 1,000, got 0"),
    CliCase("generate: --cfg negative", lambda f, i: gen(f, i, "--cfg", "-1"), r"--cfg must be a number from 0 to 100"),
    CliCase("generate: --cfg nan", lambda f, i: gen(f, i, "--cfg", "nan"), r"--cfg must be a number from 0 to 100"),
    CliCase("generate: --height 0", lambda f, i: gen(f, i, "--height", "0"),
            r"--height must be a whole number from 1 to 8,192, got 0"),
    CliCase("generate: --width too large", lambda f, i: gen(f, i, "--width", "100000"),
            r"--width must be a whole number from 1 to 8,192"),
    CliCase("generate: --height the PixArt model cannot make", lambda f, i: gen(
        f, i, "--height", "18", "--width", "16"),
            r"--height 18 --width 16: height and width must be multiples of 4"),
    CliCase("generate: --dtype unknown", lambda f, i: gen(f, i, "--dtype", "fp8"), r"Invalid value for '--dtype'"),
    CliCase("generate: --loader unknown", lambda f, i: gen(f, i, "--loader", "magic"),
            r"--loader must be one of auto, pixart, diffusers, folder, got 'magic'"),
    CliCase("generate: --noise unknown", lambda f, i: gen(f, i, "--noise", "gpu", ckpt=tiny_sd(i)),
            r"--noise must be one of cpu, device, got 'gpu'"),
    CliCase("generate: --device cuda without CUDA", lambda f, i: no_cuda() or gen(
        f, i, "--device", "cuda", "--steps", "2"),
            r"--device cuda: no CUDA device is available"),
    CliCase("generate: --device not a device", lambda f, i: gen(f, i, "--device", "gpu0", ckpt=tiny_sd(i)),
            r"--device 'gpu0' is not a device name"),
    # ---- --out ----------------------------------------------------------------------------------
    CliCase("generate: --out a file", lambda f, i: gen(f, i, out=write(f / "run", "keep")),
            r"--out .*run is a file, not a folder"),
    CliCase("generate: --out under a file", lambda f, i: gen(f, i, out=write(f / "taken", "keep") / "run"),
            r"--out .*taken/run: .*taken is a file, so no folder can be made there"),
    CliCase("generate: --out/samples a file", lambda f, i: gen(f, i, out=write(f / "run" / "samples", "x").parent),
            r"run/samples is a file, so the run cannot write .*run/samples"),
    CliCase("generate: --out holds a run with other seeds", lambda f, i: in_run(f, i) and gen(
        f, i, "--steps", "2", "--seeds", "7"), r"run holds a run with different seeds; use another --out folder"),
    CliCase("generate: --out holds a run with other steps", lambda f, i: in_run(f, i) and gen(f, i, "--steps", "3"),
            r"run holds a run with different settings; use another --out folder \(settings\.steps: 2 there, 3 now"),
    CliCase("generate: --out holds a run with other prompts", lambda f, i: in_run(f, i) and gen(
        f, i, prompt_file=prompts(f, "a red cat\n")), r"run holds a run with different prompts; use another --out"),
    CliCase("generate: --out holds a run with other images per prompt", lambda f, i: in_run(f, i) and (
        gen(f, i) + ["--images-per-prompt", "1"]), r"run holds a run with different images_per_prompt"),
    CliCase("generate: --out holds another model's run", lambda f, i: in_run(f, i) and gen(
        f, i, "--steps", "2", ckpt=tiny_sd(i)), r"run holds a run with different model, settings"),
    CliCase("generate: --out with a damaged manifest", lambda f, i: in_run(
        f, i, lambda d: truncate(d / "manifest.json")) and gen(f, i),
        r"cannot read run manifest .*manifest\.json: invalid JSON"),
    CliCase("generate: --out with a manifest of something else", lambda f, i: in_run(
        f, i, lambda d: write(d / "manifest.json", '{"images": 3}')) and gen(f, i),
        r"manifest\.json is not a run manifest"),
    CliCase("generate: --out with a damaged progress record", lambda f, i: write(
        f / "run" / "progress" / "rank-0-of-1.jsonl", '{"head') and gen(f, i),
        r"rank-0-of-1\.jsonl is not a run progress record .*delete it"),
    CliCase("generate: --out with another run's progress record", lambda f, i: write(
        f / "run" / "progress" / "rank-1-of-2.jsonl", json.dumps({"header": {"seeds": 1}}) + "\n") and gen(f, i),
        r"run holds a run with different format, layout, model, settings, seeds, images_per_prompt, prompts; use "
        r"another --out folder .*recorded in rank-1-of-2\.jsonl"),
    CliCase("generate: --out holds images no record explains", lambda f, i: png(
        f / "run" / "samples" / "a red cat_000000.png") and gen(f, i),
        r"run holds images this run would write \(samples/a red cat_000000\.png\) and no manifest\.json says how"),
    CliCase("generate: --out/samples holds other images", lambda f, i: in_run(
        f, i, lambda d: png(d / "samples" / "a dog_000099.png")) and gen(f, i),
        r"samples holds 1 file\(s\) this run does not make \(a dog_000099\.png\), which the scorers would read"),
    # ---- --ckpt ---------------------------------------------------------------------------------
    CliCase("generate: --ckpt missing", lambda f, i: gen(f, i, ckpt=f / "nowhere"), r"checkpoint not found: .*nowhere"),
    CliCase("generate: --ckpt a hub id not in the cache", lambda f, i: gen(f, i, ckpt="nobody/no-such-model"),
            r"nobody/no-such-model is neither a local path nor a model in the Hugging Face cache"),
    CliCase("generate: --ckpt a folder of nothing known", lambda f, i: gen(f, i, ckpt=(f / "m").mkdir() or f / "m"),
            r"--ckpt .*m is none of: a diffusers pipeline folder \(model_index\.json\)"),
    CliCase("generate: --ckpt with a damaged model_index.json", lambda f, i: gen(
        f, i, ckpt=sd_copy(f, i, lambda d: truncate(d / "model_index.json"))),
        r"cannot read diffusers pipeline index .*model_index\.json: invalid JSON"),
    CliCase("generate: --ckpt with damaged UNet weights", lambda f, i: gen(f, i, ckpt=sd_copy(
        f, i, lambda d: truncate(d / "unet" / "diffusion_pytorch_model.safetensors"))),
        r"cannot load diffusers pipeline .*tiny-sd"),
    CliCase("generate: --ckpt without a text encoder", lambda f, i: gen(f, i, ckpt=sd_copy(
        f, i, lambda d: shutil.rmtree(d / "text_encoder"))), r"cannot load diffusers pipeline .*tiny-sd"),
    CliCase("generate: --ckpt a transformer without --t5", lambda f, i: gen(f, i, ckpt=i.pipeline / "transformer"),
            r"is a transformer checkpoint only: also pass the T5 encoder \(--t5 PATH\)"),
    CliCase("generate: --loader diffusers on our pipeline folder", lambda f, i: gen(f, i, "--loader", "diffusers"),
            r"cannot load diffusers pipeline .*pipeline"),
    CliCase("generate: --sampler for a diffusers pipeline", lambda f, i: gen(
        f, i, "--sampler", "sa-solver", ckpt=tiny_sd(i)), r"--sampler do\(es\) not apply to .*tiny-sd \(a diffusers"),
    CliCase("generate: --noise for a PixArt pipeline", lambda f, i: gen(f, i, "--noise", "device"),
            r"--noise do\(es\) not apply to .*pipeline \(a pixart source\)"),
    CliCase("generate: --scheduler unknown", lambda f, i: gen(f, i, "--scheduler", "Magic", ckpt=tiny_sd(i)),
            r"--scheduler 'Magic' is not a diffusers scheduler class"),
    CliCase("generate: --height a diffusers pipeline cannot make", lambda f, i: gen(
        f, i, "--height", "15", ckpt=tiny_sd(i)),
        r"--height 15: StableDiffusionPipeline makes sides that are multiples"),
    # ---- a folder of images made elsewhere ------------------------------------------------------
    CliCase("generate: image folder missing an image", lambda f, i: folder_args(
        f, i, lambda d: (d / "samples" / "a blue dog._000003.png").unlink()),
        r"holds 3 images, and 2 prompts × 2 need 4: missing images: 'a blue dog\.' has 1 of 2"),
    CliCase("generate: image folder with another prompt's images", lambda f, i: folder_args(
        f, i, lambda d: png(d / "samples" / "a fox_000004.png")),
        r"images of no such prompt or too many: 'a fox' has 1"),
    CliCase("generate: image folder out of prompt order", lambda f, i: folder_args(f, i) [:4] + [
        prompts(f, "a blue dog.\na red cat\n"), "--out", f / "images", "--images-per-prompt", "2"],
        r"a red cat_000000\.png is image 1 in number order, where the scorers expect an image of prompt 1"),
    CliCase("generate: image folder with a corrupt image", lambda f, i: folder_args(
        f, i, lambda d: truncate(d / "samples" / "a red cat_000001.png", 0.3)),
        r"cannot read image .*a red cat_000001\.png"),
    CliCase("generate: image folder with a file of another name", lambda f, i: folder_args(
        f, i, lambda d: write(d / "samples" / "notes.txt", "x")), r"notes\.txt is not named <prompt>_<NNNNNN>\.png"),
    CliCase("generate: image folder with two files of one number", lambda f, i: folder_args(
        f, i, lambda d: png(d / "samples" / "a blue dog._3.png")), r"have the same index 3"),
    CliCase("generate: image folder recorded into another --out", lambda f, i: folder_args(f, i)[:6] + [
        f / "elsewhere", "--images-per-prompt", "2"], r"--out .*elsewhere: a folder of images is recorded where it is"),
    CliCase("generate: image folder with --steps", lambda f, i: folder_args(f, i, None, "--steps", "3"),
            r"--steps do\(es\) not apply to .*images \(a folder source\)"),
    CliCase("generate: image folder whose manifest has other prompts", lambda f, i: folder_args(
        f, i, lambda d: write(d / "manifest.json", json.dumps({"prompts": ["a fox"], "images": []}))),
        r"manifest\.json records a run with different prompts; move it away"),
    CliCase("generate: image folder whose manifest has other images", lambda f, i: folder_args(
        f, i, lambda d: shutil.copy2(finished_run(i) / "manifest.json", d)
        and png(d / "samples" / "a red cat_000000.png")),
        r"manifest\.json does not match the images in the folder \(samples/a red cat_000000\.png differ"),
]


def pixart_source(f, inputs):
    return load_source(str(inputs.pipeline), steps=2)


API_CASES = [
    ApiCase("generate: no prompts", lambda f, i: (pixart_source(f, i), [], f / "run"), generate, BenchError,
            r"no prompts to generate"),
    ApiCase("generate: an empty prompt", lambda f, i: (pixart_source(f, i), ["a cat", "  "], f / "run"), generate,
            BenchError, r"prompt 2: the prompt is empty"),
    ApiCase("generate: images_per_prompt=0", lambda f, i: (pixart_source(f, i), ["a cat"], f / "run"),
            lambda s, p, o: generate(s, p, o, images_per_prompt=0), BenchError,
            r"--images-per-prompt must be a whole number from 1"),
    ApiCase("generate: rank past world", lambda f, i: (pixart_source(f, i), ["a cat"], f / "run"),
            lambda s, p, o: generate(s, p, o, rank=2, world=2), BenchError, r"rank must be a whole number from 0 to 1"),
    ApiCase("generate: rank without world", lambda f, i: (pixart_source(f, i), ["a cat"], f / "run"),
            lambda s, p, o: generate(s, p, o, rank=0), BenchError, r"give both rank and world"),
    ApiCase("load_source: missing path", lambda f, i: (str(f / "nowhere"),), load_source, PipelineError,
            r"checkpoint not found"),
    ApiCase("load_source: PixArt sampler unknown", lambda f, i: (str(i.pipeline),),
            lambda p: load_source(p, sampler="euler"), PipelineError, r"unknown sampler 'euler'"),
    ApiCase("FolderSource: no samples/ folder", lambda f, i: ((f / "x").mkdir() or f / "x",), FolderSource, BenchError,
            r"has no samples/ folder: images made elsewhere must be in the official layout"),
    ApiCase("FolderSource.record: no images", lambda f, i: (FolderSource(
        (f / "x" / "samples").mkdir(parents=True) or f / "x"), ["a cat"], 1), FolderSource.record, BenchError,
        r"samples holds no images"),
    ApiCase("read_prompt_file: missing", lambda f, i: (f / "p.txt",), read_prompt_file, BenchError,
            r"prompt file not found: .*p\.txt"),
    ApiCase("fill_folder: two images with one file", lambda f, i: (f / "run", [Job(0, "a.png", "a", 0),
            Job(1, "a.png", "b", 1)], None, {}), fill_folder, PipelineError,
            r"two images of the run would be written to a\.png"),
    ApiCase("fill_folder: an image path that is a folder", lambda f, i: (
        (f / "run" / "a.png").mkdir(parents=True) or f / "run", [Job(0, "a.png", "a", 0)], None, {}), fill_folder,
        PipelineError, r"run/a\.png is a folder, where the run writes an image"),
    ApiCase("fill_folder: no jobs", lambda f, i: (f / "run", [], None, {}), fill_folder, PipelineError,
            r"the run has no images to make"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("generate: --out holds another command's run", lambda f, i: [
        "generate", "--ckpt", i.pipeline, "--prompts", "color", "--out", another_run(f, i)],
        r"--out .*demo-report " + TAKEN),
    CliCase("generate: --ckpt is a PNG image", lambda f, i: [
        "generate", "--ckpt", png(f / "model.png"), "--prompts", "color", "--out", f / "run"],
        r"cannot read .*model\.png as a torch checkpoint: the file is a PNG image, not a checkpoint; a PixArt "
        r"transformer checkpoint is an official \.pth or \.safetensors file"),
]
