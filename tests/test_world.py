"""The shapes world: renderer determinism, captions, datasets, prompt suites."""

import json
import random

import numpy as np
import pytest

from bench.world.dataset import CATEGORIES, load_suite, make_dataset, make_suites, medium_caption, scene_from_spec
from bench.world.render import object_box, render
from bench.world.scene import COLORS, a_, Obj, Scene, class_label, dense_caption, noun_phrase, relation_holds, sample_scene


def test_render_is_deterministic_and_seeded():
    scene = sample_scene(random.Random(3), noise=4.0)
    a, b = np.asarray(render(scene, 64, seed=1)), np.asarray(render(scene, 64, seed=1))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.asarray(render(scene, 64, seed=2)))  # the seed drives the noise
    clean = Scene(scene.objects, scene.background, 0.0, scene.relation)
    assert np.array_equal(np.asarray(render(clean, 64, seed=1)), np.asarray(render(clean, 64, seed=2)))
    assert render(scene, (64, 128)).size == (128, 64)


def test_objects_have_their_color_where_drawn():
    obj = Obj("square", "blue", "solid", "large", 0.5, 0.5)
    im = np.asarray(render(Scene((obj,)), 64)).astype(int)
    x0, y0, side, _ = object_box(obj, 64, 64)
    centre = im[int(y0 + side / 2), int(x0 + side / 2)]
    assert np.abs(centre - np.array(COLORS["blue"])).max() <= 1
    assert np.abs(im[2, 2] - np.array([110, 110, 110])).max() <= 1  # background


@pytest.mark.parametrize("seed", range(30))
def test_captions_describe_the_scene(seed):
    scene = sample_scene(random.Random(seed))
    dense = dense_caption(scene)
    for o in scene.objects:
        assert noun_phrase(o) in dense and f"{o.color} {o.shape}" in medium_caption(scene)
    if scene.relation:
        a, b = scene.objects
        assert relation_holds(a, b, scene.relation)
        assert scene.relation.split()[0] in dense
    assert dense.endswith(f"on a {scene.background} background")
    assert 0 <= class_label(scene) < 48


def test_make_dataset_writes_and_resumes(tmp_path):
    make_dataset(tmp_path / "d", 6, 32, seed=5, sizes=[(32, 32), (32, 64)], progress=False)
    lines = [json.loads(x) for x in (tmp_path / "d" / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and lines[1]["width"] == 64
    for rec in lines:
        assert (tmp_path / "d" / rec["path"]).is_file()
        assert (tmp_path / "d" / rec["path"]).with_suffix(".txt").read_text().strip() == rec["caption"]
        assert Scene.from_dict(rec["scene"]).to_dict() == rec["scene"]
    before = (tmp_path / "d" / "000003.png").read_bytes()
    (tmp_path / "d" / "000004.png").unlink()
    make_dataset(tmp_path / "d", 6, 32, seed=5, sizes=[(32, 32), (32, 64)], progress=False)
    assert (tmp_path / "d" / "000003.png").read_bytes() == before and (tmp_path / "d" / "000004.png").is_file()


def test_make_dataset_resumed_leaves_unchanged_text_files_alone(tmp_path):
    # processes sharing one dataset folder resume it at once: a file that already holds the right
    # text is not rewritten (no truncated manifest for a reader to see)
    d = tmp_path / "d"
    make_dataset(d, 40, 16, seed=2, progress=False)
    texts = [p for p in sorted(d.iterdir()) if p.suffix in (".txt", ".jsonl")]
    stamp = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in texts}
    make_dataset(d, 40, 16, seed=2, progress=False)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in texts} == stamp
    make_dataset(d, 40, 16, seed=2, progress=False, and_fraction=1.0)  # re-captioned: changed files replaced
    changed = {p.name for p in texts if (p.stat().st_ino, p.stat().st_mtime_ns) != stamp[p.name]}
    assert "manifest.jsonl" in changed and any(n.endswith(".txt") for n in changed)
    assert len(changed) < len(texts) // 2  # sparse captions and most captions stay as they were
    manifest = [json.loads(x) for x in (d / "manifest.jsonl").read_text().splitlines()]
    assert all((d / r["path"]).with_suffix(".txt").read_text().strip() == r["caption"] for r in manifest)
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_make_dataset_workers_write_the_same_files(tmp_path):
    make_dataset(tmp_path / "one", 8, 32, seed=3, progress=False)
    make_dataset(tmp_path / "two", 8, 32, seed=3, progress=False, workers=2)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(names) == 8 * 3 + 1
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_and_fraction_leaves_the_relation_out_of_two_object_medium_captions(tmp_path):
    make_dataset(tmp_path / "rel", 60, 16, seed=2, progress=False)
    make_dataset(tmp_path / "and", 60, 16, seed=2, progress=False, and_fraction=1.0)
    rel = [json.loads(x) for x in (tmp_path / "rel" / "manifest.jsonl").read_text().splitlines()]
    bare = [json.loads(x) for x in (tmp_path / "and" / "manifest.jsonl").read_text().splitlines()]
    changed = 0
    for r, b in zip(rel, bare):
        scene = Scene.from_dict(r["scene"])
        if r["caption"] == medium_caption(scene) and scene.relation:  # a medium caption with a relation...
            x, y = scene.objects
            assert b["caption"] == f"{a_(f'{x.color} {x.shape}')} and {a_(f'{y.color} {y.shape}')}"  # ...loses it
            changed += 1
        else:  # dense captions, one- and three-object scenes are as before
            assert b["caption"] == r["caption"]
        assert (tmp_path / "and" / r["path"]).read_bytes() == (tmp_path / "rel" / r["path"]).read_bytes()
    assert changed >= 5
    make_dataset(tmp_path / "zero", 60, 16, seed=2, progress=False, and_fraction=0.0)  # 0: earlier captions
    assert (tmp_path / "zero" / "manifest.jsonl").read_bytes() == (tmp_path / "rel" / "manifest.jsonl").read_bytes()


def test_suites(tmp_path):
    suites = make_suites(tmp_path, n_per_category=20, seed=9)
    assert set(suites) == set(CATEGORIES)
    for category, specs in suites.items():
        lines = (tmp_path / f"{category}_val.txt").read_text().splitlines()
        assert lines == [s["prompt"] for s in specs] and len(set(lines)) == 20
        assert load_suite(tmp_path, category) == specs
        for spec in specs:
            scene = scene_from_spec(spec, random.Random(0))
            for want, obj in zip(spec["objects"], scene.objects):
                assert all(getattr(obj, k) == v for k, v in want.items() if v is not None)
            if spec["relation"]:
                assert relation_holds(scene.objects[0], scene.objects[1], spec["relation"])


def test_make_suites_gives_a_small_suite_all_its_prompts(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.world.dataset import suite_size

    r = CliRunner().invoke(app, ["world", "make-suites", "--out", str(tmp_path), "--n", "100"])
    assert r.exit_code == 0, r.output
    sizes = {category: len(load_suite(tmp_path, category)) for category in CATEGORIES}
    assert sizes == {"single": 48, "color": 100, "shape": 60, "texture": 100, "spatial": 100, "complex": 100}
    assert all(n == min(100, suite_size(c)) for c, n in sizes.items())
    assert "single, shape: every distinct prompt there is" in " ".join(r.output.split())


def test_bundled_suites_are_current():
    from pathlib import Path

    import bench.world

    folder = Path(bench.world.__file__).parent / "suites"
    for category in CATEGORIES:
        # 50 prompts each; "single" has only 6 shapes x 8 colors = 48 distinct prompts
        assert len(load_suite(folder, category)) == (48 if category == "single" else 50)


def test_make_dataset_command(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    r = CliRunner().invoke(app, ["world", "make-dataset", "--n", "40", "--size", "16", "--out", str(tmp_path / "d"),
                                 "--and-fraction", "1.0"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "d" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and all((tmp_path / "d" / x["path"]).is_file() for x in rows)
    two = [x["caption"] for x in rows if x["scene"]["relation"] and "background" not in x["caption"]]
    assert two and all(" and " in c and not {"left", "right", "above", "below"} & set(c.split()) for c in two)
