"""Two processes (accelerate launch, CPU / gloo) train a few steps and hold identical weights."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import ROOT, make_images

from pixart.random_components import random_pipeline


def launch(tmp_path: Path, out: Path, *sets: str) -> None:
    """`accelerate launch` of `bench train` in two processes on tiny components and 16 images."""
    if not (tmp_path / "comp").exists():
        random_pipeline().save_pretrained(tmp_path / "comp")
        make_images(tmp_path / "data")
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "bench", "train",
           "--config", "tiny_stage2", "--set", f"data.root={tmp_path / 'data'}",
           "--set", f"t5={tmp_path / 'comp'}", "--set", f"vae={tmp_path / 'comp'}", "--set", "max_steps=3",
           "--set", "batch_size=2", "--output-dir", str(out), *(x for s in sets for x in ("--set", s))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow  # about 20 s / 10 s on 2 cores: the default suite stays under 5 minutes
def test_two_processes_hold_identical_weights(tmp_path):
    launch(tmp_path, tmp_path / "run")
    sums = json.loads((tmp_path / "run" / "process_checksums.json").read_text())
    assert sums["step"] == 3 and len(sums["processes"]) == 2
    assert sums["processes"][0] == sums["processes"][1]
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 3  # written once, by the main process


@pytest.mark.slow
def test_two_processes_agree_to_stop_at_the_same_step(tmp_path):
    """max_seconds: the processes agree to stop at the same step (or one would wait for the other forever).
    Slow: a second two-process launch (~8 s of the 2-core suite)."""
    launch(tmp_path, tmp_path / "capped", "max_seconds=0")
    sums = json.loads((tmp_path / "capped" / "process_checksums.json").read_text())
    assert sums["step"] == 1 and sums["processes"][0] == sums["processes"][1]
    assert (tmp_path / "capped" / "checkpoints" / "step-0000001").is_dir()
