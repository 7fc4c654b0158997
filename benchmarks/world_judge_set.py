"""Make a blind human-labelling set of world-model images, and the grids a person labels it from.

    .venv/bin/python benchmarks/world_judge_set.py make --out runs/judge-set \\
        --model bundle=bench/world/reference:40 --model weak=PIPELINE_DIR:24 --seed 7000
    .venv/bin/python benchmarks/world_judge_set.py grids runs/judge-set

``make`` samples, for every world suite (single, color, shape, texture, spatial, complex), N prompts
per model (drawn with ``--seed``, one image each, image seed ``--seed`` + a running index) at the
model's own size with the demo's sampler (stochastic DPM-Solver++, 20 steps, guidance 2), and
splits the suite's prompts at random into a development half and a held-out half (every image of a
prompt lands in the prompt's half). It writes ``images/<id>.png`` and ``items.json`` (id, model,
category, the prompt's suite index and spec, seed, split, the transformer's SHA-256). No judge is
run: the set is labelled blind.

``grids`` writes ``grids/<category>-<k>.png``: 12 images per grid at 2x (nearest), the prompt
and a short id above each, models shuffled together so the labeller cannot tell which made what;
``grids/legend.png`` shows the world's colours, shapes, textures and sizes as rendered.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

from bench.world.dataset import CATEGORIES, load_suite
from bench.world.demo import DEMO_CFG, DEMO_SAMPLER, DEMO_STEPS, SUITES
from bench.world.render import render
from bench.world.scene import COLORS, SHAPES, SIZES, TEXTURES, Obj, Scene

PER_GRID, COLS, SCALE = 12, 4, 2


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(out: Path, models: list[tuple[str, Path, int]], seed: int) -> None:
    from pixart.pipeline import PixArtPipeline, SampleSettings

    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    rng = random.Random(seed)
    suites = {c: load_suite(SUITES, c) for c in CATEGORIES}
    split = {}
    for c, specs in suites.items():
        order = list(range(len(specs)))
        rng.shuffle(order)
        for j, i in enumerate(order):
            split[(c, i)] = "dev" if j % 2 == 0 else "heldout"
    items, running = [], seed
    for name, folder, n in models:
        pipe = PixArtPipeline.from_pretrained(folder)
        weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
        side = pipe.transformer.config.input_size * pipe.vae.downsample
        settings = SampleSettings(sampler=DEMO_SAMPLER, steps=DEMO_STEPS, guidance_scale=DEMO_CFG,
                                  height=side, width=side).resolved(pipe)
        for c, specs in suites.items():
            chosen = sorted(rng.sample(range(len(specs)), n))
            seeds = list(range(running, running + n))
            running += n
            images = pipe([specs[i]["prompt"] for i in chosen], seeds, settings, batch_size=8, progress=False)
            for i, s, im in zip(chosen, seeds, images):
                item_id = f"{name}-{c}-{i:02d}-{s}"
                im.save(out / "images" / f"{item_id}.png", optimize=True)
                items.append({"id": item_id, "model": name, "category": c, "suite_index": i,
                              "spec": specs[i], "seed": s, "split": split[(c, i)]})
            print(f"{name} {c}: {n} images", flush=True)
        for it in items:
            if it["model"] == name:
                it["transformer_sha256"] = _sha256(weights)
    record = {"sampler": DEMO_SAMPLER, "steps": DEMO_STEPS, "guidance": DEMO_CFG, "split_seed": seed,
              "models": {name: {"pipeline": str(folder), "per_category": n} for name, folder, n in models},
              "settings": dataclasses.asdict(settings), "items": items}
    (out / "items.json").write_text(json.dumps(record, indent=1) + "\n")


def _caption(draw: ImageDraw.ImageDraw, xy, text: str, width: int) -> None:
    words, lines, line = text.split(), [], ""
    for w in words:  # wrap at the tile width (default bitmap font: 6 px per character)
        if len(line) + len(w) + 1 > width // 6:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    for k, ln in enumerate(lines[:3]):
        draw.text((xy[0], xy[1] + 11 * k), ln, fill=(0, 0, 0))


def grids(out: Path, seed: int = 0) -> None:
    record = json.loads((out / "items.json").read_text())
    (out / "grids").mkdir(exist_ok=True)
    rng = random.Random(seed)
    index = []
    for c in CATEGORIES:
        items = [it for it in record["items"] if it["category"] == c]
        rng.shuffle(items)
        for g in range(0, len(items), PER_GRID):
            chunk = items[g:g + PER_GRID]
            tile = 128 * SCALE
            head = 40
            rows = -(-len(chunk) // COLS)
            sheet = Image.new("RGB", (COLS * (tile + 8), rows * (tile + head + 8)), (255, 255, 255))
            draw = ImageDraw.Draw(sheet)
            name = f"{c}-{g // PER_GRID + 1}"
            for k, it in enumerate(chunk):
                im = Image.open(out / "images" / f"{it['id']}.png").convert("RGB")
                im = im.resize((im.width * SCALE, im.height * SCALE), Image.NEAREST)
                x, y = (k % COLS) * (tile + 8), (k // COLS) * (tile + head + 8)
                _caption(draw, (x + 2, y + 2), f"[{name}.{k + 1}] {it['spec']['prompt']}", tile)
                sheet.paste(im, (x, y + head))
                index.append({"grid": name, "cell": k + 1, "id": it["id"], "prompt": it["spec"]["prompt"],
                              "category": c})
            sheet.save(out / "grids" / f"{name}.png")
    (out / "grids" / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    legend(out / "grids" / "legend.png")


def legend(path: Path) -> None:
    """Every colour (solid circle), shape (white), texture (red square) and size (small / large blue
    square) as the world renders them on its grey background, at 2x."""
    cells = ([(f"{c}", Obj("circle", c, "solid", "large", 0.5, 0.5)) for c in COLORS]
             + [(s, Obj(s, "white", "solid", "large", 0.5, 0.5)) for s in SHAPES]
             + [(t, Obj("square", "red", t, "large", 0.5, 0.5)) for t in TEXTURES]
             + [(f"{z} square", Obj("square", "blue", "solid", z, 0.5, 0.5)) for z in SIZES])
    cols, tile, head = 6, 128 * SCALE // 2, 14
    rows = -(-len(cells) // cols)
    sheet = Image.new("RGB", (cols * (tile + 6), rows * (tile + head + 6)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (label, obj) in enumerate(cells):
        im = render(Scene((obj,)), (128, 128), seed=0).resize((tile, tile), Image.BOX)
        x, y = (k % cols) * (tile + 6), (k // cols) * (tile + head + 6)
        draw.text((x + 2, y + 1), label, fill=(0, 0, 0))
        sheet.paste(im, (x, y + head))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--model", action="append", required=True, help="NAME=PIPELINE_DIR:N (N prompts per category)")
    m.add_argument("--seed", type=int, default=7000)
    g = sub.add_parser("grids")
    g.add_argument("out", type=Path)
    args = ap.parse_args()
    if args.cmd == "make":
        models = []
        for spec in args.model:
            name, rest = spec.split("=", 1)
            folder, n = rest.rsplit(":", 1)
            models.append((name, Path(folder), int(n)))
        make(args.out, models, args.seed)
    else:
        grids(args.out)


if __name__ == "__main__":
    main()


def facets(spec: dict, label: dict) -> dict:
    """The person's label read against the prompt: per prompt object, "present" and each attribute the
    spec constrains (the label's value equals the spec's; unreadable counts as not shown), and
    "relation" when the prompt has one; "rule" = every facet holds (the category rule)."""
    out = {"objects": []}
    for want, seen in zip(spec["objects"], label["objects"], strict=True):
        f = {"present": bool(seen.get("present"))}
        for key in ("color", "shape", "texture", "size"):
            if want.get(key) is not None:
                f[key] = f["present"] and seen.get(key) == want[key]
        out["objects"].append(f)
    if spec.get("relation"):
        out["relation"] = bool(label.get("relation"))
    out["rule"] = all(all(f.values()) for f in out["objects"]) and out.get("relation", True)
    return out


def collect(out: Path, data: Path, labellers: str) -> None:
    """Merge the grid labels into ``data``/labels.json and copy the images into ``data``/{dev,heldout}/."""
    import shutil

    record = json.loads((out / "items.json").read_text())
    by_id = {it["id"]: it for it in record["items"]}
    cells = {(c["grid"], c["cell"]): c["id"] for c in json.loads((out / "grids" / "index.json").read_text())}
    labels, second = {}, {}
    for path in sorted((out / "labels").glob("*.jsonl")):
        target = second if path.name.startswith("overlap-") else labels
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                target[cells[(row["grid"], row["cell"])]] = row
    missing = sorted(set(by_id) - set(labels))
    if missing:
        raise SystemExit(f"{len(missing)} images have no label, e.g. {missing[:3]}")
    items, disagree = [], []
    for item_id, it in sorted(by_id.items()):
        lab = labels[item_id]
        f = facets(it["spec"], lab)
        if f["rule"] != lab["accept"]:
            disagree.append((item_id, lab["accept"], f["rule"], lab.get("note", "")))
        entry = {"file": f"{it['split']}/{item_id}.png", "id": item_id, "model": it["model"], "category": it["category"],
                 "suite_index": it["suite_index"], "prompt": it["spec"]["prompt"], "seed": it["seed"],
                 "split": it["split"], "human_accept": bool(lab["accept"]), "facets": f,
                 "seen": {"objects": lab["objects"], "relation": lab.get("relation"), "extra": lab.get("extra", 0)},
                 "note": lab.get("note", "")}
        if item_id in second:
            s = second[item_id]
            entry["second_opinion"] = {"human_accept": bool(s["accept"]), "facets": facets(it["spec"], s),
                                       "seen": {"objects": s["objects"], "relation": s.get("relation")}}
        items.append(entry)
        (data / it["split"]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "images" / f"{item_id}.png", data / it["split"] / f"{item_id}.png")
    doc = {"about": (f"World-model images at 128 px labelled by eye, blind: no judge or oracle had been run on them "
                     f"when they were labelled. {labellers}"),
           "rule": (out / "LABELLING.md").read_text(),
           "made": {k: v for k, v in record.items() if k != "items"},
           "models": {name: {"transformer_sha256": next(it["transformer_sha256"] for it in record["items"]
                                                        if it["model"] == name), **m}
                      for name, m in record["models"].items()},
           "items": items}
    (data / "labels.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(items)} items; {sum(i['human_accept'] for i in items)} accepted; "
          f"{sum('second_opinion' in i for i in items)} with a second opinion")
    for d in disagree:
        print("accept differs from the facets:", d)
