"""Bad-input cases for ``fid coco`` and ``fid world`` and the functions behind them (``bench.fid.coco``,
``bench.fid.protocol``, ``bench.fid.world``, the store's indexed layout); see tests/bad_input.py.

Each COCO case writes a tiny COCO-format captions file and its images (``test_fid_coco.write_tiny_coco``)
in its folder, then damages one thing. Every case fails before a model is loaded or an image is made,
except the ``--ckpt`` ones, which fail when the model loads: nothing is written either way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bad_input import ApiCase, CliCase, truncate, write
from bad_input_model import no_cuda
from bad_input_world import option_cases
from PIL import Image

from bench.errors import BenchError
from bench.fid.coco import read_caption_list, read_coco_captions, reference_files, sample_captions
from bench.fid.world import score_world
from bench.generate import FolderSource, generate


def tiny_coco(f: Path, change=None) -> tuple[Path, Path]:
    """A 4-image COCO captions file and val2014/ in ``f`` (made once: a case damages it, then builds its
    arguments); ``change(data)`` edits the file's JSON."""
    from test_fid_coco import write_tiny_coco

    captions, images = f / "coco" / "captions_val2014.json", f / "coco" / "val2014"
    if not captions.exists():
        write_tiny_coco(f / "coco", n_images=4, captions_per_image=2, size=20)
    if change is not None:
        data = json.loads(captions.read_text())
        change(data)
        captions.write_text(json.dumps(data))
    return captions, images


def coco(f, i, *extra, change=None, captions=None, images=None, out=None, weights=None, ckpt=None) -> list:
    """``fid coco`` on the tiny COCO file (3 of its 4 images), the tiny pipeline and the random Inception."""
    file, folder = tiny_coco(f, change)
    return ["fid", "coco", "--captions", captions or file, "--images", images or folder, "--n", "3", "--ckpt",
            ckpt or i.pipeline, "--out", out or f / "out", "--cache", f / "cache", "--inception-weights",
            weights or i.inception, "--steps", "2", "--device", "cpu", *extra]


def world(f, i, *extra, out=None) -> list:
    return ["fid", "world", "--out", out or f / "out", "--categories", "single", "--prompts", "2", "--steps", "2",
            "--no-cache", "--device", "cpu", *extra]


def drop_image(f: Path) -> Path:
    """The images folder without the file of the first drawn image (seed 0, n 3)."""
    _, folder = tiny_coco(f)
    rows = sample_captions(read_coco_captions(f / "coco" / "captions_val2014.json"), 3, 0)
    (folder / rows[0]["file_name"]).unlink()
    return folder


def rgba_image(f: Path) -> Path:
    """The images folder with the first drawn image replaced by one with transparency."""
    _, folder = tiny_coco(f)
    rows = sample_captions(read_coco_captions(f / "coco" / "captions_val2014.json"), 3, 0)
    path = folder / rows[1]["file_name"]
    Image.new("RGBA", (20, 20), (1, 2, 3, 100)).save(path, format="PNG")
    return folder


def pop(key):
    return lambda data: data.pop(key)


def set_item(key, index, value):
    def change(data):
        data[key][index] = value
    return change


def other_list(f: Path) -> Path:
    write(f / "out" / "captions.jsonl", '{"index": 0, "image_id": 1, "file_name": "x.jpg", "caption": "a cat"}\n')
    return f / "out"


def other_run(f: Path) -> Path:
    write(f / "out" / "manifest.json", json.dumps({"images": []}))
    return f / "out"


COCO_OPTIONS = r"""
--n 0                     | --n must be a whole number from 1 to 4 \(.*captions_val2014\.json has 4 images with captions
--n 5                     | --n must be a whole number from 1 to 4 .*got 5
--seed -1                 | --seed must be a whole number from 0 to 4,294,967,295, got -1
--caption-policy longest  | Invalid value for '--caption-policy'
--reference val2017       | Invalid value for '--reference'
--resize bicubic          | Invalid value for '--resize'
--extractor vgg16         | Invalid value for '--extractor'
--fid-batch-size 0        | --fid-batch-size must be a whole number from 1 to 4,096, got 0
--no-cache                | --cache and --no-cache contradict each other
--steps 0                 | --steps must be a whole number from 1 to 1,000, got 0
--device tpu              | --device 'tpu' is not a device name
"""

WORLD_OPTIONS = r"""
--categories circles          | --categories: unknown categories \['circles'\]
--prompts 0                   | --prompts must be a whole number at least 1, got 0
--images-per-prompt 0         | --images-per-prompt must be a whole number from 1 to 1,000, got 0
--seed -2                     | --seed must be a whole number from 0 to 4,294,967,295, got -2
--prompts 1 --categories single | world-FID needs at least 2 images, and this run makes 1
--prompts 49                  | --prompts 49: the single suite has 48 prompts; ask for at most that many
--fid-batch-size 0            | --fid-batch-size must be a whole number from 1 to 4,096, got 0
"""

CLI_CASES = [
    # ---- the captions file ----------------------------------------------------------------------
    CliCase("fid coco: --captions missing", lambda f, i: coco(f, i, captions=f / "nowhere.json"),
            r"COCO captions file not found: .*nowhere\.json"),
    CliCase("fid coco: --captions cut short", lambda f, i: coco(f, i, captions=truncate(tiny_coco(f)[0])),
            r"cannot read COCO captions file .*captions_val2014\.json: invalid JSON at line 1"),
    CliCase("fid coco: --captions a JSON list", lambda f, i: coco(f, i, captions=write(f / "list.json", "[]")),
            r"COCO captions file .*list\.json holds a JSON list, not an object"),
    CliCase("fid coco: --captions without annotations", lambda f, i: coco(f, i, change=pop("annotations")),
            r"captions_val2014\.json has no 'annotations' list; give a COCO captions file"),
    CliCase("fid coco: an image entry without file_name", lambda f, i: coco(
        f, i, change=set_item("images", 1, {"id": 5})),
            r"captions_val2014\.json: images\[1\] is not an image entry with a whole-number 'id' and a 'file_name'"),
    CliCase("fid coco: a caption of an image the file does not list", lambda f, i: coco(
        f, i, change=set_item("annotations", 0, {"image_id": 99999, "caption": "a cat", "id": 1})),
            r"annotations\[0\] is a caption of image 99999, which 'images' does not list"),
    CliCase("fid coco: a caption that is not text", lambda f, i: coco(
        f, i, change=set_item("annotations", 2, {"image_id": 1000, "caption": None, "id": 1})),
            r"annotations\[2\] is not a caption entry with a whole-number 'image_id' and a 'caption' text"),
    CliCase("fid coco: a file name outside the images folder", lambda f, i: coco(
        f, i, change=set_item("images", 0, {"id": 1000, "file_name": "../secret.jpg"})),
            r"images\[0\] file_name '\.\./secret\.jpg' is not a name inside the images folder"),
    # ---- the images -----------------------------------------------------------------------------
    CliCase("fid coco: --images missing", lambda f, i: coco(f, i, images=f / "val2014"),
            r"--images folder not found: .*val2014"),
    CliCase("fid coco: a drawn image missing from --images", lambda f, i: coco(f, i, images=drop_image(f)),
            r"--images .*val2014: 1 of the 3 reference images are missing \(.*COCO_val2014_\d+\.jpg\)"),
    CliCase("fid coco: a reference image with transparency", lambda f, i: coco(f, i, images=rgba_image(f)),
            r"image .*COCO_val2014_\d+\.jpg has transparency \(mode RGBA\)"),
    CliCase("fid coco: --resize none with COCO's mixed sizes", lambda f, i: coco(f, i, "--resize", "none"),
            r"all images of one set must share a size with --resize none"),
    # ---- weights and models ---------------------------------------------------------------------
    CliCase("fid coco: --inception-weights missing", lambda f, i: coco(f, i, weights=f / "inception.pth"),
            r"--inception-weights .*inception\.pth: no such file; give the Inception-v3 weights .*download "
            r"https://github\.com/toshas/torch-fidelity/releases/download/v0\.2\.0/"
            r"weights-inception-2015-12-05-6726825d\.pth"),
    CliCase("fid coco: --inception-weights not weights", lambda f, i: coco(
        f, i, weights=write(f / "inception.pth", b"not a torch file")),
            r"cannot load Inception-v3 weights .* from .*inception\.pth"),
    CliCase("fid coco: --clip-score model missing", lambda f, i: coco(f, i, "--clip-score", f / "no-clip"),
            r"CLIP model not found: .*no-clip"),
    CliCase("fid coco: --ckpt missing", lambda f, i: coco(f, i, ckpt=f / "no-model"),
            r"no-model"),
    CliCase("fid coco: --device cuda without CUDA", lambda f, i: no_cuda() or coco(f, i, "--device", "cuda"),
            r"--device cuda: no CUDA device is available"),
    # ---- the run folder -------------------------------------------------------------------------
    CliCase("fid coco: --out a file", lambda f, i: coco(f, i, out=write(f / "run", "keep")),
            r"--out .*run is a file, not a folder"),
    CliCase("fid coco: --out holds another caption list", lambda f, i: coco(f, i, out=other_list(f)),
            r"out/captions\.jsonl holds another caption list .*use another --out folder"),
    CliCase("fid coco: --out holds another command's run", lambda f, i: coco(f, i, out=other_run(f)),
            r"--out .*out holds a generation run with no captions\.jsonl"),
    *option_cases("fid coco", coco, COCO_OPTIONS),
    # ---- fid world ------------------------------------------------------------------------------
    CliCase("fid world: --world-weights missing", lambda f, i: world(f, i, "--world-weights", f / "w.safetensors"),
            r"--world-weights .*w\.safetensors: no such file"),
    CliCase("fid world: --ckpt missing", lambda f, i: world(f, i, "--ckpt", f / "no-model"), r"no-model"),
    CliCase("fid world: --out a file", lambda f, i: world(f, i, out=write(f / "run", "keep")),
            r"--out .*run is a file, not a folder"),
    CliCase("fid world: --out holds another run", lambda f, i: world(f, i, out=other_coco_run(f)),
            r"holds a run with different"),
    *option_cases("fid world", world, WORLD_OPTIONS),
]


def other_coco_run(f: Path) -> Path:
    """A folder with an indexed run of other prompts (made by the store directly, without FID)."""
    from bench.generate import load_source
    from conftest import build_tiny_pipeline

    build_tiny_pipeline().save_pretrained(f / "pipe")
    generate(load_source(str(f / "pipe"), steps=1), ["a cat", "a dog"], f / "out", layout="indexed",
             progress=False)
    shutil.rmtree(f / "pipe")
    return f / "out"


API_CASES = [
    ApiCase("read_coco_captions: no images", lambda f, i: (write(f / "c.json", '{"images": [], "annotations": []}'),),
            read_coco_captions, BenchError, r"COCO captions file .*c\.json lists no images"),
    ApiCase("read_coco_captions: a repeated image id", lambda f, i: (tiny_coco(f, set_item(
        "images", 1, {"id": 1000, "file_name": "x.jpg"}))[0],),
            read_coco_captions, BenchError, r"images\[1\] repeats image id 1000"),
    ApiCase("sample_captions: unknown policy", lambda f, i: (read_coco_captions(tiny_coco(f)[0]), 2, 0, "best"),
            sample_captions, BenchError, r"--caption-policy must be one of random, first, all, got 'best'"),
    ApiCase("reference_files: unknown policy", lambda f, i: (read_coco_captions(tiny_coco(f)[0]), [],
                                                             f / "coco" / "val2014", "train"),
            reference_files, BenchError, r"--reference must be one of sampled, all, got 'train'"),
    ApiCase("read_caption_list: a line cut short", lambda f, i: (write(
        f / "captions.jsonl", '{"index": 0, "image_id": 1, "file_name": "a.jpg", "caption": "a cat"}\n{"index": 1, '),),
            read_caption_list, BenchError, r"caption list .*captions\.jsonl, line 2: not a row"),
    ApiCase("generate: the indexed layout with a folder of images", lambda f, i: (
        FolderSource(write(f / "images" / "samples" / "a cat_000000.png", b"").parent.parent), ["a cat"], f / "out"),
            lambda source, prompts, out: generate(source, prompts, out, layout="indexed"), BenchError,
            r"the indexed layout makes one image per prompt, with a model"),
    ApiCase("score_world: fewer specs than images", lambda f, i: ([f / "a.png", f / "b.png"], [{}], [0, 1], f / "out"),
            score_world, BenchError, r"2 images, 1 specs and 2 seeds: one of each per image"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("fid coco: --out holds a demo report", lambda f, i: [
        "fid", "coco", "--captions", f / "captions.json", "--images", f / "val2014", "--ckpt", i.pipeline, "--out",
        another_run(f, i)], r"--out .*demo-report " + TAKEN),
]
