"""benchmarks/compbench_throughput.py end to end on 2 images with tiny random BLIP / CLIP / OWLv2."""

import json

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
    modes = {(r["metric"], r["mode"]) for r in record["rows"]}
    assert modes == {("B-VQA", "batched"), ("B-VQA", "one_image"), ("B-VQA", "official_loop"),
                     ("CLIPScore", "batched"), ("CLIPScore", "one_image"),
                     ("2D spatial (UniDet rules, random boxes detections)", "rules"),
                     ("numeracy (UniDet rules, random boxes detections)", "rules"),
                     ("2D spatial (UniDet rules, OWLv2 detections)", "one_image")}
    for r in record["rows"]:
        assert r["images"] == 2 and r["seconds"] > 0 and r["images_per_s"] > 0
        if r["metric"] in ("B-VQA", "CLIPScore"):  # the modes of one metric give the same scores
            assert r["max_abs_diff"] < 1e-5, r
        else:
            assert r["max_abs_diff"] is None
    assert record["evaluators"] == {"blip": str(blip), "clip": str(clip), "detector": f"owlv2:{owlv2}"}
    table = capsys.readouterr().out
    assert "| B-VQA | official_loop | 2 |" in table and "| CLIPScore | one_image | 2 | 1 |" in table
