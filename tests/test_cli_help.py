"""The command line's help and usage errors: help is quick (no torch, transformers, diffusers or gradio
until a command runs), every command's help renders whole at 80 columns, and a usage error is one
``error: ... (see COMMAND --help)`` line on stderr with exit status 2, like every other bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "transformers", "diffusers", "gradio", "torch_fidelity", "pandas", "matplotlib",
         "scipy", "spacy", "sqlalchemy")
# ids and file names the help texts name, which must never be cut
KNOWN = {("compbench",): ["PixArt-alpha/PixArt-XL-2-512x512", "Salesforce/blip-vqa-capfilt-large",
                          "openai/clip-vit-base-patch32", "owlv2:google/owlv2-base-patch16-ensemble"],
         ("generate",): ["PixArt-alpha/PixArt-XL-2-512x512", "stabilityai/stable-diffusion-2-base"],
         ("fid", "folder"): ["weights-inception-2015-12-05-6726825d.pth"],
         ("sample",): ["PixArt-alpha/PixArt-XL-2-512x512"]}
runner = CliRunner()


def _commands():
    """Every command and group of the CLI as its path of names, the root first."""
    import typer.main

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app), ()))


COMMANDS = _commands()


def _sources(cmd) -> str:
    """The texts a command's help is made of: its help, its parameters' help, its examples."""
    texts = [cmd.help or "", cmd.epilog or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    return "\n".join(texts)


def _run_fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_importing_the_cli_imports_no_heavy_library():
    loaded = json.loads(_run_fresh(f"import sys, json, bench.cli; print(json.dumps([m for m in {HEAVY!r} "
                                   "if m in sys.modules]))"))
    assert loaded == [], f"`import bench.cli` imports {loaded}: import them inside the commands that use them"


def test_no_help_page_imports_a_heavy_library():
    """Group callbacks run before a subcommand's --help: none of them may load a model library either."""
    paths = [list(path) for path, _ in COMMANDS]
    code = (f"import sys, json\nfrom typer.testing import CliRunner\nfrom bench.cli import app\nbad = []\n"
            f"for path in {paths!r}:\n    r = CliRunner().invoke(app, [*path, '--help'])\n"
            f"    if r.exit_code != 0: bad.append([path, r.output[-500:]])\n"
            f"print(json.dumps([bad, [m for m in {HEAVY!r} if m in sys.modules]]))")
    failed, loaded = json.loads(_run_fresh(code))
    assert failed == [] and loaded == [], (failed, loaded)


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "pixart-bench" for p, _ in COMMANDS])
def test_every_help_renders_whole_at_80_columns(path, cmd):
    result = runner.invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith(f"Usage: {' '.join(('pixart-bench', *path))} "), text[:200]
    assert "╭" not in text and "[dim]" not in text and "[bold]" not in text, text
    # nothing is cut: the only "…" are the help's own (seeds 42…51), and no line ends with one
    assert text.count("…") == _sources(cmd).count("…"), text
    assert not [line for line in text.splitlines() if line.endswith("…")], text
    for line in text.splitlines():
        words = line.split()
        # a line is no wider than 80 columns unless it is one word that is (a URL): that stays whole
        assert len(line) <= 80 or len(words[-1]) > 40, line
    flat = " ".join(text.split())
    # every id, path or file name in the help's sources appears whole
    for token in re.findall(r"[\w.:{}$-]+/[\w./:{}$<>-]*[\w}>]|[\w-]+\.(?:pth|pt|json|safetensors|npz|csv|md)\b",
                            _sources(cmd)):
        assert token in flat, f"{token!r} is cut in `{' '.join(path)} --help`"
    for token in KNOWN.get(path, []):
        assert token in text, token
    for name, sub in getattr(cmd, "commands", {}).items():  # a group lists each command's whole first paragraph
        first = " ".join(sub.help.split("\n\n")[0].split())
        assert first in flat, (name, first)


def test_examples_keep_their_lines_and_lose_their_styles():
    text = runner.invoke(app, ["generate", "--help"], terminal_width=80).output
    examples = text[text.index("Examples"):]
    assert "\n  # your own prompt file, 4 images per prompt with seeds 0…3\n  pixart-bench generate --ckpt" in examples
    # a line too long for the terminal goes on under a hanging indent; a comment goes on as a comment
    assert "\n      --images-per-prompt 4 --seeds 0 --out out/mine\n" in examples
    assert "\n  # any diffusers text-to-image pipeline (a folder, or a hub id already in the\n  # HF cache)\n" in examples
    demo = runner.invoke(app, ["demo", "--help"], terminal_width=80).output
    # a trailing comment that does not fit goes above its command, which stays runnable as printed
    assert "\n  # the 192-image figures of docs/world.md\n  pixart-bench demo --out r192" in demo


USAGE_ERRORS = [
    (["generate", "--ckpt", "m", "--prompts", "color", "--out", "o", "--bogus"], "No such option: --bogus",
     "pixart-bench generate"),
    (["convert"], "Missing argument 'src'", "pixart-bench convert"),
    (["generate", "--prompts", "color", "--out", "o"], "Missing option '--ckpt'", "pixart-bench generate"),
    (["sample", "--ckpt", "m", "--out", "o", "--sampler", "euler"], "Invalid value for '--sampler'", "pixart-bench sample"),
    (["world", "make-dataset", "--n", "many", "--out", "o"], "Invalid value for '--n'", "pixart-bench world make-dataset"),
    (["compbench", "audit"], "Missing argument 'RUN'", "pixart-bench compbench audit"),
    (["fid", "nope"], "No such command 'nope'", "pixart-bench fid"),
    (["--bogus"], "No such option: --bogus", "pixart-bench"),
]


@pytest.mark.parametrize("args,message,command", USAGE_ERRORS, ids=[" ".join(a) for a, _, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_line_with_where_to_look(args, message, command):
    result = runner.invoke(app, args, terminal_width=80)
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {message}") and lines[0].endswith(f" (see {command} --help)"), lines[0]


def test_the_installed_command_prints_usage_errors_and_help_the_same_way():
    command = str(Path(sys.executable).with_name("pixart-bench"))
    run = subprocess.run([command, "sample", "--ckpt", "m", "--out", "o", "--steps", "ten"],
                         cwd=ROOT, capture_output=True, text=True, env={"COLUMNS": "80", "PATH": ""})
    assert run.returncode == 2 and run.stdout == "", run
    assert re.fullmatch(r"error: Invalid value for '--steps': .* \(see pixart-bench sample --help\)\n", run.stderr), run
    shown = subprocess.run([command, "compbench", "--help"], cwd=ROOT, capture_output=True, text=True,
                           env={"COLUMNS": "80", "PATH": ""})
    assert shown.returncode == 0 and "(Salesforce/blip-vqa-capfilt-large)" in shown.stdout, shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80


def test_a_group_without_a_command_shows_its_help():
    result = runner.invoke(app, ["world"], terminal_width=80)
    assert result.exit_code == 2 and result.stdout.startswith("Usage: pixart-bench world [OPTIONS] COMMAND")
    assert "make-dataset" in result.stdout and result.stderr == ""
