"""The generation store (bench.generate over pixart.sample_run.fill_folder): the official layout and
seeds, resume after a kill, shards (in-process and under accelerate launch), damaged finished images,
refusal of another run's folder, the diffusers adapter against the pipeline itself, and the folder
adapter."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input import snapshot
from PIL import Image
from same_pixels import TOLERANCE, assert_same_image, assert_same_images, pixel_difference
from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.prompts import load_prompts
from bench.errors import BenchError
from bench.generate import FolderSource, generate, load_source, resolve_prompts
from bench.generate.plan import official_jobs, read_prompt_file
from bench.generate.sources import DiffusersSource, PixArtSource
from pixart.errors import PipelineError
from pixart.sample_run import MANIFEST, PROGRESS

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["a red cat", "a blue dog.", "a green car"]


def build_tiny_sd(folder: Path) -> Path:
    """A tiny random Stable Diffusion pipeline (16 px images) saved with save_pretrained: a UNet, a VAE,
    a CLIP text encoder and a CLIP tokenizer made from a vocabulary and merges this function writes."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(c + "</w>" for c in letters), "re", "red</w>",
              "ca", "cat</w>", "do", "dog</w>"]
    merges = ["r e", "re d</w>", "c a", "ca t</w>", "d o", "do g</w>"]
    vocab_dir = folder / "vocabulary"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    (vocab_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (vocab_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(vocab_dir, model_max_length=16)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokens), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder / "tiny-sd")
    return folder / "tiny-sd"


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("sd"))


@pytest.fixture(scope="module")
def pixart(tiny_pipeline_dir):
    return load_source(str(tiny_pipeline_dir), steps=2)


class Recording:
    """A source that records what it is asked for and, like a killed process, stops after ``stop_after`` images."""

    def __init__(self, source, stop_after=None):
        self.source, self.stop_after, self.asked = source, stop_after, []

    def __call__(self, prompts, seeds):
        if self.stop_after is not None and len(self.asked) + len(prompts) > self.stop_after:
            raise KeyboardInterrupt("killed")
        self.asked += list(zip(prompts, seeds))
        return self.source(prompts, seeds)

    def describe(self):
        return self.source.describe()


def same_images_as(folder: Path, reference: Path) -> None:
    """The images of ``folder`` are ``reference``'s: the same names, each within 1/255 (made in other batches,
    or in other processes with other thread counts: see tests/same_pixels.py), and recorded by their own SHA-256."""
    assert_same_images(folder / "samples", reference / "samples")
    if (folder / MANIFEST).is_file():
        for e in json.loads((folder / MANIFEST).read_text())["images"]:
            assert e["sha256"] == hashlib.sha256((folder / e["file"]).read_bytes()).hexdigest(), e["file"]


def mtimes(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (folder / "samples").iterdir()}


@pytest.fixture(scope="module")
def reference_run(pixart, tmp_path_factory):
    """An uninterrupted single-process run of PROMPTS, 2 images each (batches of 4): what every other run must
    equal, within 1/255 where it made the images in other batches."""
    out = tmp_path_factory.mktemp("reference") / "run"
    generate(pixart, PROMPTS, out, images_per_prompt=2, progress=False)
    return out


def test_official_layout_and_seeds():
    jobs = official_jobs(load_prompts("color"), 10)
    assert len(jobs) == 3000
    first, second = load_prompts("color")[:2]
    assert [(j.file, j.seed) for j in jobs[:2]] == [(f"samples/{first}_000000.png", 42),
                                                    (f"samples/{first}_000001.png", 43)]
    assert (jobs[10].file, jobs[10].seed, jobs[10].prompt) == (f"samples/{second}_000010.png", 42, second)
    assert [j.seed for j in jobs[2990:]] == list(range(42, 52))
    assert jobs[2999].file.endswith("_002999.png") and jobs[2999].record == {"prompt_index": 299, "image": 9}
    assert [j.seed for j in official_jobs(["a"], 3, seed=7)] == [7, 8, 9]


def test_prompt_file_is_read_as_the_official_script_reads_it(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes("a red cat\r\n\r\n  a cat with spaces \r\na caf\u00e9\tnote\n".encode())
    assert read_prompt_file(path) == ["a red cat", "  a cat with spaces ", "a caf\u00e9"]
    prompts, where = resolve_prompts("non_spatial")
    assert len(prompts) == 300 and where["category"] == "non_spatial" and len(where["list_sha256"]) == 64
    assert resolve_prompts("color", "2023")[1]["color_list"] == "2023"
    path.write_text("a cat\na dog_house\n")
    with pytest.raises(BenchError, match=r"p\.txt, line 2: the prompt 'a dog_house' contains '_'"):
        read_prompt_file(path)


def test_manifest_records_model_prompts_settings_and_each_image(reference_run, pixart):
    m = json.loads((reference_run / MANIFEST).read_text())
    assert m["model"] == {"kind": "pixart", "class": "PixArtPipeline",
                          "transformer_sha256": pixart.pipe.checkpoint_hash()}
    assert m["settings"]["steps"] == 2 and m["settings"]["dtype"] == "fp32"
    assert m["prompts"] == PROMPTS and m["prompts_sha256"] == hashlib.sha256(
        "a red cat\na blue dog.\na green car\n".encode()).hexdigest()
    assert m["seeds"]["base"] == 42 and torch.__version__.startswith(m["versions"]["torch"])
    assert [(e["file"], e["index"], e["seed"]) for e in m["images"]] == [
        ("samples/a red cat_000000.png", 0, 42), ("samples/a red cat_000001.png", 1, 43),
        ("samples/a blue dog._000002.png", 2, 42), ("samples/a blue dog._000003.png", 3, 43),
        ("samples/a green car_000004.png", 4, 42), ("samples/a green car_000005.png", 5, 43)]
    for e in m["images"]:
        assert e["sha256"] == hashlib.sha256((reference_run / e["file"]).read_bytes()).hexdigest()
    assert not (reference_run / PROGRESS).exists()


def test_killed_run_resumes_losing_and_redoing_nothing(pixart, reference_run, tmp_path):
    out = tmp_path / "run"
    killed = Recording(pixart, stop_after=4)
    with pytest.raises(KeyboardInterrupt):
        generate(killed, PROMPTS, out, images_per_prompt=2, batch_size=2, progress=False)
    assert len(list((out / "samples").iterdir())) == 4 and not (out / MANIFEST).exists()
    record = out / PROGRESS / "rank-0-of-1.jsonl"
    assert len(record.read_text().splitlines()) == 5  # the header and the 4 finished images
    with record.open("a") as f:
        f.write('{"file": "samples/a green')  # a line cut short by the kill
    before = mtimes(out)
    resumed = Recording(pixart)
    manifest = generate(resumed, PROMPTS, out, images_per_prompt=2, batch_size=2, progress=False)
    assert resumed.asked == [("a green car", 42), ("a green car", 43)]
    assert {k: v for k, v in mtimes(out).items() if k in before} == before
    same_images_as(out, reference_run)  # batches of 2 here, of 4 there
    assert len(manifest["images"]) == 6 and not (out / PROGRESS).exists()
    again = Recording(pixart)
    generate(again, PROMPTS, out, images_per_prompt=2, progress=False)
    assert again.asked == []


def test_two_shards_in_turn_cover_the_run_once(pixart, reference_run, tmp_path):
    out = tmp_path / "run"
    first, second = Recording(pixart), Recording(pixart)
    partial = generate(first, PROMPTS, out, images_per_prompt=2, rank=0, world=2, progress=False)
    assert [e["index"] for e in partial["images"]] == [0, 2, 4] and (out / PROGRESS / "rank-0-of-2.jsonl").is_file()
    before = mtimes(out)
    full = generate(second, PROMPTS, out, images_per_prompt=2, rank=1, world=2, progress=False)
    assert sorted(first.asked + second.asked) == sorted((p, s) for p in PROMPTS for s in (42, 43))
    assert not set(first.asked) & set(second.asked)
    assert {k: v for k, v in mtimes(out).items() if k in before} == before  # rank 1 wrote none of rank 0's files
    assert [e["index"] for e in full["images"]] == list(range(6)) and not (out / PROGRESS).exists()
    same_images_as(out, reference_run)  # each shard's images in one batch of 3


def test_a_shard_with_nothing_to_make(pixart, tmp_path):
    """More processes than images: the extra ones make nothing and the run still completes."""
    idle = Recording(pixart)
    assert generate(idle, ["a red cat"], tmp_path / "run", images_per_prompt=1, rank=1, world=2,
                    progress=False)["images"] == []
    assert idle.asked == []
    done = generate(pixart, ["a red cat"], tmp_path / "run", images_per_prompt=1, rank=0, world=2, progress=False)
    assert [e["file"] for e in done["images"]] == ["samples/a red cat_000000.png"]
    assert not (tmp_path / "run" / PROGRESS).exists()


@pytest.mark.slow
def test_accelerate_launch_two_processes(tiny_pipeline_dir, reference_run, tmp_path):
    """Slow (9 s of the 2-core suite: two processes start torch and diffusers). The default tests run the
    shares in turn in one process (test_two_shards_in_turn_cover_the_run_once)."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "bench", "generate", "--ckpt",
           str(tiny_pipeline_dir), "--prompts", str(prompts), "--out", str(tmp_path / "run"), "--steps", "2",
           "--images-per-prompt", "2", "--batch-size", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # each process says how many images it made (the lines of the two may interleave with progress bars)
    made = re.findall(r"rank (\d) of 2: made (\d+) image", proc.stdout + proc.stderr)
    assert sorted(made) == [("0", "3"), ("1", "3")]
    same_images_as(tmp_path / "run", reference_run)  # one image a batch, in processes of their own thread counts
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert len(manifest["images"]) == 6 and not (tmp_path / "run" / PROGRESS).exists()


def test_damaged_finished_images_are_made_again_and_named(pixart, reference_run, tmp_path):
    out = tmp_path / "run"
    import shutil

    shutil.copytree(reference_run, out)
    (out / "samples" / "a red cat_000001.png").unlink()
    Image.new("RGB", (16, 16), (0, 0, 0)).save(out / "samples" / "a blue dog._000002.png")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["images"][5]["sha256"] = "0" * 64
    (out / MANIFEST).write_text(json.dumps(manifest))
    said, again = [], Recording(pixart)
    generate(again, PROMPTS, out, images_per_prompt=2, progress=False, log=said.append)
    assert sorted(again.asked) == [("a blue dog.", 42), ("a green car", 43), ("a red cat", 43)]
    assert len(said) == 1 and "3 finished image(s)" in said[0]
    for name in ("a red cat_000001.png (file missing)", "a blue dog._000002.png (SHA-256 differs",
                 "a green car_000005.png (SHA-256 differs"):
        assert name in said[0]
    same_images_as(out, reference_run)  # the 3 made again in one batch

    ours, theirs = (json.loads((f / MANIFEST).read_text())["images"] for f in (out, reference_run))
    assert [{k: v for k, v in e.items() if k != "sha256"} for e in ours] == [
        {k: v for k, v in e.items() if k != "sha256"} for e in theirs]
    untouched = [i for i in range(6) if i not in (1, 2, 5)]
    assert [ours[i]["sha256"] for i in untouched] == [theirs[i]["sha256"] for i in untouched]  # kept as they were


@pytest.mark.parametrize("change, names", [
    (dict(seed=0), "seeds"), (dict(images_per_prompt=1), "images_per_prompt"),
    (dict(prompts=PROMPTS[:2]), "prompts"), (dict(steps=3), "settings"), (dict(other_model=True), "model")])
def test_folder_of_another_run_is_refused_and_unchanged(change, names, pixart, reference_run, tmp_path,
                                                        tiny_pipeline_dir):
    import shutil

    from conftest import build_tiny_pipeline

    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    before = snapshot(out)
    source = pixart
    if change.get("steps"):
        source = load_source(str(tiny_pipeline_dir), steps=change["steps"])
    if change.get("other_model"):
        build_tiny_pipeline(seed=1).save_pretrained(tmp_path / "other")
        source = load_source(str(tmp_path / "other"), steps=2)
    recording = Recording(source)
    with pytest.raises(PipelineError, match=rf"run holds a run with different {names}; use another --out folder"):
        generate(recording, change.get("prompts", PROMPTS), out, images_per_prompt=change.get("images_per_prompt", 2),
                 seed=change.get("seed", 42), progress=False)
    assert recording.asked == [] and snapshot(out) == before


def test_images_no_record_explains_are_refused(pixart, reference_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference_run / "samples", out / "samples")
    with pytest.raises(PipelineError, match=r"holds images this run would write \(samples/a red cat_000000\.png"):
        generate(pixart, PROMPTS, out, images_per_prompt=2, progress=False)
    (out / "samples" / "a cat_000099.png").write_bytes(b"x")
    with pytest.raises(BenchError, match=r"samples holds 1 file\(s\) this run does not make \(a cat_000099\.png\)"):
        generate(pixart, PROMPTS, out, images_per_prompt=2, progress=False)


def test_legacy_sample_manifest_without_hashes_resumes(tiny_pipeline_dir, tmp_path):
    """A `pixart-bench sample` folder written before images had hashes is resumed, not remade."""
    args = ["sample", "--ckpt", str(tiny_pipeline_dir), "--prompt", "a red cat", "--out", str(tmp_path / "run"),
            "--steps", "2", "--images-per-prompt", "2"]
    assert CliRunner().invoke(app, args).exit_code == 0
    hashed = json.loads((tmp_path / "run" / MANIFEST).read_text())["images"]
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    for e in manifest["images"]:
        e.pop("sha256")
    (tmp_path / "run" / MANIFEST).write_text(json.dumps(manifest))
    kept = (tmp_path / "run" / "00000.png").stat().st_mtime_ns
    assert CliRunner().invoke(app, args).exit_code == 0
    assert (tmp_path / "run" / "00000.png").stat().st_mtime_ns == kept
    assert json.loads((tmp_path / "run" / MANIFEST).read_text())["images"] == hashed


def decoded(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_diffusers_pipeline_gives_the_pipelines_own_images(tiny_sd_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    source = load_source(str(tiny_sd_dir), steps=3, cfg=5.0)
    assert isinstance(source, DiffusersSource)
    prompts = ["a red cat", "a dog"]
    manifest = generate(source, prompts, tmp_path / "run", images_per_prompt=2, seed=5, batch_size=3,
                        progress=False)
    assert manifest["model"]["class"] == "StableDiffusionPipeline" and len(manifest["model"]["weights_sha256"]) == 64
    assert manifest["settings"]["num_inference_steps"] == 3 and manifest["settings"]["guidance_scale"] == 5.0
    assert manifest["settings"]["scheduler"] == "DDIMScheduler" and manifest["settings"]["height"] is None

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_dir)
    pipe.set_progress_bar_config(disable=True)
    # the same calls: the first batch holds images 0-2, the second image 3
    batches = [(["a red cat", "a red cat", "a dog"], [5, 6, 5]), (["a dog"], [6])]
    theirs = [im for texts, seeds in batches for im in pipe(
        texts, num_inference_steps=3, guidance_scale=5.0,
        generator=[torch.Generator().manual_seed(s) for s in seeds]).images]
    for entry, image in zip(manifest["images"], theirs):
        assert (decoded(tmp_path / "run" / entry["file"]) == np.asarray(image, dtype=np.int16)).all()
    # one image per call, as a user would: the same images up to the batch's float rounding
    for entry in manifest["images"]:
        alone = pipe(entry["prompt"], num_inference_steps=3, guidance_scale=5.0,
                     generator=torch.Generator().manual_seed(entry["seed"])).images[0]
        assert np.abs(decoded(tmp_path / "run" / entry["file"]) - np.asarray(alone, dtype=np.int16)).max() <= 1


def test_which_loader_and_options_that_do_not_apply(tiny_sd_dir, tiny_pipeline_dir, tmp_path):
    from conftest import build_tiny_pipeline

    with pytest.raises(BenchError, match=r"--sampler do\(es\) not apply to .*tiny-sd \(a diffusers source\)"):
        load_source(str(tiny_sd_dir), sampler="dpm-solver")
    with pytest.raises(BenchError, match=r"--height 13: StableDiffusionPipeline makes sides that are multiples of 2"):
        load_source(str(tiny_sd_dir), height=13)
    assert isinstance(load_source(str(tiny_pipeline_dir)), PixArtSource)
    build_tiny_pipeline().export_diffusers(tmp_path / "pixart-diffusers")  # a PixArtAlphaPipeline folder
    assert isinstance(load_source(str(tmp_path / "pixart-diffusers")), PixArtSource)
    forced = load_source(str(tmp_path / "pixart-diffusers"), loader="diffusers")
    assert isinstance(forced, DiffusersSource) and forced.describe()["class"] == "PixArtAlphaPipeline"


def test_folder_of_images_is_checked_and_recorded(reference_run, tmp_path):
    import shutil

    folder = tmp_path / "elsewhere"
    shutil.copytree(reference_run / "samples", folder / "samples")
    source = load_source(str(folder))
    assert isinstance(source, FolderSource)
    manifest = generate(source, PROMPTS, folder, images_per_prompt=2)
    assert manifest["model"]["kind"] == "folder" and manifest["seeds"] is None
    assert [e["sha256"] for e in manifest["images"]] == [
        e["sha256"] for e in json.loads((reference_run / MANIFEST).read_text())["images"]]
    assert json.loads((folder / MANIFEST).read_text())["images"] == manifest["images"]
    # our own generated folder is recorded already: it is returned as it is
    before = snapshot(reference_run)
    recorded = generate(FolderSource(reference_run), PROMPTS, reference_run, images_per_prompt=2)
    assert recorded["model"]["kind"] == "pixart"
    assert snapshot(reference_run) == before


def test_folder_of_images_missing_some_is_rejected(reference_run, tmp_path):
    import shutil

    folder = tmp_path / "elsewhere"
    shutil.copytree(reference_run / "samples", folder / "samples")
    (folder / "samples" / "a blue dog._000003.png").unlink()
    with pytest.raises(BenchError, match=r"holds 5 images, and 3 prompts × 2 need 6: missing images: 'a blue dog\.' "
                                         r"has 1 of 2"):
        generate(FolderSource(folder), PROMPTS, folder, images_per_prompt=2)
    assert not (folder / MANIFEST).exists()
    shutil.copy2(reference_run / "samples" / "a blue dog._000003.png", folder / "samples")
    with pytest.raises(BenchError, match=r"a blue dog\._000002\.png is image 3 in number order, where the scorers "
                                         r"expect an image of prompt 2 \('a green car'\)"):
        generate(FolderSource(folder), ["a red cat", "a green car", "a blue dog."], folder, images_per_prompt=2)
    with pytest.raises(BenchError, match=r"a folder of images is recorded where it is"):
        generate(FolderSource(folder), PROMPTS, tmp_path / "copy", images_per_prompt=2)
    assert not (folder / MANIFEST).exists()


def test_scheduler_swap_is_the_pipelines_own(tiny_sd_dir, tmp_path):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    source = load_source(str(tiny_sd_dir), steps=3, scheduler="EulerDiscreteScheduler")
    manifest = generate(source, ["a red cat"], tmp_path / "run", images_per_prompt=1, progress=False)
    assert manifest["settings"]["scheduler"] == "EulerDiscreteScheduler"
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_dir)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe("a red cat", num_inference_steps=3, generator=torch.Generator().manual_seed(42)).images[0]
    assert (decoded(tmp_path / "run" / manifest["images"][0]["file"]) == np.asarray(theirs, dtype=np.int16)).all()


def test_pixart_images_equal_the_sample_commands(pixart, reference_run, tmp_path):
    """The two layouts of one store: prompt 0's images are `sample --seed 42`'s images 0 and 1 (a batch of 2
    there, of 4 in the reference run: within 1/255)."""
    from pixart.sample_run import run_sampling

    run_sampling(pixart.pipe, [PROMPTS[0]], tmp_path / "sample", pixart.settings, seed=42, images_per_prompt=2,
                 progress=False)
    for k in range(2):
        assert_same_image(tmp_path / "sample" / f"{k:05d}.png", reference_run / "samples" / f"a red cat_{k:06d}.png")
    assert pixel_difference(tmp_path / "sample" / "00000.png", tmp_path / "sample" / "00001.png") > TOLERANCE


def test_generate_command(tiny_sd_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\na dog\n")
    args = ["generate", "--ckpt", str(tiny_sd_dir), "--prompts", str(prompts), "--out", str(tmp_path / "run"),
            "--images-per-prompt", "2", "--seeds", "3", "--steps", "2", "--batch-size", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"all 4 images of 2 prompts in {tmp_path / 'run' / 'samples'}" in result.output
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert [(e["file"], e["seed"]) for e in manifest["images"]] == [
        ("samples/a red cat_000000.png", 3), ("samples/a red cat_000001.png", 4), ("samples/a dog_000002.png", 3),
        ("samples/a dog_000003.png", 4)]
    assert manifest["prompt_source"] == {"file": str(prompts)} and manifest["where"]["batch_size"] == 3
    before = mtimes(tmp_path / "run")
    assert CliRunner().invoke(app, args[:-2] + ["--batch-size", "1"]).exit_code == 0  # another batch size resumes
    assert mtimes(tmp_path / "run") == before
    help_text = CliRunner().invoke(app, ["generate", "--help"], terminal_width=200).output
    assert "accelerate launch --num_processes 8 -m bench generate" in help_text
