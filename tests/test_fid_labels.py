"""bench.fid.labels: which protocol a FID may be labelled with (COCO-30K zero-shot only with 30,000 generated
images and the standard Inception, checked on the computed result), and the small-N warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from bench.fid.labels import (
    COCO,
    COCO_30K,
    FOLDER,
    STANDARD_INCEPTION_SHA256,
    UNKNOWN,
    WORLD,
    coco_protocol,
    protocol_of,
    protocol_record,
    small_n_warning,
    standard_inception,
)

STANDARD = {"name": "inception-v3-compat", "layer": "2048", "weights_sha256": STANDARD_INCEPTION_SHA256,
            "feature_dim": 2048}


def result(n_gen: int = 30_000, n_ref: int = 30_000, **extractor) -> dict:
    return {"fid": 20.0, "n_gen": n_gen, "n_ref": n_ref, "extractor": {**STANDARD, **extractor}}


def test_the_standard_weights_hash_is_the_one_torch_fidelity_names_its_file_after():
    # torch.hub's convention: the file name ends with the first digits of the file's SHA-256
    prefix = Path(URL_INCEPTION_V3).stem.rsplit("-", 1)[1]
    assert len(prefix) == 8 and STANDARD_INCEPTION_SHA256.startswith(prefix) and len(STANDARD_INCEPTION_SHA256) == 64


def test_standard_inception_needs_name_layer_and_weights():
    assert standard_inception(STANDARD)
    assert not standard_inception({**STANDARD, "weights_sha256": "6726825d" + "0" * 56})  # a look-alike
    assert not standard_inception({**STANDARD, "name": "clip-vit-b-32", "layer": "clip"})
    assert not standard_inception({**STANDARD, "layer": "768"})
    assert not standard_inception({})


@pytest.mark.parametrize("n, n_gen, extractor, name", [
    (30_000, 30_000, {}, COCO_30K),
    (30_000, 150_123, {}, COCO),  # --caption-policy all: about 5 images per drawn image
    (5_000, 5_000, {}, COCO),
    (30_000, 30_000, {"weights_sha256": "ab" * 32}, COCO),  # another Inception file
    (30_000, 30_000, {"name": "clip-vit-b-32", "layer": "clip"}, COCO),
])
def test_coco_30k_only_with_30000_images_and_the_standard_inception(n, n_gen, extractor, name):
    record = coco_protocol(result(n_gen, 30_000, **extractor), n, "all" if n_gen != n else "random")
    assert record["name"] == name and record["command"] == "pixart-bench fid coco"
    assert record["n_gen"] == n_gen and record["n"] == n
    assert (record["name"] == COCO_30K) == ("not_coco_30k" not in record)
    if name == COCO:
        assert not all(record["checks"].values())
        if n_gen != 30_000:
            assert f"{n_gen:,} generated images" in record["not_coco_30k"]
        if extractor:
            assert "not inception-v3-compat with torch-fidelity's weights" in record["not_coco_30k"]


def test_protocol_records_name_their_command():
    assert protocol_record(FOLDER, result(20, 20))["command"] == "pixart-bench fid folder"
    world = protocol_record(WORLD, result(12, 12, name="world-cnn", layer="feat"), command=None)
    assert world["command"] is None and world["standard_inception"] is False and world["extractor"] == "world-cnn"
    with pytest.raises(ValueError, match="unknown FID protocol"):
        protocol_record("coco-30k", result())


def test_protocol_of_a_file_believes_only_what_its_figures_bear_out():
    good = {**result(), "protocol": coco_protocol(result(), 30_000, "random")}
    assert protocol_of(good) == COCO_30K
    assert protocol_of({**good, "n_gen": 20}) == COCO  # a record edited or made by hand
    assert protocol_of({**good, "extractor": {**STANDARD, "weights_sha256": "00" * 32}}) == COCO
    assert protocol_of(result()) == UNKNOWN  # written before the record existed
    assert protocol_of({**result(), "protocol": "COCO zero-shot FID (captions drawn ...)"}) == UNKNOWN  # old string
    assert protocol_of({**result(), "protocol": {"name": "coco-30k"}}) == UNKNOWN
    assert protocol_of({**result(20, 20), "protocol": protocol_record(FOLDER, result(20, 20))}) == FOLDER


def test_small_n_warning():
    assert small_n_warning(10_000, 10_000, 2048) is None and small_n_warning(30_000, 40_504, 2048) is None
    mid = small_n_warning(5_000, 5_000, 2048)
    assert "below 10,000 images FID is biased upward" in mid and "do not compare" in mid and "singular" not in mid
    assert small_n_warning(30_000, 5_000, 2048) is not None  # the smaller side counts
    tiny = small_n_warning(20, 20, 2048)
    assert "biased upward" in tiny and "N = 20 at most the 2,048 feature dimensions" in tiny and "singular" in tiny
    assert "singular" in small_n_warning(128, 300, 128) and "singular" not in small_n_warning(129, 300, 128)
    assert "\n" not in tiny  # one line
