"""Bad-input cases for the shapes world's commands and loaders: ``demo``, ``world make-dataset``,
``make-suites``, ``train-reference``, ``train-extractor``, and the world-FID, oracle, suite
and recipe functions behind them (see tests/bad_input.py).

Case ids start with the command they run (``"COMMAND: what is wrong"``, ``"world make-dataset: ..."``). Every
case fails before anything is sampled, rendered or trained."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

from bad_input import ApiCase, CliCase, truncate
from PIL import Image

from bench.errors import BenchError
from bench.world.components import reuse_components
from bench.world.dataset import load_suite, make_dataset, make_suites
from bench.world.demo import REFERENCE, run_demo
from bench.world.fid import load_world_cnn, train_feature_extractor, world_fid
from bench.world.oracle import position_score, score
from bench.world.reference import ReferenceBudget, check_request
from bench.world.stage_records import continued_record, set_aside_if_inputs_changed

WEIGHTS = "feature_extractor.safetensors"
CONFIG = "feature_extractor.json"


def put(path: Path, content: str | bytes = "") -> Path:
    """``content`` written to ``path`` (its folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def png(path: Path, size=(32, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (110, 110, 110)).save(path)
    return path


def copied(name: str, f, inputs, damage=None) -> Path:
    """A copy of the shared input ``name`` in ``f``, changed by ``damage(folder)``."""
    folder = inputs.copy(name, f)
    if damage is not None:
        damage(folder)
    return folder


def images(f, inputs, damage=None) -> Path:
    """The 6-image world folder (32 px, with captions and manifest.jsonl)."""
    return copied("world_images", f, inputs, damage)


def extractor(f, inputs, damage=None) -> Path:
    """The weights file of a copy of the bundled extractor (its .json beside it)."""
    return copied("extractor", f, inputs, damage) / WEIGHTS


def pipeline_copy(f, inputs, damage=None) -> Path:
    """The tiny random pipeline in diffusers' layout (16 px images)."""
    return copied("diffusers_pipeline", f, inputs, damage)


def rewrite_config(change):
    def damage(folder: Path):
        config = json.loads((folder / CONFIG).read_text())
        change(config)
        (folder / CONFIG).write_text(json.dumps(config))
    return damage


def demo(f, inputs, *extra, out=None) -> list:
    """``demo`` on a copy of the tiny pipeline (16 px images)."""
    return ["demo", "--quick", "--out", out or f / "report", "--reference", pipeline_copy(f, inputs), *extra]


def demo_again(f, inputs, *extra) -> list:
    """``demo`` into a copy of a finished report (its samples, manifest and results must stay as they are)."""
    report = inputs.copy("demo_report", f)
    return ["demo", "--quick", "--categories", "single", "--out", report, *extra]


def damaged_report(f, inputs) -> list:
    args = demo_again(f, inputs, "--reference", pipeline_copy(f, inputs))
    truncate(f / "demo-report" / "images" / "single" / "manifest.json")
    return args


def reference(f, *extra) -> list:
    return ["world", "train-reference", "--work", f / "work", "--out", f / "out", *extra]


def make_dataset_args(f, *extra, out=None) -> list:
    return ["world", "make-dataset", "--out", out or f / "d", "--n", "4", "--size", "32", *extra]


def train_extractor(f, *extra) -> list:
    return ["world", "train-extractor", "--out", f / "x.safetensors", "--n-images", "8", "--steps", "1", *extra]


def spec(category="single", objects=({"shape": "circle", "color": "red"},), relation=None, prompt="a red circle"):
    return {"prompt": prompt, "category": category, "objects": list(objects), "relation": relation}


def box(x: float):
    """A detection as ``position_score`` reads it: centre and box."""
    return SimpleNamespace(x=x, y=0.5, bbox=(x * 32 - 4, 12, x * 32 + 4, 20))


def tiny_image():
    return Image.new("RGB", (32, 32), (110, 110, 110))


def option_cases(command: str, args, table: str) -> list:
    """One case per line of ``table``, ``OPTIONS | MATCH``: ``args(f, inputs, *OPTIONS)`` must fail with MATCH."""
    cases = []
    for line in filter(str.strip, table.splitlines()):
        options, match = (part.strip() for part in line.split(" | "))
        cases.append(CliCase(f"{command}: {options}", lambda f, i, o=tuple(options.split()): args(f, i, *o), match))
    return cases


DEMO_OPTIONS = r"""
--prompts 0                     | --prompts must be a whole number at least 1, got 0
--prompts 500                   | --prompts 500: the single suite has 48 prompts
--seeds 0                       | --seeds must be a whole number at least 1
--seeds -3                      | --seeds must be .* got -3
--size 0                        | --size must be a whole number from 16 to 2,048
--size 1000000                  | --size must be .* got 1000000
--size 18                       | --size 18: .*multiples of 4
--steps 0                       | --steps must be a whole number
--cfg -1                        | --cfg must be a number
--first-seed -1                 | --first-seed must be .* got -1
--categories single,colour      | --categories: unknown categories \['colour'\]
--prompts 1 --categories single | world-FID needs at least 2 images.*--prompts
"""
MAKE_DATASET_OPTIONS = r"""
--n 0                          | --n must be a whole number at least 1
--n -5                         | --n must be .* got -5
--n 100000000000000            | --n: .* GB, and there are .* GB free on the disk
--size 0                       | --size must be .* got 0
--size 8                       | --size must be a whole number from 16 .*texture
--size 100000                  | --size must be .*2,048.* got 100000
--size 1500 --multi-aspect     | --size must be .* got 3000
--workers 0                    | --workers must be a whole number at least 1
--and-fraction 1.5             | --and-fraction must be a number from 0 to 1, got 1.5
--and-fraction -0.1            | --and-fraction must be .* got -0.1
"""
MAKE_SUITES_OPTIONS = r"""
--n 0                          | --n must be a whole number from 1 to 107,520
--n 200000                     | --n must be .*the largest suite, complex, has 107,520 distinct ones.*got 200000
"""
TRAIN_REFERENCE_OPTIONS = r"""
--stage-minutes junk                            | --stage-minutes: 'junk' is not stage=minutes
--stage-minutes stage9=1                        | --stage-minutes names unknown stages \['stage9'\]
--stage-minutes stage2=-1                       | --stage-minutes stage2 must be a number at least 0
--stop-after stage9                             | --stop-after 'stage9' is not a stage
--latent-scale-128 0                            | --latent-scale-128 must be a number above 0
--stage2-steps -1                               | --stage2-steps must be a whole number at least 1, got -1
--stage3-low-lr-steps -5                        | --stage3-low-lr-steps must be a whole number at least 0
--batch-size 0                                  | --batch-size must be a whole number at least 1
--batch-size-128 0                              | --batch-size-128 must be a whole number at least 1
--n-images-64 100 --batch-size 200              | --batch-size 200 is more than the 100 images of --n-images-64
--n-images-128 30 --batch-size-128 16           | --batch-size-128 16 is more than the 10 images of the largest aspect bucket
--n-images-64 0                                 | --n-images-64 must be a whole number at least 1
--n-images-64 100000000000000                   | --n-images-64 and --n-images-128: .* GB
--n-images-64 40 --n-images-128 30 --batch-size 4 --batch-size-128 2 | --n-images-64 or --n-images-128 must be above 64
--lr 0                                          | --lr must be a number above 0
--low-lr 10                                     | --low-lr must be .*learning rates above 1 diverge
--and-fraction 2                                | --and-fraction must be a number from 0 to 1
--hidden 100                                    | --hidden 100 must be a multiple of --heads 3
--patch-size 4                                  | --patch-size 4 must divide every latent side
--depth 0                                       | --depth must be a whole number at least 1
--mixed-precision fp8                           | --mixed-precision must be no, bf16 or fp16
--compile stage2,stage-3                        | --compile names unknown stages \['stage-3'\]
--compile-mode turbo                            | --compile-mode must be one of default, reduce-overhead, .*got .turbo.
--workers 0                                     | --workers must be a whole number at least 1
"""
TRAIN_EXTRACTOR_OPTIONS = r"""
--n-images 1                   | --n-images must be a whole number at least 2
--n-images 10000000000000      | --n-images: .* GB, and there are .* GB of memory
--steps 0                      | --steps must be a whole number at least 1
--steps -1                     | --steps must be .* got -1
"""

CLI_CASES = [
    *option_cases("demo", demo, DEMO_OPTIONS),
    *option_cases("world make-dataset", lambda f, i, *o: make_dataset_args(f, *o), MAKE_DATASET_OPTIONS),
    *option_cases("world make-suites", lambda f, i, *o: ["world", "make-suites", "--out", f / "s", *o],
                  MAKE_SUITES_OPTIONS),
    *option_cases("world train-reference", lambda f, i, *o: reference(f, *o), TRAIN_REFERENCE_OPTIONS),
    *option_cases("world train-extractor", lambda f, i, *o: train_extractor(f, *o), TRAIN_EXTRACTOR_OPTIONS),
    # ---- demo: files and folders ---------------------------------------------------------------
    CliCase("demo: --reference missing", lambda f, i: ["demo", "--out", f / "r", "--reference", f / "nowhere"],
            r"--reference .*nowhere: no such folder"),
    CliCase("demo: --reference not a pipeline folder",
            lambda f, i: ["demo", "--out", f / "r", "--reference", put(f / "ref" / "notes.txt", "x").parent],
            r"--reference .*ref is not a pipeline folder \(no model_index.json\)"),
    CliCase("demo: --reference a file", lambda f, i: ["demo", "--out", f / "r", "--reference", put(f / "ref.json", "{}")],
            r"--reference .*ref.json is not a pipeline folder"),
    CliCase("demo: --reference with a damaged training.json",
            lambda f, i: ["demo", "--out", f / "r", "--reference",
                          pipeline_copy(f, i, lambda p: put(p / "training.json", '{"budget": {'))],
            r"cannot read training record .*training.json: invalid JSON"),
    CliCase("demo: --reference with truncated transformer weights",
            lambda f, i: ["demo", "--quick", "--out", f / "r", "--reference", pipeline_copy(
                f, i, lambda p: truncate(p / "transformer" / "diffusion_pytorch_model.safetensors"))],
            r"diffusion_pytorch_model.safetensors.*truncated or corrupt"),
    CliCase("demo: --out is a file", lambda f, i: demo(f, i, out=put(f / "report.md", "# mine")),
            r"--out .*report.md is a file, not a folder"),
    CliCase("demo: --out holds another model's samples", lambda f, i: demo_again(f, i, "--reference", REFERENCE),
            r"--out .*demo-report holds single samples of a run with different .*checkpoint_sha256"),
    CliCase("demo: --out holds samples with other seeds",
            lambda f, i: demo_again(f, i, "--reference", pipeline_copy(f, i), "--first-seed", "7"),
            r"holds single samples of a run with different seed.*use another --out folder"),
    CliCase("demo: --out with a damaged sample manifest", lambda f, i: damaged_report(f, i),
            r"cannot read sample manifest .*single.manifest.json: invalid JSON"),
    # ---- world make-dataset, make-suites: folders ----------------------------------------------
    CliCase("world make-dataset: --out is a file", lambda f, i: make_dataset_args(f, out=put(f / "data.txt", "mine")),
            r"--out .*data.txt is a file, not a folder"),
    CliCase("world make-dataset: --out under a file",
            lambda f, i: make_dataset_args(f, out=put(f / "data.txt", "x") / "d"), r"--out .*data.txt.d: .*data.txt is a file"),
    CliCase("world make-dataset: --out holds a dataset of another --seed",
            lambda f, i: make_dataset_args(f, "--n", "6", "--seed", "1", out=images(f, i)),
            r"--out .*world-images holds a dataset made with other settings"),
    CliCase("world make-dataset: --out holds a dataset of another --size",
            lambda f, i: make_dataset_args(f, "--n", "6", "--size", "64", out=images(f, i)),
            r"holds a dataset made with other settings \(--seed or --size"),
    CliCase("world make-dataset: --out with a damaged manifest",
            lambda f, i: make_dataset_args(f, "--n", "6", out=images(f, i, lambda d: truncate(d / "manifest.jsonl"))),
            r"cannot read dataset manifest .*manifest.jsonl: line \d+ is not JSON"),
    CliCase("world make-suites: --out is a file",
            lambda f, i: ["world", "make-suites", "--out", put(f / "suites.json", "[]")], r"--out .*suites.json is a file"),
    # ---- world train-reference: folders --------------------------------------------------------
    CliCase("world train-reference: --stage3-from missing", lambda f, i: reference(f, "--stage3-from", f / "kept"),
            r"--stage3-from .*kept: no such folder"),
    CliCase("world train-reference: --stage3-from without weights",
            lambda f, i: reference(f, "--stage3-from", put(f / "kept" / "notes.txt").parent), r"no \*.safetensors weights in"),
    CliCase("world train-reference: --stage3-from with --stop-after stage2",
            lambda f, i: reference(f, "--stage3-from", pipeline_copy(f, i), "--stop-after", "stage2"),
            r"--stage3-from skips stages 1-2b, so --stop-after stage2 would train nothing"),
    CliCase("world train-reference: --stage3-from with a damaged training.json",
            lambda f, i: reference(f, "--stage3-from", pipeline_copy(f, i, lambda p: put(p / "training.json", "{"))),
            r"cannot read training record .*training.json"),
    CliCase("world train-reference: --components missing", lambda f, i: reference(f, "--components", f / "comp"),
            r"--components .*comp: no such folder"),
    CliCase("world train-reference: --components missing its parts",
            lambda f, i: reference(f, "--components", pipeline_copy(f, i, lambda p: shutil.rmtree(p / "vae"))),
            r"--components .*: no vae/ there"),
    CliCase("world train-reference: --components with a damaged VAE config",
            lambda f, i: reference(f, "--components", pipeline_copy(f, i, lambda p: truncate(p / "vae" / "config.json"))),
            r"cannot read VAE config .*vae.config.json"),
    CliCase("world train-reference: --out is a file",
            lambda f, i: ["world", "train-reference", "--work", f / "w", "--out", put(f / "model.bin", b"\0")],
            r"--out .*model.bin is a file"),
    CliCase("world train-reference: --work is a file",
            lambda f, i: ["world", "train-reference", "--work", put(f / "work.txt", "x"), "--out", f / "o"],
            r"--work .*work.txt is a file"),
    # ---- world train-extractor: --out ----------------------------------------------------------
    CliCase("world train-extractor: --out not a .safetensors file",
            lambda f, i: ["world", "train-extractor", "--out", f / "x.pt"],
            r"--out .*x.pt: the file name must end in .safetensors"),
    CliCase("world train-extractor: --out is a folder",
            lambda f, i: ["world", "train-extractor", "--out", put(f / "w.safetensors" / "keep.txt").parent],
            r"--out .*w.safetensors is a folder"),
    CliCase("world train-extractor: --out's folder is a file",
            lambda f, i: ["world", "train-extractor", "--out", put(f / "runs", "x") / "x.safetensors"],
            r"--out .*runs.x.safetensors: .*runs is a file"),
]


def _pair(f, sizes):
    return [Image.new("RGB", s) for s in sizes], [tiny_image(), tiny_image()]


API_CASES = [
    ApiCase("world_fid: mixed sizes", lambda f, i: _pair(f, [(32, 32), (64, 64)]), world_fid, BenchError,
            r"all images of one set must share a size"),
    ApiCase("world_fid: empty image list", lambda f, i: ([], [tiny_image(), tiny_image()]), world_fid, BenchError,
            r"the reference set \(images in memory\) has 0 images"),
    ApiCase("world_fid: one image per set", lambda f, i: ([tiny_image()], [tiny_image()]), world_fid, BenchError,
            r"the generated set \(images in memory\) has 1 image; FID needs at least 2"),
    ApiCase("world_fid: a folder with a corrupt image",
            lambda f, i: (images(f, i, lambda d: put(d / "zz.jpg", b"\xff\xd8junk")), [tiny_image()] * 2), world_fid,
            BenchError, r"cannot read image .*zz.jpg"),
    ApiCase("load_world_cnn: truncated weights", lambda f, i: (extractor(f, i, lambda d: truncate(d / WEIGHTS, 0.2)),),
            load_world_cnn, BenchError, r"cannot read feature-extractor weights .*feature_extractor.safetensors"),
    ApiCase("load_world_cnn: damaged .json", lambda f, i: (extractor(f, i, lambda d: put(d / CONFIG, "{\"arch\": ")),),
            load_world_cnn, BenchError, r"cannot read feature-extractor config .*feature_extractor.json"),
    ApiCase("load_world_cnn: .json without the network's sizes",
            lambda f, i: (extractor(f, i, rewrite_config(lambda c: c.pop("channels"))),), load_world_cnn, BenchError,
            r"feature-extractor config .*feature_extractor.json lacks channels"),
    ApiCase("score: unknown category", lambda f, i: (tiny_image(), spec("numeracy")), score, BenchError,
            r"prompt spec 'a red circle': unknown category 'numeracy'"),
    ApiCase("score: spec without objects", lambda f, i: (tiny_image(), spec(objects=())), score, BenchError,
            r"prompt spec 'a red circle': \"objects\" must be a non-empty list"),
    ApiCase("score: spec with objects missing", lambda f, i: (tiny_image(), {"prompt": "two", "category": "color"}),
            score, BenchError, r"prompt spec 'two': \"objects\" must be"),
    ApiCase("score: spatial spec without relation",
            lambda f, i: (tiny_image(), spec("spatial", [{"shape": "circle"}, {"shape": "star"}], prompt="a circle, a star")),
            score, BenchError, r"prompt spec 'a circle, a star': a spatial spec needs two objects and a relation"),
    ApiCase("score: spatial spec with one object",
            lambda f, i: (tiny_image(), spec("spatial", relation="above")), score, BenchError,
            r"a spatial spec needs two objects .*got 1 object"),
    ApiCase("score: unknown color", lambda f, i: (tiny_image(), spec(objects=[{"shape": "circle", "color": "teal"}])),
            score, BenchError, r"prompt spec 'a red circle': unknown color 'teal'"),
    ApiCase("score: unknown attribute", lambda f, i: (tiny_image(), spec(objects=[{"shape": "circle", "colour": "red"}])),
            score, BenchError, r"unknown object attribute 'colour'"),
    ApiCase("score: unknown relation",
            lambda f, i: (tiny_image(), spec("spatial", [{"shape": "circle"}, {"shape": "star"}], "on top of")),
            score, BenchError, r"unknown relation 'on top of'"),
    ApiCase("position_score: unknown relation", lambda f, i: (box(0.2), box(0.8), "behind"), position_score, BenchError,
            r"unknown relation 'behind'"),
    ApiCase("load_suite: missing file", lambda f, i: (f, "single"), load_suite, BenchError,
            r"prompt suite 'single' not found: .*single_val.json"),
    ApiCase("load_suite: truncated JSON",
            lambda f, i: (put(f / "s" / "color_val.json", '[{"prompt": "a red').parent, "color"),
            load_suite, BenchError, r"cannot read prompt suite .*color_val.json: invalid JSON at line 1"),
    ApiCase("load_suite: not a list of specs", lambda f, i: (put(f / "s" / "shape_val.json", '{"a": 1}').parent, "shape"),
            load_suite, BenchError, r"prompt suite .*shape_val.json is not a list of prompt specs"),
    ApiCase("make_dataset: medium_fraction 2", lambda f, i: (f / "d", 4, 32), lambda out, n, size: make_dataset(
        out, n, size, medium_fraction=2.0), BenchError, r"medium_fraction must be a number from 0 to 1, got 2.0"),
    ApiCase("make_dataset: a size with a zero side", lambda f, i: (f / "d", 4, (32, 0)), make_dataset, BenchError,
            r"--size must be .* got 0"),
    ApiCase("make_dataset: n not a whole number", lambda f, i: (f / "d", 2.5, 32), make_dataset, BenchError,
            r"--n must be a whole number at least 1, got 2.5"),
    ApiCase("make_suites: n -1", lambda f, i: (f / "s", -1), make_suites, BenchError, r"--n must be .* got -1"),
    ApiCase("train_feature_extractor: frac_128 1.5", lambda f, i: (f / "x.safetensors",),
            lambda out: train_feature_extractor(out, n_images=8, steps=1, frac_128=1.5, verbose=False), BenchError,
            r"frac_128 must be a number from 0 to 1"),
    ApiCase("run_demo: --reference a file", lambda f, i: (f / "r", put(f / "ref.txt", "x")),
            lambda out, ref: run_demo(out, reference=ref, log=lambda *a: None), BenchError,
            r"--reference .*ref.txt is not a pipeline folder"),
    ApiCase("check_request: depth 0", lambda f, i: (ReferenceBudget(depth=0),), check_request, BenchError,
            r"--depth must be a whole number at least 1, got 0"),
    ApiCase("check_request: vae_batch_size 0", lambda f, i: (ReferenceBudget(vae_batch_size=0),), check_request,
            BenchError, r"vae_batch_size must be a whole number at least 1"),
    ApiCase("check_request: stage_minutes NaN", lambda f, i: (ReferenceBudget(stage_minutes={"stage3": float("nan")}),),
            check_request, BenchError, r"--stage-minutes stage3 must be a number at least 0, got nan"),
    ApiCase("check_request: stage3_lr negative", lambda f, i: (ReferenceBudget(stage3_lr=-1e-4),), check_request,
            BenchError, r"--stage3-lr must be a number above 0"),
    ApiCase("reuse_components: folder missing its parts",
            lambda f, i: (pipeline_copy(f, i, lambda p: shutil.rmtree(p / "tokenizer")), f / "comp", print),
            reuse_components, BenchError, r"--components .*: no tokenizer/ there"),
    ApiCase("continued_record: damaged training.json",
            lambda f, i: (pipeline_copy(f, i, lambda p: put(p / "training.json", "[1,")) / "transformer", {}),
            continued_record, BenchError, r"cannot read training record .*training.json"),
    ApiCase("set_aside_if_inputs_changed: damaged inputs.json",
            lambda f, i: (put(f / "stage2" / "inputs.json", '{"init_from"').parent, None, None, print),
            set_aside_if_inputs_changed, BenchError, r"cannot read stage record .*stage2.inputs.json"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
TAKEN = r"holds a demo run \(results\.json\); choose another folder or pass --overwrite"


def another_run(f, inputs) -> Path:
    """A copy of a finished demo report: another command's run, which no command may write into."""
    return inputs.copy("demo_report", f)


CLI_CASES += [
    CliCase("demo: --out holds another command's run", lambda f, i: ["demo", "--quick", "--out", i.copy(
        "world_images", f)], r"--out .*world-images holds a world dataset \(manifest\.jsonl\); choose another "
                             r"folder or pass --overwrite"),
    CliCase("world make-dataset: --out holds another command's run", lambda f, i: make_dataset_args(
        f, out=another_run(f, i)), r"--out .*demo-report " + TAKEN),
    CliCase("world make-suites: --out holds another command's run", lambda f, i: [
        "world", "make-suites", "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("world train-reference: --out holds another command's run", lambda f, i: [
        "world", "train-reference", "--work", f / "work", "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("world train-extractor: --out exists", lambda f, i: [
        "world", "train-extractor", "--out", i.copy("extractor", f) / "feature_extractor.safetensors", "--steps", "1"],
        r"--out .*feature_extractor\.safetensors already exists \(made from other inputs\); choose another file "
        r"name or pass --overwrite"),
]
