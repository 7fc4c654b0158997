"""benchmarks/gpu_suite.py --tiny on the CPU: every row and variant, the JSON, CSV and printed table agree,
our outputs equal diffusers'; a failing row is recorded and the suite goes on; the big components' architectures."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


# The smallest setting of each row: the default test runs every row and variant on these; the slow ones
# run the script's own TINY (two sampling settings, tiny-MS at 1024 px among them, three training settings).
SMALLEST = {
    "world": {"batch": 2, "hidden": 48, "depth": 1, "heads": 3, "patch": 2, "steps": 2, "skip": 1},
    "loop": {"settings": [["tiny", 64, 2]], "steps": 2, "repeats": 1},
    "e2e": {"settings": [["tiny", 64, 2]], "steps": 2, "repeats": 1},
    "train": {"settings": [["tiny", 64, 2, True]], "warmup": 1, "steps": 1},
}
# the script run with its TINY parameters replaced (argv[1], JSON): a process of its own, as the command runs
WITH_PARAMS = ("import importlib.util, json, sys\n"
               "spec = importlib.util.spec_from_file_location('gpu_suite', sys.argv[2])\n"
               "suite = importlib.util.module_from_spec(spec)\n"
               "sys.modules['gpu_suite'] = suite\n"
               "spec.loader.exec_module(suite)\n"
               "suite.TINY = json.loads(sys.argv[1])\n"
               "sys.exit(suite.main(sys.argv[3:]))\n")


def run_suite(out: Path, *extra: str, timeout: int = 600, tiny: dict | None = None) -> str:
    head = [sys.executable, str(SCRIPT)] if tiny is None else [sys.executable, "-c", WITH_PARAMS, json.dumps(tiny),
                                                               str(SCRIPT)]
    proc = subprocess.run([*head, "--tiny", "--device", "cpu", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def expected_lines(compile_: bool, tiny: dict | None = None) -> set[tuple[str, str, str]]:
    """(row, setting, variant) the tiny run must print, from its parameters (the suite's own TINY by default)."""
    tiny = tiny or load_script("gpu_suite").TINY
    w = tiny["world"]
    world = f"hidden {w['hidden']} depth {w['depth']} batch {w['batch']} 64px"
    lines = {("world", world, v) for v in ["preload+device-rng", "bf16"] + (["compile-ro", "bf16+compile-ro"]
                                                                           if compile_ else [])}
    for kind in ("loop", "e2e"):
        for preset, size, batch in tiny[kind]["settings"]:
            lines |= {(kind, f"{preset} {size}px batch {batch}", v)
                      for v in ["diffusers", "ours"] + (["ours + compile"] if compile_ else [])}
    for preset, size, batch, ckpt in tiny["train"]["settings"]:
        setting = f"{preset} {size}px batch {batch}" + (" grad-ckpt" if ckpt else "")
        lines |= {("train", setting, v) for v in ["diffusers", "ours", "ours-trimmed"]
                  + (["ours-fastest", "diffusers-compile"] if compile_ else [])}
    return lines


def check_run(out: Path, stdout: str, compile_: bool, tiny: dict | None = None) -> None:
    record = json.loads((out / "gpu_suite.json").read_text())
    assert record["finished"] and record["tiny"] and record["device"].startswith("cpu")
    rows = record["rows"]
    assert {(r["row"], r["setting"], r["variant"]) for r in rows} == expected_lines(compile_, tiny)
    assert len(rows) == len(expected_lines(compile_, tiny))  # each line once
    for r in rows:
        assert r["status"] == "ok", r
        assert r["ms"] > 0, r
        assert r["mfu"] is None and r["mfu_note"], r  # no peak FLOP/s for a CPU
        if r["row"] == "train":
            assert "CPU" in r["mfu_note"]
            assert r["detail"]["flops_per_step"] > 0
        if r["row"] in ("loop", "e2e") and r["variant"] != "diffusers":
            # the same latents / images as diffusers', up to bf16 rounding
            assert r["detail"]["finite"]
            assert r["max_abs_diff"] is not None and r["detail"]["rel_diff"] <= 0.05, r
            assert r["met"].endswith("yes"), r
    # the trimmed variant runs the 24 real text tokens, the others all 120 slots: fewer FLOPs
    train = [r["detail"] for r in rows if r["row"] == "train"]
    assert {d["text_tokens"] for d in train if d["variant"] == "ours-trimmed"} == {24}
    assert {d["text_tokens"] for d in train if d["variant"] != "ours-trimmed" and not d["trimmed"]} == {120}

    with (out / "gpu_suite.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    printed = [line for line in stdout.splitlines() if line.startswith("| ") and not line.startswith("| row |")]
    assert len(printed) == len(rows)
    for r, c, line in zip(rows, table, printed):
        assert (c["row"], c["setting"], c["variant"]) == (r["row"], r["setting"], r["variant"])
        assert float(c["ms"]) == pytest.approx(r["ms"])
        assert c["device"] == record["device"] and c["torch"] == record["torch"]
        cells = [x.strip() for x in line.strip("|").split(" | ")]
        assert cells[:4] == [r["row"], r["setting"], r["variant"], f"{r['ms']:.1f}"]
        assert cells[4] == "n/a"
    assert stdout.splitlines()[0].startswith("tiny run")  # the estimate comes first
    assert "MFU n/a: no peak FLOP/s for CPUs" in stdout


@pytest.mark.slow  # about 20 s / 10 s on 2 cores: the default suite stays under 5 minutes
def test_smallest_suite_without_compile(tmp_path):
    """Every row and variant of the tiny run, each row at its smallest setting (SMALLEST): the checks of
    the tiny run, but not tiny-MS at 1024 px (micro-conditions) nor the training settings at 128 px, which
    the slow tests run (the full tiny run took 43 s of the 2-core suite; this one about a quarter)."""
    out = tmp_path / "suite"
    stdout = run_suite(out, "--no-compile", tiny=SMALLEST)
    check_run(out, stdout, compile_=False, tiny=SMALLEST)
    assert json.loads((out / "gpu_suite.json").read_text())["params"]["loop"] == SMALLEST["loop"]


@pytest.mark.slow
def test_tiny_suite_without_compile(tmp_path):
    out = tmp_path / "suite"
    stdout = run_suite(out, "--no-compile")
    check_run(out, stdout, compile_=False)


@pytest.mark.slow
def test_tiny_suite_with_compile(tmp_path):
    out = tmp_path / "suite"
    stdout = run_suite(out, timeout=1800)
    check_run(out, stdout, compile_=True)
    record = json.loads((out / "gpu_suite.json").read_text())
    fastest = [r for r in record["rows"] if r["variant"] == "ours-fastest"]
    assert fastest and all("diffusers' best" in r["target"] for r in fastest)


def test_failed_row_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch, capsys):
    suite = load_script("gpu_suite")
    out = tmp_path / "suite"
    seen = {}

    def world(p, ctx):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def sampling(kind, p, ctx):
        # the failed row is on disk before the next row starts
        seen["before"] = json.loads((out / "gpu_suite.json").read_text())["rows"]
        return [suite.suite_row(kind, "s", "ours", ms=12.5, vs="diffusers", ratio=1.5, max_abs_diff=0.0)]

    monkeypatch.setattr(suite, "run_world", world)
    monkeypatch.setattr(suite, "run_sampling", sampling)
    assert suite.main(["--rows", "world,loop", "--device", "cpu", "--out", str(out)]) == 0
    assert [r["status"] for r in seen["before"]] == ["failed"]
    record = json.loads((out / "gpu_suite.json").read_text())
    assert record["finished"] and [r["row"] for r in record["rows"]] == ["world", "loop"]
    assert record["rows"][0]["reason"] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    printed = capsys.readouterr().out
    assert "| world | all | all | failed: RuntimeError: CUDA out of memory." in printed
    assert "| loop | s | ours | 12.5 | n/a | 1.50x vs diffusers |" in printed


def test_bad_options_name_the_option(tmp_path, capsys):
    suite = load_script("gpu_suite")
    with pytest.raises(SystemExit):
        suite.main(["--rows", "world,nope", "--device", "cpu", "--out", str(tmp_path)])
    assert "--rows: unknown row(s) nope" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        suite.main(["--device", "cpu", "--out", str(tmp_path / "file")])
    assert "is a file" in capsys.readouterr().err
    step = suite.load("train_step")  # registered as a module: it holds a dataclass
    with pytest.raises(ValueError, match="unknown variant"):
        step.measure(step.StepSettings(preset="tiny", device="cpu"), ["ours", "nope"])


def test_full_size_components_have_the_real_architectures():
    """T5 of t5-v1_1-xxl's encoder and Stable Diffusion's VAE, counted on the meta device."""
    import torch

    sampling = load_script("sampling")
    t5 = sampling.t5_encoder("xxl", 40, "meta", torch.bfloat16)
    c = t5.config
    assert (c.d_model, c.d_ff, c.num_layers, c.num_heads, c.d_kv, c.vocab_size) == (4096, 10240, 24, 64, 64, 32128)
    assert c.is_gated_act and c.dense_act_fn == "gelu_new"
    assert sum(p.numel() for p in t5.parameters()) == pytest.approx(4.762e9, rel=1e-3)  # T5-XXL encoder: 4.76 B
    assert next(t5.parameters()).dtype == torch.bfloat16
    vae = sampling.vae_model("sd", "meta", torch.float32)
    assert tuple(vae.config.block_out_channels) == (128, 256, 512, 512)
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863  # sd-vae-ft-ema's parameter count
