"""Bad-input cases for ``compbench`` (see tests/bad_input.py): options, evaluators, the --images folder and
its files. Every case fails before a model loads or an image is made, except the damaged-folder cases, which
fail before anything is scored or written."""

import json

from bad_input import ApiCase, CliCase, truncate, write
from bad_input_world import png

from bench.compbench.metrics import Evaluators
from bench.compbench.prompts import load_prompts
from bench.compbench.samples import list_samples
from bench.errors import BenchError
from bench.world.demo import REFERENCE

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
            r"--detections-2d FILE \(the official rule: UniDet RS200's detections\) or --detector .* for spatial, "
            r"complex"),
    CliCase("compbench: 3d_spatial without depth", lambda f, i: compbench(
        f, "--images", f, "--categories", "3d_spatial", "--detections-3d", write(f / "d.json", "{}")),
        r"--depth PATH .* or --depth-dir DIR for 3d_spatial"),
    CliCase("compbench: --detector and --detections-2d", lambda f, i: compbench(
        f, "--images", f, "--categories", "spatial", "--detector", "owlv2:x", "--detections-2d",
        write(f / "d.json", "{}")), r"give one of --detector and --detections-2d, not both"),
    CliCase("compbench: numeracy with only --detections-2d", lambda f, i: compbench(
        f, "--images", f, "--categories", "numeracy", "--detections-2d", write(f / "d.json", "{}")),
        r"--detections-3d FILE \(the official rules: UniDet R50's detections\) or --detector .* for numeracy"),
    CliCase("compbench: --assume-official-seeds with --ckpt", lambda f, i: compbench(
        f, "--ckpt", i.pipeline, *BLIP, "--categories", "color", "--assume-official-seeds"),
        r"--assume-official-seeds is for --images"),
    CliCase("compbench: --suite other", lambda f, i: compbench(f, "--images", f, "--suite", "geneval"),
            r"--suite must be compbench or world"),
    CliCase("compbench: --suite world with --images of no world suite", lambda f, i: compbench(
        f, "--images", f, "--suite", "world"), r"--images .*: no images of the world suite 'single': looked for "
        r".*world-single/samples and .*single/samples"),
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
            Evaluators.check, BenchError, r"--detections-3d FILE .* or --detector .* for numeracy"),
    ApiCase("load_prompts: unknown category", lambda f, i: ("colors",), load_prompts, BenchError,
            r"unknown T2I-CompBench category 'colors'"),
]


# ---- compbench audit: a run's per-image scores against the official scripts' vqa_result.json ----------------------

def audit_run(f, categories=("color",)):
    """A small compbench --out folder (results.json, per_image.csv) of ``categories``, built by the run's writers."""
    from test_compbench_audit import files_of, make_run

    return make_run(f, {c: {name: 0.5 for name in files_of(c)} for c in categories})


def audit_official(f, category="color", rows=None, text=None):
    """The official output of ``category`` for ``audit_run``'s images (or ``rows`` / raw ``text`` instead)."""
    from test_compbench_audit import files_of, write_official

    path = write_official(f / "official", category, {name: 0.5 for name in files_of(category)})
    if rows is not None or text is not None:
        path.write_text(text if text is not None else json.dumps(rows))
    return f / "official"


def audit(f, *args, run=None, official=None):
    return ["compbench", "audit", run if run is not None else audit_run(f), "--official",
            official if official is not None else audit_official(f), *args]


def without(name):
    def setup(f, i):
        run = audit_run(f)
        (run / name).unlink()
        return audit(f, run=run)
    return setup


def other_samples(f, i):
    official = audit_official(f)
    write(official / "color" / "samples" / "a red apple and a green leaf_000007.png", b"")
    return audit(f, official=official)


def our_own_copy(f, i):
    from bench.compbench.samples import ImageScore, SampleImage, write_vqa_result
    from test_compbench_audit import files_of, index

    run = audit_run(f)
    names = files_of("color")
    write_vqa_result(run / "color" / "annotation_blip" / "vqa_result.json",
                     [SampleImage(run / "color" / "samples" / n, n.rsplit("_", 1)[0], index(n)) for n in names],
                     [ImageScore(0.5)] * len(names), "position", True)
    return audit(f, run=run, official=run)


def another_audit(f, i):
    run = audit_run(f)
    write(run / "audit" / "audit.json", json.dumps({"format": "pixart-bench compbench audit",
                                                     "run": {"path": str(f / "elsewhere")}, "official": {}}))
    return audit(f, run=run)


def world_run(f, i):
    run = audit_run(f)
    record = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**record, "format": "pixart-bench compbench (shapes world)"}))
    return audit(f, run=run)


CLI_CASES += [
    CliCase("compbench audit: RUN without results.json", without("results.json"), r"RUN .*run has no results\.json"),
    CliCase("compbench audit: RUN without per_image.csv", without("per_image.csv"), r"RUN .*run has no per_image\.csv"),
    CliCase("compbench audit: RUN is missing", lambda f, i: audit(f, run=f / "nope", official=f),
            r"RUN \(a compbench --out folder\) not found: .*nope"),
    CliCase("compbench audit: RUN is a shapes-world run", world_run,
            r"is a shapes-world run \(compbench --suite world\)"),
    CliCase("compbench audit: --official without official files", lambda f, i: audit(
        f, official=(f / "empty").mkdir() or f / "empty"), r"--official .*empty: no official output for the run's "
        r"categories \(color\); looked for .*empty/color/annotation_blip/vqa_result\.json"),
    CliCase("compbench audit: vqa_result.json is an object", lambda f, i: audit(
        f, official=audit_official(f, text='{"question_id": 0}')), r"vqa_result\.json holds a JSON dict, not the list"),
    CliCase("compbench audit: vqa_result.json truncated", lambda f, i: audit(
        f, official=audit_official(f, text='[{"question_id": 0, "answer": ')), r"cannot read official output "
        r".*vqa_result\.json: invalid JSON at line 1"),
    CliCase("compbench audit: an entry without an answer", lambda f, i: audit(
        f, official=audit_official(f, rows=[{"question_id": 0}])), r"vqa_result\.json, entry 0 is not "
        r"\{\"question_id\", \"answer\"\}"),
    CliCase("compbench audit: an answer that is no number", lambda f, i: audit(
        f, official=audit_official(f, rows=[{"question_id": 0, "answer": "yes"}])), r"entry 0: answer 'yes' is not a "
        r"number"),
    CliCase("compbench audit: question ids of other images", lambda f, i: audit(
        f, official=audit_official(f, rows=[{"question_id": q, "answer": "0.5"} for q in range(100, 109)])),
        r"question_id 100, 101, 102, 103, 104 \(9 of 9\) match none of our 9 images of color"),
    CliCase("compbench audit: fewer answers than images", lambda f, i: audit(
        f, official=audit_official(f, rows=[{"question_id": q, "answer": "0.5"} for q in range(7)])),
        r"has 7 answers for our 9 images of color; none for a pink rose and a black cat_000024\.png"),
    CliCase("compbench audit: a question id twice", lambda f, i: audit(
        f, official=audit_official(f, rows=[{"question_id": q // 2, "answer": "0.5"} for q in range(9)])),
        r"question_id 0, 1, 2, 3 appear\(s\) more than once"),
    CliCase("compbench audit: other file names in samples/", other_samples,
            r"the file names of .*color/samples are not those our run scored for color \(only in .*samples: a red "
            r"apple and a green leaf_000007\.png; only in our per_image\.csv: a blue car"),
    CliCase("compbench audit: our own vqa_result.json as the official one", our_own_copy,
            r"is the vqa_result\.json our run wrote for color"),
    CliCase("compbench audit: --out holds another audit", another_audit,
            r"--out .*audit already holds audit\.json of another run"),
    CliCase("compbench audit: --out is a file", lambda f, i: audit(f, "--out", write(f / "taken", "keep")),
            r"--out .*taken is a file"),
]


# ---- check first, then work: with --ckpt, every evaluator and the spaCy pipeline fail before the model loads --------

def tiny_blip(f, damage=None):
    from test_compbench_blip import build_tiny_blip

    folder = build_tiny_blip(f / "blip")
    if damage is not None:
        damage(folder)
    return folder


def generating(f, i, *args, categories="color"):
    """compbench generating with the tiny pipeline: one image of one prompt, one step."""
    return compbench(f, "--ckpt", i.pipeline, "--categories", categories, "--limit", "1", "--images-per-prompt", "1",
                     "--steps", "1", *args)


CLI_CASES += [
    CliCase("compbench --ckpt: --blip folder without config.json", lambda f, i: generating(
        f, i, "--blip", write(f / "blip" / "vocab.txt", "[PAD]\n").parent),
        r"--blip .*blip: no BLIP-VQA model there: config\.json does not exist; on a machine with internet access"),
    CliCase("compbench --ckpt: --blip with truncated weights", lambda f, i: generating(
        f, i, "--blip", tiny_blip(f, lambda d: truncate(d / "model.safetensors"))),
        r"--blip .*blip: weight file model\.safetensors is damaged: its header describes"),
    CliCase("compbench --ckpt: --blip is a file", lambda f, i: generating(f, i, "--blip", write(f / "blip.bin", "x")),
            r"--blip .*blip\.bin is a file; pass the model folder"),
    CliCase("compbench --ckpt: --detections-2d that does not parse", lambda f, i: generating(
        f, i, "--detections-2d", write(f / "d.json", "{"), categories="spatial"),
        r"--detections-2d: cannot read detections file .*d\.json: invalid JSON at line 1"),
    CliCase("compbench --suite world: a missing --spacy-model", lambda f, i: [
        "compbench", "--ckpt", REFERENCE, "--out", f / "out", "--categories", "single", "--limit", "1",
        "--blip", tiny_blip(f), "--spacy-model", "no_such_pipeline"],
        r"spaCy pipeline 'no_such_pipeline' not found: it is not installed, not a folder, and no installed package "
        r"provides it \(installed pipelines: .*\); install the package that provides it, or pass --spacy-model"),
]

API_CASES += [
    ApiCase("Evaluators.preflight: --depth folder of another model", lambda f, i: (
        Evaluators(depth=str(write(f / "dpt" / "config.json", '{"model_type": "vit"}').parent)), ["depth"]),
        Evaluators.preflight, BenchError, r"--depth .*dpt holds a 'vit' model, not DPT depth model"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("compbench: --out holds another command's run", lambda f, i: [
        "compbench", "--ckpt", REFERENCE, "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("compbench audit: --out holds another command's run", lambda f, i: [
        "compbench", "audit", f / "run", "--official", f / "official", "--out", another_run(f, i)],
        r"--out .*demo-report " + TAKEN),
    CliCase("compbench: --ckpt is a text file", lambda f, i: [
        "compbench", "--ckpt", write(f / "model.pth", "my notes\n"), "--suite", "world", "--out", f / "cb"],
        r"cannot read .*model\.pth as a torch checkpoint: the file is a text file, not a checkpoint; a PixArt "
        r"transformer checkpoint is an official \.pth or \.safetensors file, a transformer folder"),
    CliCase("compbench: a transformer checkpoint without T5 and VAE", lambda f, i: [
        "compbench", "--ckpt", i.native, "--suite", "world", "--out", f / "cb"],
        r"is a transformer checkpoint only: also pass the T5 encoder \(--t5 PATH\) and the VAE \(--vae PATH\) "
        r"folders, or give a pipeline folder made from the three \(pixart-bench export-diffusers"),
    CliCase("compbench: --world-judge without --suite world", lambda f, i: [
        "compbench", "--images", f, "--world-judge", "oracle", "--out", f / "cb", "--categories", "color"],
        r"--world-judge picks the reader of the shapes world's suites: give it with --suite world"),
    CliCase("compbench --suite world: --world-judge neither judge nor oracle", lambda f, i: [
        "compbench", "--images", f, "--suite", "world", "--world-judge", "people", "--out", f / "cb"],
        r"--world-judge must be judge or oracle, got 'people'"),
    CliCase("compbench: --t5 with --images", lambda f, i: [
        "compbench", "--images", f, "--t5", f, "--out", f / "cb", "--categories", "color"],
        r"--t5, --vae and --config go with --ckpt"),
]
