"""The one ``--out`` rule (``bench.errors.check_out``): a new or empty folder is used, a folder holding the
same command's run of the same inputs is resumed, anything else is refused naming what is there, and
``--overwrite`` replaces only the command's own files. And the diagnosis of a ``--ckpt`` that is not a
checkpoint, or a transformer checkpoint given without its T5 encoder and VAE."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import typer.main
from conftest import tiny_model
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from bench.cli import app
from bench.errors import BenchError, check_new_file, check_out
from bench.world.demo import REFERENCE
from pixart.checkpoints import save_transformer

runner = CliRunner()

# every command that writes files (its --out, DST or output_dir); caption appends to one file of its own,
# and refuses one of other captions (there is nothing of others' in it to keep)
WRITERS = ["generate", "sample", "train", "extract-features", "convert", "export-diffusers", "compbench",
           "compbench audit", "fid folder", "fid coco", "fid world", "ablate cost", "ablate fid", "ablate train",
           "study create", "study results", "study demo", "demo", "world make-dataset", "world make-suites",
           "world train-reference", "world train-extractor", "report"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, pattern: str) -> str:
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    one = " ".join(result.output.split())  # rich may wrap a long line
    assert re.search(pattern, one), f"{pattern!r} not in {one}"
    return one


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def images(folder: Path, n: int = 6, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from commands(cmd, (*prefix, name))
        yield " ".join((*prefix, name)), cmd


# ---- the rule itself ---------------------------------------------------------------------------


def test_every_command_that_writes_takes_overwrite():
    found = dict(commands())
    assert set(WRITERS) <= set(found), sorted(set(WRITERS) - set(found))
    lacking = [name for name in WRITERS if not any("--overwrite" in p.opts for p in found[name].params)]
    assert not lacking, f"no --overwrite: {lacking}"


def test_new_empty_and_own_folders_are_used(tmp_path):
    assert check_out(tmp_path / "new", "fid folder") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"")  # hidden files are nobody's run
    check_out(tmp_path / "empty", "fid folder")
    (tmp_path / "mine" / "samples").mkdir(parents=True)  # an interrupted generate run: its own resume decides
    check_out(tmp_path / "mine", "generate")


def test_other_content_is_named_and_overwrite_lets_it_be(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"format": "pixart-bench compbench", "categories": {}}))
    with pytest.raises(BenchError, match=r"--out .*taken holds a compbench run \(results\.json\); choose another "
                                         r"folder or pass --overwrite"):
        check_out(folder, "study results")
    check_out(folder, "study results", overwrite=True)
    (tmp_path / "notes").mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (tmp_path / "notes" / name).write_text("mine")
    with pytest.raises(BenchError, match=r"holds files that fid folder does not write \(a\.txt, b\.txt, c\.txt and 1 "
                                         r"more\); choose another folder or pass --overwrite"):
        check_out(tmp_path / "notes", "fid folder")


def test_a_run_of_other_inputs_is_refused_unless_it_may_be_replaced(tmp_path):
    (tmp_path / "study.json").write_text("{}")
    with pytest.raises(BenchError, match=r"holds a study \(study\.json\) made from other inputs; choose another "
                                         r"folder$"):
        check_out(tmp_path, "study create", same=lambda folder: False, replace=False, overwrite=True)
    check_out(tmp_path, "study create", same=lambda folder: True)
    with pytest.raises(BenchError, match=r"holds a study \(study\.json\); choose another folder or pass --overwrite"):
        check_out(tmp_path, "study create", same=False)  # inputs that cannot be compared
    check_out(tmp_path, "study create", same=False, overwrite=True)


def test_an_output_file_is_new_or_the_same_inputs(tmp_path):
    path = tmp_path / "x.safetensors"
    check_new_file(path)
    path.write_bytes(b"weights")
    with pytest.raises(BenchError, match=r"--out .*x\.safetensors already exists \(made from other inputs\); choose "
                                         r"another file name or pass --overwrite"):
        check_new_file(path, same=lambda p: False)
    check_new_file(path, same=lambda p: True)
    check_new_file(path, overwrite=True)


# ---- the commands ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world_run(tmp_path_factory) -> Path:
    """A real compbench run (the world's suite on the bundled model: one prompt, one image)."""
    out = tmp_path_factory.mktemp("runs") / "compbench"
    result = invoke("compbench", "--ckpt", REFERENCE, "--out", out, "--categories", "single", "--limit", "1",
                    "--images-per-prompt", "1")
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("command", [
    ["study", "results", "no-study", "--out"],
    ["demo", "--quick", "--out"],
    ["fid", "folder", "gen", "ref", "--out"],
    ["report", "somewhere", "--out"],
    ["world", "make-suites", "--out"],
    ["ablate", "cost", "--config", "tiny", "--out"],
], ids=lambda c: " ".join(c[:2]))
def test_no_command_writes_over_a_compbench_run(world_run, command):
    """The issue's case: study results (and the others) wrote their results.json over a compbench run's."""
    before = digest(world_run)
    refused(invoke(*command, world_run), r"--out .*compbench holds a compbench --suite world run \(results\.json\); "
                                         r"choose another folder or pass --overwrite")
    assert digest(world_run) == before


def test_compbench_resumes_its_own_run_and_refuses_another_models(world_run, tiny_pipeline_dir):
    before = digest(world_run)
    result = invoke("compbench", "--ckpt", REFERENCE, "--out", world_run, "--categories", "single", "--limit", "1",
                    "--images-per-prompt", "1")
    assert result.exit_code == 0, result.output  # the same run: its images are kept, not made again
    assert {k: v for k, v in digest(world_run).items() if k.endswith(".png")} == \
        {k: v for k, v in before.items() if k.endswith(".png")}
    refused(invoke("compbench", "--images", world_run, "--out", world_run, "--categories", "color"),
            r"holds a compbench --suite world run \(results\.json\) made from other inputs")


def test_fid_folder_writes_beside_others_files_only_when_told_and_resumes_its_own(tmp_path):
    gen, other, ref = images(tmp_path / "gen"), images(tmp_path / "other", seed=1), images(tmp_path / "ref", seed=2)
    # the bundled world-FID network: a real extractor, small enough for a test
    common = ["--extractor", "world-cnn", "--resize", "none", "--cache", tmp_path / "cache", "--device", "cpu",
              "--no-kid"]
    out = tmp_path / "fid"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    refused(invoke("fid", "folder", gen, ref, "--out", out, *common),
            r"--out .*fid holds files that fid folder does not write \(notes\.txt\); choose another folder or pass "
            r"--overwrite")
    assert not (out / "fid.json").exists()
    assert invoke("fid", "folder", gen, ref, "--out", out, "--overwrite", *common).exit_code == 0
    assert (out / "notes.txt").read_text() == "my notes"  # --overwrite deletes nothing of others
    first = json.loads((out / "fid.json").read_text())
    (out / "notes.txt").unlink()
    assert invoke("fid", "folder", gen, ref, "--out", out, *common).exit_code == 0  # the same run again
    kept = (out / "fid.json").read_bytes()
    refused(invoke("fid", "folder", other, ref, "--out", out, *common),
            r"holds a fid folder run \(fid\.json\) made from other inputs; choose another folder or pass --overwrite")
    assert (out / "fid.json").read_bytes() == kept
    assert json.loads(kept)["fid"] == first["fid"]


def test_make_suites_resumes_the_same_suites_only(tmp_path):
    out = tmp_path / "suites"
    assert invoke("world", "make-suites", "--out", out, "--n", "3").exit_code == 0
    before = digest(out)
    assert invoke("world", "make-suites", "--out", out, "--n", "3").exit_code == 0
    refused(invoke("world", "make-suites", "--out", out, "--n", "4"),
            r"holds world prompt suites \(single_val\.json\) made from other inputs; choose another folder or pass "
            r"--overwrite")
    assert digest(out) == before
    (out / "notes.txt").write_text("my notes")
    assert invoke("world", "make-suites", "--out", out, "--n", "4", "--overwrite").exit_code == 0
    assert len((out / "color_val.txt").read_text().splitlines()) == 4  # its own files replaced
    assert (out / "notes.txt").read_text() == "my notes"  # nothing else touched


def test_captions_of_another_model_are_not_appended_to(tmp_path):
    (tmp_path / "images").mkdir()
    captions = tmp_path / "captions.jsonl"
    captions.write_text(json.dumps({"path": "a.png", "caption": "a cat", "model": "other-llava", "prompt": "p"}) + "\n")
    refused(invoke("caption", tmp_path / "images", "--out", captions, "--model", "llava", "--prompt", "p"),
            r"--out .*captions\.jsonl holds captions made with another --model or --prompt \(other-llava\)")
    (tmp_path / "notes.jsonl").write_text("my notes\n")
    refused(invoke("caption", tmp_path / "images", "--out", tmp_path / "notes.jsonl", "--model", "llava"),
            r"holds something other than captions")
    assert (tmp_path / "notes.jsonl").read_text() == "my notes\n"


def test_convert_never_writes_over_a_checkpoint(tmp_path):
    src = save_transformer(tiny_model(), tmp_path / "a", "native")
    dst = save_transformer(tiny_model(seed=1), tmp_path / "b", "native")
    before = digest(dst)
    refused(invoke("convert", src, dst), r"DST .*b holds a model folder \(config\.json\); choose another folder or "
                                         r"pass --overwrite")
    assert digest(dst) == before
    assert invoke("convert", src, dst, "--overwrite").exit_code == 0
    assert digest(dst) != before
    pth = save_transformer(tiny_model(), tmp_path / "c.pth", "official")
    refused(invoke("convert", src, pth, "--to", "official"), r"DST .*c\.pth already exists; choose another file")


# ---- a --ckpt that is not a checkpoint -------------------------------------------------------------


EXPECTED = (r"a PixArt transformer checkpoint is an official \.pth or \.safetensors file, a transformer folder "
            r"\(config\.json\), or a diffusers or pixart-bench pipeline folder holding one")


def not_checkpoints(folder: Path) -> dict[str, tuple[Path, str]]:
    text = folder / "notes.txt"
    text.write_text("my notes\n")
    png = folder / "image.png"
    Image.new("RGB", (8, 8)).save(png)
    official = save_transformer(tiny_model(), folder / "full.pth", "official")
    cut = folder / "cut.pth"
    cut.write_bytes(official.read_bytes()[:2000])
    other = folder / "vae.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(4, 3, 3, 3), "decoder.conv_out.bias": torch.zeros(3)}, other)
    return {"text": (text, r"cannot read .*notes\.txt as a torch checkpoint: the file is a text file, not a "
                           r"checkpoint"),
            "png": (png, r"cannot read .*image\.png as a torch checkpoint: the file is a PNG image, not a checkpoint"),
            "truncated": (cut, r"cannot read .*cut\.pth as a torch checkpoint \(truncated, corrupt or not a "
                               r"checkpoint\)"),
            "other model": (other, r".*vae\.safetensors is not a PixArt transformer checkpoint: none of its 2 entries "
                                   r"\(decoder\.conv_out\.bias, encoder\.conv_in\.weight\) has a transformer's name")}


@pytest.mark.parametrize("kind", ["text", "png", "truncated", "other model"])
def test_a_file_that_is_no_checkpoint_is_named_as_such(tmp_path, kind):
    path, pattern = not_checkpoints(tmp_path)[kind]
    for command in (["compbench", "--suite", "world", "--out", tmp_path / "cb"],
                    ["generate", "--prompts", "color", "--out", tmp_path / "g"],
                    ["sample", "--prompt", "a cat", "--out", tmp_path / "s"]):
        output = refused(invoke(*command, "--ckpt", path), pattern + ".*" + EXPECTED)
        assert "--t5" not in output  # not told to add what would not help


def test_a_bare_transformer_gets_options_the_command_has(tmp_path, tiny_pipeline_dir):
    ckpt = save_transformer(tiny_model(), tmp_path / "transformer", "native")
    add = r"also pass the T5 encoder \(--t5 PATH\) and the VAE \(--vae PATH\) folders"
    export = r"pixart-bench export-diffusers .*transformer OUT --t5 PATH --vae PATH"
    refused(invoke("compbench", "--ckpt", ckpt, "--suite", "world", "--out", tmp_path / "cb"),
            rf"--ckpt .*transformer is a transformer checkpoint only: {add}, or give a pipeline folder made from "
            rf"the three \({export}\)")
    refused(invoke("generate", "--ckpt", ckpt, "--prompts", "color", "--out", tmp_path / "g", "--t5",
                   tiny_pipeline_dir),
            r"only: also pass the VAE \(--vae PATH\) folder, or give")
    # a command without --t5 and --vae names the way that works there
    refused(invoke("fid", "world", "--ckpt", ckpt, "--out", tmp_path / "w", "--prompts", "1"),
            rf"this command takes pipeline folders: make one from it, its T5 encoder and its VAE \({export}\)")
    # compbench takes them: its images are made from the three
    result = invoke("compbench", "--ckpt", ckpt, "--t5", tiny_pipeline_dir, "--vae", tiny_pipeline_dir, "--suite",
                    "world", "--out", tmp_path / "cb", "--categories", "single", "--limit", "1",
                    "--images-per-prompt", "1", "--steps", "2")
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "cb" / "results.json").read_text())["model"]
    assert model["ckpt"] == str(ckpt) and model["kind"] == "pixart"
