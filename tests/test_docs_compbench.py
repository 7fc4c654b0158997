"""docs/compbench.md states the facts the code relies on: where the official scripts write and read their
outputs (the places ``bench.compbench.run.OFFICIAL_OUTPUT`` writes to, and which the official 3-in-1
script reads since March 2024), and which UniDet checkpoint each rule uses."""

import re
from pathlib import Path

from bench.compbench.detectors import CHECKPOINT_SHORT, OFFICIAL_CHECKPOINT
from bench.compbench.run import OFFICIAL_OUTPUT

DOC = (Path(__file__).resolve().parents[1] / "docs" / "compbench.md").read_text()


def test_every_official_output_place_is_documented():
    for kind, (place, _, _) in OFFICIAL_OUTPUT.items():
        assert f"`{place}/`" in DOC, (kind, place)


def test_the_3_in_1_inputs_are_where_the_2d_script_writes():
    # the official 3-in-1 script reads labels/annotation_obj_detection_2d/vqa_result.json (no copying by hand)
    assert not re.search(r"annotation_obj_detection/(?!\w)", DOC)
    assert "copy it by hand" not in DOC
    assert "`labels/annotation_obj_detection_2d/` for the spatial part" in DOC


def test_each_rule_names_its_official_checkpoint():
    for rule, checkpoint in OFFICIAL_CHECKPOINT.items():
        assert checkpoint in DOC and CHECKPOINT_SHORT[checkpoint] in DOC, rule
    assert "**RS200** (`Unified_learned_OCIM_RS200_6x+2x`) in `UniDet_eval/2D_spatial_eval.py`" in DOC
    assert "**R50** (`Unified_learned_OCIM_R50_6x+2x`) in `3D_spatial_eval.py`" in DOC
