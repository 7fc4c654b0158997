"""Bad-input cases for ``compbench`` (see tests/bad_input.py): options, evaluators, the --images folder and
its files. Every case fails before a model loads or an image is made, except the damaged-folder cases, which
fail before anything is scored or written."""

from bad_input import ApiCase, CliCase, write
from bad_input_world import png

from bench.compbench.metrics import Evaluators
from bench.compbench.prompts import load_prompts
from bench.compbench.samples import list_samples
from bench.errors import BenchError

BLIP = ["--blip", "blip-folder"]  # never loaded: every case fails before


def compbench(f, *args) -> list:
    return ["compbench", "--out", f / "out", *args]


def images(f, names: list[str], category: str = "color"):
    """An --images folder with ``names`` in DIR/<category>/samples/."""
    for name in names:
        png(f / "imgs" / category / "samples" / name)
    return f / "imgs"


FIRST = load_prompts("color")[0]

CLI_CASES = [
    CliCase("compbench: neither --ckpt nor --images", lambda f, i: compbench(f, *BLIP, "--categories", "color"),
            r"give --ckpt MODEL to generate the images, or --images DIR"),
    CliCase("compbench: both --ckpt and --images", lambda f, i: compbench(
        f, "--ckpt", i.pipeline, "--images", f, *BLIP, "--categories", "color"), r"give --ckpt MODEL .* or --images"),
    CliCase("compbench: unknown category", lambda f, i: compbench(f, "--images", f, "--categories", "colour"),
            r"unknown categories \['colour'\]"),
    CliCase("compbench: color without --blip", lambda f, i: compbench(f, "--images", f, "--categories", "color"),
            r"missing evaluators: --blip PATH .* for color"),
    CliCase("compbench: the six categories without evaluators", lambda f, i: compbench(f, "--images", f),
            r"--blip PATH .* for color, shape, texture, complex; --clip PATH .* for non_spatial, complex; "
            r"--detections FILE or --detector .* for spatial, complex"),
    CliCase("compbench: 3d_spatial without depth", lambda f, i: compbench(
        f, "--images", f, "--categories", "3d_spatial", "--detections", write(f / "d.json", "{}")),
        r"--depth PATH .* or --depth-dir DIR for 3d_spatial"),
    CliCase("compbench: --detector and --detections", lambda f, i: compbench(
        f, "--images", f, "--categories", "spatial", "--detector", "owlv2:x", "--detections", write(f / "d.json", "{}")),
        r"give one of --detector and --detections, not both"),
    CliCase("compbench: --suite other", lambda f, i: compbench(f, "--images", f, "--suite", "geneval"),
            r"--suite must be compbench or world"),
    CliCase("compbench: --suite world with --images", lambda f, i: compbench(f, "--images", f, "--suite", "world"),
            r"--suite world generates its images: give --ckpt"),
    CliCase("compbench: --seeds junk", lambda f, i: compbench(f, "--ckpt", i.pipeline, "--seeds", "many", *BLIP,
                                                              "--categories", "color"), r"--seeds"),
    *[CliCase(f"compbench: {option} {value}", lambda f, i, o=option, v=value: compbench(
        f, "--images", f, *BLIP, "--categories", "color", o, v), message)
      for option, value, message in (
          ("--limit", "0", r"--limit must be a whole number from 1"),
          ("--images-per-prompt", "0", r"--images-per-prompt must be a whole number from 1"),
          ("--np-num", "0", r"--np-num must be a whole number from 1 to 64"),
          ("--batch-size", "-2", r"--batch-size must be a whole number from 1"),
          ("--generation-batch", "0", r"--generation-batch must be a whole number from 1"),
          ("--threshold", "1.5", r"--threshold must be a number from 0 to 1"),
          ("--color-list", "2024", r"--color-list must be one of 2025, 2023"))],
    CliCase("compbench: --out is a file", lambda f, i: [
        "compbench", "--out", write(f / "taken", "keep"), "--images", f, *BLIP, "--categories", "color"],
        r"--out .*taken is a file"),
    CliCase("compbench: --images without the category's folder", lambda f, i: compbench(
        f, "--images", (f / "imgs").mkdir() or f / "imgs", *BLIP, "--categories", "color,shape"),
        r"--images .*imgs: no color/samples/ folder there"),
    CliCase("compbench: --images with a misnamed file", lambda f, i: compbench(
        f, "--images", images(f, [f"{FIRST}_000000.png", "picture.png"]), *BLIP, "--categories", "color"),
        r"picture\.png is not named <prompt>_<NNNNNN>\.png"),
    CliCase("compbench: --images with an empty samples folder", lambda f, i: compbench(
        f, "--images", (f / "imgs" / "color" / "samples").mkdir(parents=True) or f / "imgs", *BLIP,
        "--categories", "color"), r"samples holds no images"),
]


API_CASES = [
    ApiCase("list_samples: two files with one index", lambda f, i: (
        images(f, [f"{FIRST}_000001.png", f"a cat_000001.png"]) / "color",),
        list_samples, BenchError, r"have the same index 1"),
    ApiCase("list_samples: no samples folder", lambda f, i: (f,), list_samples, BenchError,
            r"no samples/ folder in .*: the official layout"),
    ApiCase("Evaluators.check: numeracy without a detector", lambda f, i: (Evaluators(), ["numeracy"]),
            Evaluators.check, BenchError, r"--detections FILE or --detector .* for numeracy"),
    ApiCase("load_prompts: unknown category", lambda f, i: ("colors",), load_prompts, BenchError,
            r"unknown T2I-CompBench category 'colors'"),
]
