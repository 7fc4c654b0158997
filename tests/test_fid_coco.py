"""The COCO-30K protocol (bench.fid.coco, bench.fid.protocol, `pixart-bench fid coco` / `fid world`):
caption sampling per policy, deterministic and written out; the reference list; the generation store's
indexed layout (resume, refusal of another run's folder); and the whole protocol on a tiny COCO-format
captions file, tiny images, the tiny random PixArt pipeline and a random-weight Inception-v3 file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_input import snapshot
from PIL import Image

from bench.errors import BenchError
from bench.fid.coco import (
    CAPTION_LIST,
    caption_list_sha256,
    clean_caption,
    read_caption_list,
    read_coco_captions,
    reference_files,
    sample_captions,
    write_caption_list,
)
from bench.generate import generate, load_source
from pixart.errors import PipelineError
from pixart.sample_run import MANIFEST, PROGRESS

# captions as COCO writes them: '/', '_', doubled spaces, a trailing newline, upper case
CAPTIONS = ["A man riding a bike  down a street.", "a red/white bus_stop sign\n", "Two dogs on a couch ",
            "A plate of food.", "a cat on a laptop", "A kitchen with a stove", "people at a beach",
            "a train at the station", "a bowl of fruit", "a clock tower", "a boat on a lake", "a pizza on a table"]


def write_tiny_coco(root: Path, n_images: int = 8, captions_per_image: int = 3, size: int = 24) -> tuple[Path, Path]:
    """A COCO-format captions file and its images folder (``val2014/``): ``n_images`` JPEGs of
    different shapes (COCO's are not square), ``captions_per_image`` captions each, listed in an order
    other than by id, as the real file does."""
    images_dir = root / "val2014"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for k in range(n_images):
        image_id = 1000 - 7 * k  # ids not in file order
        name = f"COCO_val2014_{image_id:012d}.jpg"
        w, h = size + 4 * (k % 3), size + 2 * (k % 2)
        base = rng.integers(0, 256, size=(1, 1, 3))
        noise = rng.integers(-40, 40, size=(h, w, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(images_dir / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for c in range(captions_per_image):
            annotations.append({"image_id": image_id, "id": 10 * k + c,
                                "caption": CAPTIONS[(k + c) % len(CAPTIONS)] + (f" {c}" if c else "")})
    rng.shuffle(annotations)
    path = root / "captions_val2014.json"
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}))
    return path, images_dir


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp("coco"))


# -- captions ---------------------------------------------------------------------------------------------


def test_captions_are_cleaned_minimally_and_images_ordered_by_id(coco):
    read = read_coco_captions(coco[0])
    assert [im.image_id for im in read.images] == sorted(im.image_id for im in read.images)
    assert clean_caption(" a  red/white\tbus_stop sign\n") == "a red/white bus_stop sign"
    assert clean_caption("A man riding a bike  down a street.") == "A man riding a bike down a street."
    assert all(c == clean_caption(c) for im in read.images for c in im.captions)
    assert read.n_captions == 24 and read.empty_captions == 0
    assert read.describe()["images"] == 8


@pytest.mark.parametrize("policy", ["random", "first", "all"])
def test_sampling_is_deterministic_for_a_seed_and_follows_the_policy(coco, policy):
    read = read_coco_captions(coco[0])
    rows = sample_captions(read, 5, seed=3, policy=policy)
    assert rows == sample_captions(read_coco_captions(coco[0]), 5, seed=3, policy=policy)
    assert [r["index"] for r in rows] == list(range(len(rows)))
    by_id = {im.image_id: im for im in read.images}
    for r in rows:
        assert r["caption"] == by_id[r["image_id"]].captions[r["caption_index"]]
        assert r["file_name"] == by_id[r["image_id"]].file_name
    images = list(dict.fromkeys(r["image_id"] for r in rows))
    assert len(images) == 5  # n counts distinct images under every policy
    if policy == "first":
        assert all(r["caption_index"] == 0 for r in rows)
    if policy == "all":
        assert len(rows) == 15 and [r["caption_index"] for r in rows[:3]] == [0, 1, 2]
    else:
        assert len(rows) == 5
    other = sample_captions(read, 5, seed=4, policy=policy)
    assert other != rows


def test_random_policy_draws_the_images_then_one_caption_each_from_one_generator(coco):
    read = read_coco_captions(coco[0])
    rows = sample_captions(read, 4, seed=11)
    rng = np.random.default_rng(11)
    chosen = [read.images[int(k)] for k in rng.choice(len(read.images), size=4, replace=False)]
    picks = rng.integers(0, [len(im.captions) for im in chosen])
    assert [(r["image_id"], r["caption_index"]) for r in rows] == [(im.image_id, int(k))
                                                                  for im, k in zip(chosen, picks)]
    # the same images as the first policy: the caption draw comes after the image draw
    assert [r["image_id"] for r in rows] == [r["image_id"] for r in sample_captions(read, 4, 11, "first")]


def test_the_list_is_written_and_read_back_with_its_hash(coco, tmp_path):
    rows = sample_captions(read_coco_captions(coco[0]), 6, seed=0)
    digest = write_caption_list(rows, tmp_path / CAPTION_LIST)
    assert digest == caption_list_sha256(rows)
    import hashlib

    assert digest == hashlib.sha256((tmp_path / CAPTION_LIST).read_bytes()).hexdigest()
    assert read_caption_list(tmp_path / CAPTION_LIST) == rows
    assert set(json.loads((tmp_path / CAPTION_LIST).read_text().splitlines()[0])) == {
        "index", "image_id", "file_name", "caption", "caption_index"}
    assert write_caption_list(rows, tmp_path / CAPTION_LIST) == digest  # the same list again: nothing changes
    before = snapshot(tmp_path)
    with pytest.raises(BenchError, match=r"holds another caption list"):
        write_caption_list(sample_captions(read_coco_captions(coco[0]), 6, seed=1), tmp_path / CAPTION_LIST)
    assert snapshot(tmp_path) == before


def test_reference_files_sampled_or_all_and_a_missing_one_is_named(coco, tmp_path):
    path, images = coco
    read = read_coco_captions(path)
    rows = sample_captions(read, 3, seed=0, policy="all")
    sampled = reference_files(read, rows, images)
    assert [p.name for p in sampled] == list(dict.fromkeys(r["file_name"] for r in rows)) and len(sampled) == 3
    assert [p.name for p in reference_files(read, rows, images, "all")] == [im.file_name for im in read.images]
    partial = tmp_path / "val2014"
    shutil.copytree(images, partial)
    (partial / rows[1]["file_name"]).unlink()
    with pytest.raises(BenchError, match=rf"1 of the 3 reference images are missing \({partial / rows[1]['file_name']}"):
        reference_files(read, rows, partial)


# -- the generation store's indexed layout -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pixart(tiny_pipeline_dir):
    return load_source(str(tiny_pipeline_dir), steps=2)


def test_indexed_layout_names_seeds_and_records(pixart, tmp_path):
    from test_generate import Recording

    prompts = ["a red/white bus_stop sign", "a cat", "a cat"]  # '/', '_' and a repeated caption
    recording = Recording(pixart)
    manifest = generate(recording, prompts, tmp_path / "run", seed=5, layout="indexed", progress=False)
    assert recording.asked == [(p, 5 + i) for i, p in enumerate(prompts)]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["000000.png", "000001.png",
                                                                                 "000002.png"]
    assert [(e["file"], e["prompt"], e["seed"], e["prompt_index"]) for e in manifest["images"]] == [
        (f"samples/{i:06d}.png", p, 5 + i, i) for i, p in enumerate(prompts)]
    assert manifest["layout"].startswith("samples/<NNNNNN>.png") and manifest["images_per_prompt"] == 1
    assert manifest["seeds"] == {"rule": "image i (prompt i) uses seed base + i", "base": 5}
    # image i is the same image the official layout makes for that prompt and seed
    official = generate(pixart, ["a cat"], tmp_path / "official", images_per_prompt=1, seed=6, progress=False)
    assert ((tmp_path / "official" / official["images"][0]["file"]).read_bytes()
            == (tmp_path / "run" / "samples" / "000001.png").read_bytes())


def test_indexed_run_resumes_and_refuses_another_runs_folder(pixart, tmp_path):
    from test_generate import Recording

    prompts = [f"caption {i} with a/slash" for i in range(5)]
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        generate(Recording(pixart, stop_after=2), prompts, out, seed=0, layout="indexed", batch_size=2,
                 progress=False)
    assert len(list((out / "samples").iterdir())) == 2 and (out / PROGRESS).is_dir()
    resumed = Recording(pixart)
    manifest = generate(resumed, prompts, out, seed=0, layout="indexed", batch_size=2, progress=False)
    assert resumed.asked == [(prompts[i], i) for i in (2, 3, 4)] and len(manifest["images"]) == 5
    before = snapshot(out)
    for change, names in ((dict(seed=1), "seeds"), (dict(prompts=prompts[:4]), "prompts")):
        with pytest.raises(PipelineError, match=rf"holds a run with different {names}"):
            generate(Recording(pixart), change.get("prompts", prompts), out, seed=change.get("seed", 0),
                     layout="indexed", progress=False)
    with pytest.raises(PipelineError, match=r"holds a run with different layout"):  # an official-layout run
        generate(pixart, [f"caption {i}" for i in range(5)], out, images_per_prompt=1, seed=0, progress=False)
    assert snapshot(out) == before


def test_indexed_layout_bad_input(pixart, tmp_path):
    with pytest.raises(BenchError, match=r"one image per prompt"):
        generate(pixart, ["a cat"], tmp_path / "run", images_per_prompt=2, layout="indexed")
    with pytest.raises(BenchError, match=r"prompt 2: the prompt is empty"):
        generate(pixart, ["a cat", "  "], tmp_path / "run", layout="indexed")
    with pytest.raises(BenchError, match=r"--seed must be a whole number from 0 to 4,294,967,294"):
        generate(pixart, ["a cat", "a dog"], tmp_path / "run", seed=2**32 - 1, layout="indexed")
    with pytest.raises(BenchError, match=r"layout must be one of official, indexed"):
        generate(pixart, ["a cat"], tmp_path / "run", layout="by-name")
    assert not (tmp_path / "run").exists()
