"""The "shapes" world: scenes of 1–3 objects whose every attribute and relation is known.

A ``Scene`` is data only: objects with shape, color, texture, size and a centre in [0, 1]²
(x to the right, y downwards), a background, and for 2-object scenes the relation that
holds between them. ``render`` (render.py) draws it; ``dense_caption`` / ``sparse_caption``
describe it; ``sample_scene`` draws a random valid scene from a ``random.Random``.

Conventions shared by the renderer and the oracle (change them together):
- sizes are the object's bounding-box side as a fraction of the image's shorter side;
- "A left of B" means A's centre is at least ``MIN_GAP`` to the left of B's and the two do not
  overlap; likewise above / below / right of;
- absolute regions: "on the left" = centre x < 1/3, "on the right" > 2/3, "at the top" y < 1/3,
  "at the bottom" y > 2/3, "in the middle" otherwise both.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon")
COLORS = {  # name → RGB; well separated in hue / value, none close to the background
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (250, 140, 20),
    "cyan": (40, 210, 220),
    "white": (250, 250, 250),
}
TEXTURES = ("solid", "striped", "dotted", "checkered")
SIZES = {"small": 0.3, "large": 0.46}
BACKGROUNDS = {"grey": (110, 110, 110), "dark": (35, 35, 40)}
RELATIONS = ("left of", "right of", "above", "below")
REGIONS = ("on the left", "on the right", "at the top", "at the bottom", "in the middle")
MIN_GAP = 0.12


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    texture: str = "solid"
    size: str = "large"
    x: float = 0.5  # centre, fraction of width
    y: float = 0.5  # centre, fraction of height

    def __post_init__(self):
        for value, allowed, what in ((self.shape, SHAPES, "shape"), (self.color, COLORS, "color"),
                                     (self.texture, TEXTURES, "texture"), (self.size, SIZES, "size")):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; choose one of {list(allowed)}")


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: str = "grey"
    noise: float = 0.0  # std of per-pixel background noise (0–255 scale)
    relation: str | None = None  # for 2 objects: objects[0] <relation> objects[1]
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["objects"] = list(d["objects"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        return cls(tuple(Obj(**o) for o in d["objects"]), d.get("background", "grey"), d.get("noise", 0.0),
                   d.get("relation"))


def region_of(obj: Obj) -> str:
    if obj.x < 1 / 3:
        return "on the left"
    if obj.x > 2 / 3:
        return "on the right"
    if obj.y < 1 / 3:
        return "at the top"
    if obj.y > 2 / 3:
        return "at the bottom"
    return "in the middle"


def relation_holds(a: Obj, b: Obj, relation: str, gap: float = MIN_GAP) -> bool:
    dx, dy = b.x - a.x, b.y - a.y
    return {"left of": dx >= gap, "right of": -dx >= gap, "above": dy >= gap, "below": -dy >= gap}[relation]


# ------------------------------------------------------------------------------------------
# Captions and class labels
# ------------------------------------------------------------------------------------------


def a_(phrase: str) -> str:
    """The phrase with its indefinite article ("a red circle", "an orange star")."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def noun_phrase(o: Obj, with_size=True, with_texture=True) -> str:
    words = ([o.size] if with_size else []) + [o.color] + ([o.texture] if with_texture and o.texture != "solid" else []) + [o.shape]
    return " ".join(words)


def sparse_caption(scene: Scene) -> str:
    """The main object only, color and shape: "a red circle"."""
    return a_(noun_phrase(scene.objects[0], with_size=False, with_texture=False))


def dense_caption(scene: Scene) -> str:
    """Every object, attribute and relation, and the background."""
    objs = scene.objects
    if len(objs) == 1:
        body = f"{a_(noun_phrase(objs[0]))} {region_of(objs[0])}"
    elif len(objs) == 2 and scene.relation:
        rel = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}[scene.relation]
        body = f"{a_(noun_phrase(objs[0]))} {rel} {a_(noun_phrase(objs[1]))}"
    else:
        body = (", ".join(f"{a_(noun_phrase(o))} {region_of(o)}" for o in objs[:-1])
                + f" and {a_(noun_phrase(objs[-1]))} {region_of(objs[-1])}")
    return f"{body} on a {scene.background} background"


def class_label(scene: Scene) -> int:
    """Class for class-conditional stage 1: shape × color of the main object (48 classes)."""
    o = scene.objects[0]
    return SHAPES.index(o.shape) * len(COLORS) + list(COLORS).index(o.color)


NUM_CLASSES = len(SHAPES) * len(COLORS)


# ------------------------------------------------------------------------------------------
# Random scenes
# ------------------------------------------------------------------------------------------


def _place(rng: random.Random, size: str, lo=0.0, hi=1.0) -> float:
    half = SIZES[size] / 2 + 0.02
    return rng.uniform(max(half, lo), min(1 - half, hi))


def random_object(rng: random.Random, **fixed) -> Obj:
    attrs = {"shape": rng.choice(SHAPES), "color": rng.choice(list(COLORS)), "texture": rng.choice(TEXTURES),
             "size": rng.choice(list(SIZES))}
    attrs.update(fixed)
    return Obj(**attrs, x=_place(rng, attrs["size"]), y=_place(rng, attrs["size"]))


def place_pair(rng: random.Random, a: Obj, b: Obj, relation: str) -> tuple[Obj, Obj]:
    """Positions for a and b so that ``a relation b`` holds and the boxes do not overlap."""
    from dataclasses import replace

    for _ in range(1000):
        a2 = replace(a, x=_place(rng, a.size), y=_place(rng, a.size))
        b2 = replace(b, x=_place(rng, b.size), y=_place(rng, b.size))
        if relation_holds(a2, b2, relation) and not boxes_overlap(a2, b2) and _unambiguous(a2, b2, relation):
            return a2, b2
    raise RuntimeError(f"could not place {a} {relation} {b}")


def _unambiguous(a: Obj, b: Obj, relation: str) -> bool:
    """The named relation is the dominant displacement (so a rater would name the same one)."""
    dx, dy = abs(b.x - a.x), abs(b.y - a.y)
    return dx > dy if relation in ("left of", "right of") else dy > dx


def boxes_overlap(a: Obj, b: Obj, margin: float = 0.02) -> bool:
    ra, rb = SIZES[a.size] / 2, SIZES[b.size] / 2
    return abs(a.x - b.x) < ra + rb + margin and abs(a.y - b.y) < ra + rb + margin


def sample_scene(rng: random.Random, n_objects: int | None = None, noise: float | None = None) -> Scene:
    """A random valid scene: 1–3 objects with distinct (shape, color) pairs, non-overlapping."""
    n = n_objects or rng.choice((1, 1, 2, 2, 3))
    background = rng.choice(list(BACKGROUNDS))
    noise = rng.choice((0.0, 0.0, 4.0)) if noise is None else noise
    if n == 1:
        return Scene((random_object(rng),), background, noise)
    if n == 2:
        a = random_object(rng)
        b = random_object(rng)
        while (b.shape, b.color) == (a.shape, a.color):
            b = random_object(rng)
        if a.size == b.size == "large":  # two large objects rarely fit side by side with a clear relation
            b = Obj(b.shape, b.color, b.texture, "small")
        relation = rng.choice(RELATIONS)
        a, b = place_pair(rng, a, b, relation)
        return Scene((a, b), background, noise, relation)
    for _ in range(1000):
        objs = [random_object(rng, size="small") for _ in range(3)]
        keys = {(o.shape, o.color) for o in objs}
        if len(keys) == 3 and all(not boxes_overlap(p, q) for i, p in enumerate(objs) for q in objs[i + 1 :]):
            return Scene(tuple(objs), background, noise)
    raise RuntimeError("could not place three objects")
