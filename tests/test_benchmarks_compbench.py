"""benchmarks/compbench_throughput.py end to end on 2 images with tiny random BLIP / CLIP / OWLv2."""

import json
import re
from pathlib import Path

from conftest import load_script
from test_compbench_blip import build_tiny_blip
from test_compbench_clip import build_tiny_clip
from tiny_detectors import build_tiny_owlv2


def test_throughput_rows_per_metric_and_mode(tmp_path, capsys):
    blip = build_tiny_blip(tmp_path / "blip")
    clip = build_tiny_clip(tmp_path)["hf"]
    owlv2 = build_tiny_owlv2(tmp_path / "owlv2")
    out = tmp_path / "throughput.json"
    script = load_script("compbench_throughput")
    assert script.main(["--images", "2", "--device", "cpu", "--blip", str(blip), "--clip", str(clip),
                        "--detector", f"owlv2:{owlv2}", "--json", str(out)]) == 0

    record = json.loads(out.read_text())
    modes = [(r["metric"], r["mode"]) for r in record["rows"]]
    assert modes[:5] == [("B-VQA", "batched"), ("B-VQA", "one_image"), ("B-VQA", "per_slot_loop"),
                         ("CLIPScore", "batched"), ("CLIPScore", "one_image")]
    # the rules on random-box detections (2D spatial, numeracy), then the 2D rules on OWLv2's detections
    assert [m for _, m in modes[5:]] == ["rules", "rules", "one_image"]
    assert [metric.split(" ")[0] for metric, _ in modes[5:]] == ["2D", "numeracy", "2D"]
    assert "random boxes" in modes[5][0] and "random boxes" in modes[6][0] and "OWLv2" in modes[7][0]
    for r in record["rows"]:
        assert r["images"] == 2 and r["seconds"] > 0 and r["images_per_s"] > 0
        if r["metric"] in ("B-VQA", "CLIPScore"):  # the modes of one metric give the same scores
            assert r["max_abs_diff"] < 1e-5, r
        else:
            assert r["max_abs_diff"] is None
    assert record["evaluators"] == {"blip": str(blip), "clip": str(clip), "detector": f"owlv2:{owlv2}"}
    table = capsys.readouterr().out
    assert "| B-VQA | per_slot_loop | 2 |" in table and "| CLIPScore | one_image | 2 | 1 |" in table
    assert "| largest score difference from our first mode |" in table
    assert "not parity with the official scripts" in record["max_abs_diff"]
    # docs/performance.md's rows of the rules carry the names the script prints for them
    doc = (Path(__file__).resolve().parents[1] / "docs" / "performance.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| (.+?) \| rules \|", doc, flags=re.M)
    assert documented == [metric for metric, mode in modes if mode == "rules"]


def test_the_documented_figures_name_the_modes_the_script_times():
    """docs/performance.md's throughput table uses the script's mode names and header, and says what the
    score difference compares: our own modes, not the official code."""
    from bench.compbench.blip_vqa import measure_throughput

    doc = (Path(__file__).resolve().parents[1] / "docs" / "performance.md").read_text(encoding="utf-8")
    section = doc.split("## T2I-CompBench scoring throughput")[1].split("\n## ")[0]
    modes = re.findall(r"^\| B-VQA \| (\w+) \|", section, flags=re.M)
    assert modes == list(measure_throughput.__defaults__[0]) == ["batched", "one_image", "per_slot_loop"]
    assert "| largest score difference from our first mode |" in section
    script = load_script("compbench_throughput")
    for text in (section, script.__doc__):
        assert "official loop" not in text and "official_loop" not in text and "official script's way" not in text
        assert re.search(r"not (of )?parity with the official", " ".join(text.split()))
