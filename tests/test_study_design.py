"""The study design: the prompt draw, the blinded image copies, study.json, and the raters' plan.

Image folders are built in tmp in both layouts ``model_images`` reads (a generation store's
``manifest.json``, and the official ``samples/<prompt>_<NNNNNN>.png``); the source PNGs carry a text
chunk naming their model, which the study's copies must not. The plan is checked on studies of
several sizes (prompts not divisible by items per rater included) against its promises: balanced
ratings, no repeated prompt for a rater, permuted screens, honest decoys, and reproducibility.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from bench.compbench.prompts import PAPER_CATEGORIES, list_sha256, load_prompts
from human_study.design import STUDY_FILE, Settings, Study, create_study, describe_plan, load_study, parse_model
from human_study.errors import StudyError
from human_study.prompts import default_prompts, write_prompts

PROMPTS = ["a red cube", "a blue ball on a table", "two green cats", "a yellow car near a tree", "an old clock"]
# model names with letters outside 0-9a-f, so a hex image id can never contain one by chance
MODELS = ("zebramodel", "quokkanet", "wombatxl")


# --- the prompt draw ----------------------------------------------------------------------------------------
def test_default_prompts_are_reproducible_and_depend_on_the_seed():
    a, source_a = default_prompts(60, seed=3)
    b, source_b = default_prompts(60, seed=3)
    c, _ = default_prompts(60, seed=4)
    assert a == b and source_a == source_b
    assert a != c and len(set(a) & set(c)) < 60
    assert source_a["seed"] == 3 and source_a["n"] == 60 and source_a["color_list"] == "2025"


@pytest.mark.parametrize("n", [300, 6, 7, 11, 40])
def test_default_prompts_take_equal_shares_from_the_paper_lists(n):
    prompts, source = default_prompts(n, seed=0)
    assert len(prompts) == n and len(set(prompts)) == n
    counts = {entry["category"]: entry["count"] for entry in source["lists"]}
    assert tuple(counts) == PAPER_CATEGORIES
    assert sum(counts.values()) == n and max(counts.values()) - min(counts.values()) <= (0 if n % 6 == 0 else 1)
    assert all(c >= n // 6 for c in counts.values())
    # every prompt is in the list of the category the source names for it, in the source's numbers
    start = 0
    for entry in source["lists"]:
        listed = set(load_prompts(entry["category"]))
        assert entry["sha256"] == list_sha256(entry["category"], "2025")
        group = prompts[start:start + entry["count"]]
        assert set(group) <= listed, [p for p in group if p not in listed]
        start += entry["count"]


def test_default_prompts_refuses_impossible_counts():
    for n in (0, -1, 10_000):
        with pytest.raises(StudyError):
            default_prompts(n)


def test_write_prompts_writes_one_per_line_and_refuses_line_breaks(tmp_path):
    prompts, _ = default_prompts(12, seed=1)
    path = write_prompts(prompts, tmp_path / "prompts.txt")
    assert path.read_text(encoding="utf-8").splitlines() == prompts
    with pytest.raises(StudyError, match="one per line"):
        write_prompts(["fine", "two\nlines"], tmp_path / "bad.txt")
    assert not (tmp_path / "bad.txt").exists()


# --- image folders ------------------------------------------------------------------------------------------
def _image(seed: int, model: str) -> tuple[Image.Image, PngInfo]:
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    info = PngInfo()
    info.add_text("model", model)  # a tEXt chunk naming the model: the study copy must drop it
    info.add_text("parameters", f"made by {model} from /secret/{model}/weights")
    return Image.fromarray(pixels), info


def manifest_folder(root: Path, model: str, prompts: list[str], seed: int, skip: tuple[int, ...] = ()) -> Path:
    """A generation store: ``manifest.json`` listing {prompt, file, image}; two images per prompt."""
    folder = root / model
    (folder / "images").mkdir(parents=True)
    entries = []
    for i, prompt in enumerate(prompts):
        if i in skip:
            continue
        for k in range(2):
            im, info = _image(seed * 1000 + 10 * i + k, model)
            file = f"images/{model}_{i:04d}_{k}.png"
            im.save(folder / file, pnginfo=info)
            entries.append({"prompt": prompt, "file": file, "image": k})
    (folder / "manifest.json").write_text(json.dumps({"model": model, "images": entries}))
    return folder


def samples_folder(root: Path, model: str, prompts: list[str], seed: int) -> Path:
    """The official layout: ``samples/<prompt>_<NNNNNN>.png``, index 10·i + k."""
    folder = root / model
    (folder / "samples").mkdir(parents=True)
    for i, prompt in enumerate(prompts):
        for k in range(2):
            im, info = _image(seed * 1000 + 10 * i + k, model)
            im.save(folder / "samples" / f"{prompt}_{10 * i + k:06d}.png", pnginfo=info)
    return folder


def _chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        types.append(data[at + 4:at + 8])
        at += 12 + length
    return types


@pytest.fixture
def folders(tmp_path):
    """Three models: two generation stores and one official samples folder."""
    src = tmp_path / "src"
    return {MODELS[0]: manifest_folder(src, MODELS[0], PROMPTS, 1),
            MODELS[1]: samples_folder(src, MODELS[1], PROMPTS, 2),
            MODELS[2]: manifest_folder(src, MODELS[2], PROMPTS, 3)}


def test_create_study_copies_blinded_images_with_the_same_pixels(tmp_path, folders):
    study = create_study(PROMPTS, folders, tmp_path / "study", image_index=1)
    files = sorted((study.folder / "images").iterdir())
    assert len(files) == len(PROMPTS) * len(MODELS) and all(f.suffix == ".png" for f in files)
    for prompt_i, row in enumerate(study.images):
        for model_i, image_id in enumerate(row):
            model = study.models[model_i]
            copy = study.image_path(image_id)
            assert copy.is_file() and len(image_id) == 16 and model not in copy.name
            data = copy.read_bytes()
            for name in MODELS:
                assert name.encode() not in data and name.encode() not in zlib.decompress(_idat(data))
            assert set(_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}, _chunks(data)
            with Image.open(copy) as im:
                assert not im.info.get("model") and not getattr(im, "text", {})
                got = np.asarray(im.convert("RGB"))
            # image_index=1: the second image of the prompt, in either layout
            seed = (model_i + 1) * 1000 + 10 * prompt_i + 1
            source = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
            assert np.array_equal(got, source), (model, PROMPTS[prompt_i])
    # the sources did carry the model's name, so the check above could fail
    any_source = next((folders[MODELS[0]] / "images").iterdir())
    assert MODELS[0].encode() in any_source.read_bytes()


def _idat(data: bytes) -> bytes:
    out, at = b"", 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        if data[at + 4:at + 8] == b"IDAT":
            out += data[at + 8:at + 8 + length]
        at += 12 + length
    return out


def test_study_json_round_trips(tmp_path, folders):
    settings = Settings(items_per_rater=3, raters_per_prompt=2, attention_rate=0.25, seed=9,
                        entry_params=("PROLIFIC_PID", "STUDY_ID"), completion_code="C0DE")
    source = {"benchmark": "test", "seed": 9}
    made = create_study(PROMPTS, folders, tmp_path / "study", settings=settings, prompt_source=source)
    back = load_study(tmp_path / "study")
    assert (back.study_id, back.models, back.prompts, back.images) == (made.study_id, list(MODELS), PROMPTS,
                                                                      made.images)
    assert back.settings == settings and back.prompt_source == source and back.db_url == made.db_url
    assert back.db_url.startswith("sqlite:///") and (tmp_path / "study" / "study.db").is_file()
    assert [a.__dict__ for a in back.plan(4)] == [a.__dict__ for a in made.plan(4)]
    record = json.loads((tmp_path / "study" / STUDY_FILE).read_text())
    assert set(record["image_sources"]) == {i for row in made.images for i in row}


def test_load_study_names_what_is_wrong(tmp_path, folders):
    with pytest.raises(StudyError, match="not a study folder"):
        load_study(tmp_path / "nothing")
    study = create_study(PROMPTS, folders, tmp_path / "study")
    study.image_path(study.images[2][1]).unlink()
    with pytest.raises(StudyError, match=study.images[2][1]):
        load_study(tmp_path / "study")


def test_a_prompt_missing_for_one_model_is_listed(tmp_path, folders):
    folders[MODELS[2]] = manifest_folder(tmp_path / "other", MODELS[2], PROMPTS, 3, skip=(3,))
    with pytest.raises(StudyError, match="missing") as e:
        create_study(PROMPTS, folders, tmp_path / "study")
    assert MODELS[2] in str(e.value) and repr(PROMPTS[3]) in str(e.value)
    assert MODELS[0] not in str(e.value) and not (tmp_path / "study").exists()


def test_bad_designs_are_refused(tmp_path, folders):
    one = {MODELS[0]: folders[MODELS[0]]}
    with pytest.raises(StudyError, match="at least 2 models"):
        create_study(PROMPTS, one, tmp_path / "a")
    for spec in ("noequals", "name=", "bad name=dir", "=dir"):
        with pytest.raises(StudyError, match="--model"):
            parse_model(spec)
    assert parse_model("pixart=out/x") == ("pixart", Path("out/x"))
    with pytest.raises(StudyError, match="repeats a prompt"):
        create_study(PROMPTS + [PROMPTS[1]], folders, tmp_path / "b")
    with pytest.raises(StudyError, match="does not exist"):
        create_study(PROMPTS, {**folders, "ghost": tmp_path / "ghost"}, tmp_path / "c")
    create_study(PROMPTS, folders, tmp_path / "d")
    with pytest.raises(StudyError, match="already holds a study"):
        create_study(PROMPTS, folders, tmp_path / "d")


# --- the plan -----------------------------------------------------------------------------------------------
def fake_study(n_prompts: int, n_models: int = 3, **settings) -> Study:
    """A study with made-up image ids ``p<prompt>m<model>`` (the plan needs no files)."""
    images = [[f"p{p}m{m}" for m in range(n_models)] for p in range(n_prompts)]
    return Study(Path("unused"), "s", [f"m{m}" for m in range(n_models)], [f"prompt {p}" for p in range(n_prompts)],
                 images, Settings(**settings), "sqlite://")


COMBOS = [(12, 4, 3), (10, 3, 5), (7, 30, 2), (13, 5, 4), (5, 1, 3), (300, 30, 5), (31, 7, 1)]


@pytest.mark.parametrize("n_prompts,per_rater,raters", COMBOS)
def test_every_prompt_is_rated_exactly_raters_per_prompt_times(n_prompts, per_rater, raters):
    study = fake_study(n_prompts, items_per_rater=per_rater, raters_per_prompt=raters, attention_rate=0.2)
    assert study.planned_raters == math.ceil(n_prompts / min(per_rater, n_prompts)) * raters
    counts = Counter()
    for slot in range(study.planned_raters):
        items = [a.prompt for a in study.plan(slot) if a.kind == "item"]
        assert 1 <= len(items) <= per_rater
        assert len(set(items)) == len(items), f"slot {slot} rates a prompt twice: {items}"
        counts.update(items)
    assert counts == {p: raters for p in range(n_prompts)}
    # raters beyond the planned ones start further rounds, which stay balanced
    extra = Counter(a.prompt for slot in range(study.planned_raters, 2 * study.planned_raters)
                    for a in study.plan(slot) if a.kind == "item")
    assert extra == {p: raters for p in range(n_prompts)}


@pytest.mark.parametrize("n_prompts,per_rater,raters", COMBOS)
@pytest.mark.parametrize("rate", [0.0, 0.2])
def test_the_plan_summary_counts_what_the_planned_raters_get(n_prompts, per_rater, raters, rate):
    """The figures ``study create`` prints equal a count over every planned slot's own plan."""
    study = fake_study(n_prompts, items_per_rater=per_rater, raters_per_prompt=raters, attention_rate=rate)
    plans = [study.plan(slot) for slot in range(study.planned_raters)]
    items = [sum(a.kind == "item" for a in p) for p in plans]
    checks = [sum(a.kind == "check" for a in p) for p in plans]
    ratings = Counter(a.prompt for p in plans for a in p if a.kind == "item")
    assert study.plan_summary() == {
        "raters": len(plans), "models": 3, "criteria": ["quality", "alignment"],
        "items_per_rater": [min(items), max(items)], "ratings_per_prompt": [min(ratings.values()),
                                                                            max(ratings.values())],
        "rankings_per_criterion": sum(items), "checks_per_rater": [min(checks), max(checks)],
        "attention_checks": sum(checks)}
    assert sum(items) == n_prompts * raters


def test_the_papers_scale_gives_15000_rankings_per_criterion():
    """50 raters who each rank all 300 prompts' 4 images: 50 × 300 rankings per criterion (not × 4 models)."""
    study = fake_study(300, 4, items_per_rater=300, raters_per_prompt=50)
    summary = study.plan_summary()
    assert (summary["raters"], summary["items_per_rater"], summary["ratings_per_prompt"]) == (50, [300, 300], [50, 50])
    assert summary["rankings_per_criterion"] == 15_000 and summary["attention_checks"] == 50 * 30
    assert describe_plan(summary) == (
        "plan: 50 raters of 300 prompts each (+ 30 attention checks each, scored, not aggregated) give 50 ratings "
        "per prompt and 15,000 rankings per criterion (quality, alignment; a ranking orders the 4 images of one "
        "prompt)")


def test_the_docs_quote_the_plans_create_prints():
    """docs/human-study.md's example plans (300 prompts, 4 models) are the lines describe_plan prints."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "human-study.md").read_text(encoding="utf-8")
    quoted = [line for line in doc.splitlines() if line.startswith("plan: ")]
    assert quoted == [describe_plan(fake_study(300, 4).plan_summary()),  # the defaults: 30 per rater, 5 per prompt
                      describe_plan(fake_study(300, 4, items_per_rater=300, raters_per_prompt=50).plan_summary())]
    assert "15,000 rankings per" in doc and "30,000 rankings" not in doc


def test_describe_plan_shows_uneven_chunks_and_no_checks():
    study = fake_study(5, 2, items_per_rater=2, raters_per_prompt=3, attention_rate=0.0)
    assert describe_plan(study.plan_summary()) == (
        "plan: 9 raters of 1–2 prompts each give 3 ratings per prompt and 15 rankings per criterion (quality, "
        "alignment; a ranking orders the 2 images of one prompt)")


@pytest.mark.parametrize("n_prompts,per_rater,raters", COMBOS)
def test_items_show_every_model_once_in_varied_orders(n_prompts, per_rater, raters):
    study = fake_study(n_prompts, items_per_rater=per_rater, raters_per_prompt=raters, attention_rate=0.2)
    orders = []
    for slot in range(study.planned_raters):
        items = study.plan(slot)
        assert [a.position for a in items] == list(range(len(items)))
        for a in items:
            assert sorted(a.models) == [0, 1, 2]
            orders.append(tuple(a.models))
            if a.kind == "item":
                assert a.decoy is None and a.images == [f"p{a.prompt}m{m}" for m in a.models]
    assert len(set(orders)) > 1


@pytest.mark.parametrize("n_prompts,per_rater,rate,checks", [(60, 30, 0.1, 3), (40, 10, 0.01, 1), (6, 6, 0.5, 3)])
def test_attention_checks_show_a_decoy_of_the_same_model(n_prompts, per_rater, rate, checks):
    study = fake_study(n_prompts, items_per_rater=per_rater, attention_rate=rate, seed=5)
    seen_positions = set()
    for slot in range(study.planned_raters):
        items = study.plan(slot)
        found = [a for a in items if a.kind == "check"]
        assert len(found) == checks
        for a in found:
            seen_positions.add(a.position)
            assert a.decoy is not None and 0 <= a.decoy < 3
            for i, (m, image) in enumerate(zip(a.models, a.images)):
                if i == a.decoy:
                    other, model = image[1:].split("m")
                    assert int(model) == m and int(other) != a.prompt, (a, "the decoy is another prompt's image")
                else:
                    assert image == f"p{a.prompt}m{m}"
    assert len(seen_positions) > 1  # checks are not always at the same place


def test_attention_rate_zero_plans_no_checks():
    study = fake_study(20, items_per_rater=6, attention_rate=0.0)
    assert all(a.kind == "item" for slot in range(study.planned_raters) for a in study.plan(slot))


def test_the_plan_is_deterministic_and_follows_the_seed():
    def plans(study):
        return [[(a.prompt, a.kind, a.models, a.images, a.decoy) for a in study.plan(s)] for s in range(6)]

    a = fake_study(30, items_per_rater=10, seed=1)
    assert plans(a) == plans(a) == plans(fake_study(30, items_per_rater=10, seed=1))
    b = fake_study(30, items_per_rater=10, seed=2)
    assert plans(a) != plans(b)
    # the seed reaches every part: the prompts, the screen orders and where the checks go
    assert [sorted(x.prompt for x in a.plan(s) if x.kind == "item") for s in range(6)] != \
        [sorted(x.prompt for x in b.plan(s) if x.kind == "item") for s in range(6)]
    assert [[x.models for x in a.plan(s)] for s in range(6)] != [[x.models for x in b.plan(s)] for s in range(6)]
    assert [[x.kind for x in a.plan(s)] for s in range(6)] != [[x.kind for x in b.plan(s)] for s in range(6)]
    assert plans(a)[0] != plans(a)[3]  # slot 3 starts the next round: another permutation


def test_a_real_studys_checks_point_at_its_own_images(tmp_path, folders):
    study = create_study(PROMPTS, folders, tmp_path / "study",
                         settings=Settings(items_per_rater=5, attention_rate=0.4, seed=2))
    by_id = {image_id: (p, m) for p, row in enumerate(study.images) for m, image_id in enumerate(row)}
    checks = [a for slot in range(study.planned_raters) for a in study.plan(slot) if a.kind == "check"]
    assert checks
    for a in checks:
        prompt, model = by_id[a.images[a.decoy]]
        assert model == a.models[a.decoy] and prompt != a.prompt
        assert all(by_id[image] == (a.prompt, m) for i, (image, m) in enumerate(zip(a.images, a.models))
                   if i != a.decoy)
