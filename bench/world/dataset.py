"""World datasets (image folders the trainer reads) and compositional prompt suites.

``make_dataset(out, n, size)`` writes ``out/000000.png`` + ``000000.txt`` (the training caption)
+ ``000000.sparse.txt``, and ``out/manifest.jsonl`` with ``path``, ``caption``, ``dense_caption``,
``sparse_caption``, ``width``, ``height``, ``class`` and the ``scene``. Image i is a pure function
of (seed, i), so an interrupted run is resumed by running it again (existing files are kept).

The training caption is the dense caption, or (``medium_fraction`` of the time) the dense caption
without sizes, textures and background, so the model also sees the short phrasing the prompt
suites use. With ``and_fraction`` > 0, that share of the short captions of two-object scenes leave
the relation out ("a red circle and a blue square"), the binding suites' phrasing, which the
relation-bearing captions never use.

Prompt suites mirror T2I-CompBench's categories on this world (``make_suites``): one prompt per
line in ``{category}_val.txt`` (the official lists' layout) and the ground-truth spec of each
prompt in ``{category}_val.json`` (the oracle's input). Categories:
- ``single``: one object, color + shape ("a red circle");
- ``color``: color binding, two objects with different colors ("a red circle and a blue square");
- ``shape``: size-shape binding ("a large circle and a small square"); the world's nouns *are*
  shapes, so "shape" binds the size attribute to the shape, as CompBench binds shape adjectives;
- ``texture``: texture binding ("a striped circle and a dotted square");
- ``spatial``: 2D relations ("a red circle to the left of a blue square");
- ``complex``: two objects with color, texture and a relation.
Non-spatial (actions, interactions) has no meaning in a world of flat shapes and is skipped.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from bench.errors import BenchError, check_out_folder, check_range, check_room
from bench.world.render import MAX_SIDE, MIN_SIDE, render
from bench.world.scene import (
    a_,
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    TEXTURES,
    Obj,
    Scene,
    class_label,
    dense_caption,
    noun_phrase,
    place_pair,
    region_of,
    sample_scene,
    sparse_caption,
)
from pixart.errors import read_text
from pixart.files import write_text_atomic

CATEGORIES = ("single", "color", "shape", "texture", "spatial", "complex")
REL_WORDS = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}


def medium_caption(scene: Scene, relation: bool = True) -> str:
    """Colors, shapes and relations only: the prompt suites' phrasing. ``relation=False`` gives a
    two-object scene as the binding suites phrase it: "a red circle and a blue square"."""
    objs = scene.objects
    phrases = [a_(f"{o.color} {o.shape}") for o in objs]
    if len(objs) == 2 and scene.relation:
        return f"{phrases[0]} {REL_WORDS[scene.relation]} {phrases[1]}" if relation else f"{phrases[0]} and {phrases[1]}"
    if len(objs) == 1:
        return phrases[0]
    return ", ".join(f"{p} {region_of(o)}" for p, o in zip(phrases[:-1], objs[:-1])) + f" and {phrases[-1]} {region_of(objs[-1])}"


def scene_for(seed: int, i: int) -> Scene:
    return sample_scene(random.Random(seed * 1_000_003 + i))


def _render_to(job) -> None:
    scene, hw, seed, path = job
    render(scene, hw, seed=seed).save(path)


def check_side(option: str, size) -> None:
    """BenchError naming ``option`` unless ``size`` (a side, or (height, width)) is one the world is drawn at."""
    for side in (size,) if isinstance(size, int) else tuple(size):
        check_range(option, side, MIN_SIDE, MAX_SIDE, whole=True,
                    why=f"below {MIN_SIDE} px a small object's texture cells are under a pixel; "
                        f"the renderer draws at 4x, so {MAX_SIDE} px takes 1.6 GB per image")


# a lower bound of one item's bytes on disk: its manifest line (~600), two captions and the PNG
ITEM_BYTES = 1000


def _row(scene: Scene, seed: int, i: int, hw: tuple[int, int], medium_fraction: float, and_fraction: float) -> dict:
    """Item ``i``'s manifest record (its image is a function of ``seed``, ``i`` and ``hw``)."""
    rng = random.Random(seed * 7_919 + i)
    caption = (medium_caption(scene, relation=rng.random() >= and_fraction) if rng.random() < medium_fraction
               else dense_caption(scene))
    return {"path": f"{i:06d}.png", "caption": caption, "dense_caption": dense_caption(scene),
            "sparse_caption": sparse_caption(scene), "height": hw[0], "width": hw[1],
            "class": class_label(scene), "scene": scene.to_dict()}


def _check_earlier_images(out: Path, rows: list[dict]) -> None:
    """BenchError when ``out`` holds images of another dataset (another --seed or --size): its manifest
    describes other scenes or sizes for images that would be kept. Captions may change (--and-fraction)."""
    manifest = out / "manifest.jsonl"
    if not manifest.is_file():
        return
    for i, line in enumerate(read_text(manifest, BenchError, "dataset manifest").splitlines()[: len(rows)]):
        try:
            old = json.loads(line)
        except json.JSONDecodeError:
            raise BenchError(f"cannot read dataset manifest {manifest}: line {i + 1} is not JSON (truncated or "
                             "hand-edited?); use another --out folder") from None
        keys = ("path", "height", "width", "scene")
        if not isinstance(old, dict) or any(old.get(k) != json.loads(json.dumps(rows[i][k])) for k in keys):
            raise BenchError(f"--out {out} holds a dataset made with other settings (--seed or --size: its image "
                             f"{rows[i]['path']} shows another scene or size); use another --out folder")


def make_dataset(out, n: int, size: int | tuple[int, int] = 64, *, seed: int = 0, sizes: list | None = None,
                 medium_fraction: float = 0.5, and_fraction: float = 0.0, progress: bool = True,
                 workers: int = 1) -> Path:
    """Render ``n`` scenes into ``out``; ``sizes`` (list of (h, w)) cycles image sizes for multi-aspect data.
    ``workers`` > 1 renders in that many processes (the files are the same). ``and_fraction`` of the
    medium captions of two-object scenes leave the relation out ("a red circle and a blue square");
    at 0 (the default) the captions are those of earlier versions, draw for draw. Options out of
    range, an ``out`` that is a file or holds a dataset of another seed or size: ``BenchError``,
    before anything is written."""
    out = check_out_folder(out, "--out")
    check_range("--n", n, 1, whole=True)
    shapes = [tuple(hw) for hw in sizes] if sizes else [(size, size) if isinstance(size, int) else tuple(size)]
    for hw in shapes:
        check_side("--size", hw)
    check_range("--workers", workers, 1, whole=True)
    check_range("--and-fraction", and_fraction, 0, 1)
    check_range("medium_fraction", medium_fraction, 0, 1)
    check_room(n * ITEM_BYTES, f"{n:,} images with their captions", "--n", disk=out)
    scenes = [scene_for(seed, i) for i in range(n)]
    rows = [_row(scene, seed, i, shapes[i % len(shapes)], medium_fraction, and_fraction)
            for i, scene in enumerate(scenes)]
    _check_earlier_images(out, rows)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, row in enumerate(rows):
        stem = f"{i:06d}"
        if not (out / f"{stem}.png").is_file():
            jobs.append((scenes[i], (row["height"], row["width"]), seed * 100_003 + i, out / f"{stem}.png"))
        _write_if_changed(out / f"{stem}.txt", row["caption"] + "\n")
        _write_if_changed(out / f"{stem}.sparse.txt", row["sparse_caption"] + "\n")
    bar = tqdm(total=len(jobs), desc="world images", disable=not progress or not jobs)
    if workers > 1 and len(jobs) > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_render_to, jobs, chunksize=64):
                bar.update(1)
    else:
        for job in jobs:
            _render_to(job)
            bar.update(1)
    bar.close()
    _write_if_changed(out / "manifest.jsonl", "\n".join(json.dumps(row) for row in rows) + "\n")
    return out


def _write_if_changed(path: Path, text: str) -> None:
    """A resumed ``make_dataset`` leaves files that already hold the right text alone, and replaces the
    others atomically: processes that share one dataset folder never read a half-written caption or
    manifest."""
    try:
        if path.read_text() == text:
            return
    except FileNotFoundError:
        pass
    write_text_atomic(path, text)


# ------------------------------------------------------------------------------------------
# Prompt suites
# ------------------------------------------------------------------------------------------


def _spec(prompt, category, objects, relation=None) -> dict:
    keys = ("shape", "color", "texture", "size")
    return {"prompt": prompt, "category": category, "objects": [{k: o.get(k) for k in keys} for o in objects],
            "relation": relation}


def _two(rng):
    s1, s2 = rng.sample(SHAPES, 2)
    return s1, s2


def suite_prompt(category: str, rng: random.Random) -> dict:
    if category == "single":
        s, c = rng.choice(SHAPES), rng.choice(list(COLORS))
        return _spec(a_(f"{c} {s}"), category, [{"shape": s, "color": c}])
    s1, s2 = _two(rng)
    if category == "color":
        c1, c2 = rng.sample(list(COLORS), 2)
        return _spec(f"{a_(f'{c1} {s1}')} and {a_(f'{c2} {s2}')}", category, [{"shape": s1, "color": c1}, {"shape": s2, "color": c2}])
    if category == "shape":
        z1, z2 = rng.sample(list(SIZES), 2)
        return _spec(f"{a_(f'{z1} {s1}')} and {a_(f'{z2} {s2}')}", category, [{"shape": s1, "size": z1}, {"shape": s2, "size": z2}])
    if category == "texture":
        t1, t2 = rng.sample(TEXTURES[1:], 2)
        return _spec(f"{a_(f'{t1} {s1}')} and {a_(f'{t2} {s2}')}", category, [{"shape": s1, "texture": t1}, {"shape": s2, "texture": t2}])
    c1, c2 = rng.sample(list(COLORS), 2)
    rel = rng.choice(RELATIONS)
    if category == "spatial":
        return _spec(f"{a_(f'{c1} {s1}')} {REL_WORDS[rel]} {a_(f'{c2} {s2}')}", category,
                     [{"shape": s1, "color": c1}, {"shape": s2, "color": c2}], rel)
    if category == "complex":
        t1, t2 = rng.choice(TEXTURES), rng.choice(TEXTURES)
        a = {"shape": s1, "color": c1, "texture": t1}
        b = {"shape": s2, "color": c2, "texture": t2}
        return _spec(f"{a_(noun_phrase(Obj(s1, c1, t1), with_size=False))} {REL_WORDS[rel]} "
                     f"{a_(noun_phrase(Obj(s2, c2, t2), with_size=False))}", category, [a, b], rel)
    raise ValueError(f"unknown category {category!r}; choose one of {CATEGORIES}")


def suite_size(category: str) -> int:
    """How many distinct prompts ``suite_prompt`` draws from for ``category`` (single: 48)."""
    pairs, colors = len(SHAPES) * (len(SHAPES) - 1), len(COLORS) * (len(COLORS) - 1)
    return {"single": len(SHAPES) * len(COLORS), "color": pairs * colors,
            "shape": pairs * len(SIZES) * (len(SIZES) - 1),
            "texture": pairs * (len(TEXTURES) - 1) * (len(TEXTURES) - 2),
            "spatial": pairs * colors * len(RELATIONS),
            "complex": pairs * colors * len(TEXTURES) ** 2 * len(RELATIONS)}[category]


def make_suites(out, n_per_category: int = 50, seed: int = 1234) -> dict[str, list[dict]]:
    """Write ``{category}_val.txt`` + ``{category}_val.json`` for every category; distinct prompts. A
    category with fewer distinct prompts than ``n_per_category`` (``suite_size``) gets all of them;
    more than the largest has, or an ``out`` that is a file, is a ``BenchError``."""
    out = check_out_folder(out, "--out")
    largest = max(CATEGORIES, key=suite_size)
    check_range("--n", n_per_category, 1, suite_size(largest), whole=True,
                why=f"the prompts per category; the largest suite, {largest}, has {suite_size(largest):,} "
                    "distinct ones")
    out.mkdir(parents=True, exist_ok=True)
    suites = {}
    for k, category in enumerate(CATEGORIES):
        rng = random.Random(seed * 31 + k)
        specs, seen = [], set()
        wanted = min(n_per_category, suite_size(category))
        for _ in range(100 * wanted):
            spec = suite_prompt(category, rng)
            if spec["prompt"] not in seen:
                seen.add(spec["prompt"])
                specs.append(spec)
            if len(specs) == wanted:
                break
        (out / f"{category}_val.txt").write_text("".join(s["prompt"] + "\n" for s in specs))
        (out / f"{category}_val.json").write_text(json.dumps(specs, indent=1) + "\n")
        suites[category] = specs
    return suites


def load_suite(folder, category: str) -> list[dict]:
    """The prompt specs of ``folder/{category}_val.json``; BenchError naming the file when it is
    missing, damaged or not a list of specs."""
    path = Path(folder) / f"{category}_val.json"
    try:
        specs = json.loads(read_text(path, BenchError, f"prompt suite {category!r}"))
    except json.JSONDecodeError as e:
        raise BenchError(f"cannot read prompt suite {path}: invalid JSON at line {e.lineno}, column {e.colno}: "
                         f"{e.msg} (truncated or hand-edited?)") from None
    if not isinstance(specs, list) or not all(isinstance(s, dict) and "prompt" in s for s in specs):
        raise BenchError(f"prompt suite {path} is not a list of prompt specs ({{\"prompt\", \"category\", "
                         "\"objects\", \"relation\"}); write one with `pixart-bench world make-suites`")
    return specs


def scene_from_spec(spec: dict, rng: random.Random) -> Scene:
    """A scene that satisfies ``spec`` (unconstrained attributes drawn at random): a perfect 'generation'."""
    objs = []
    for o in spec["objects"]:
        fixed = {k: v for k, v in o.items() if v is not None}
        fixed.setdefault("texture", "solid")
        fixed.setdefault("color", rng.choice(list(COLORS)))
        fixed.setdefault("size", "small" if len(spec["objects"]) > 1 else rng.choice(list(SIZES)))
        objs.append(Obj(**fixed))
    if len(objs) == 1:
        return Scene((replace(objs[0], x=rng.uniform(0.35, 0.65), y=rng.uniform(0.35, 0.65)),))
    relation = spec.get("relation") or rng.choice(RELATIONS)
    a, b = place_pair(rng, objs[0], objs[1], relation)
    return Scene((a, b), relation=relation)
