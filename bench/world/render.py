"""Deterministic renderer: ``render(scene, size, seed)`` → PIL RGB image.

Each object is drawn at 4× resolution (shape mask × texture pattern in the object's own box),
composited over the background and box-filtered down, so edges are anti-aliased and the
result depends only on (scene, size, seed). The seed drives the background noise alone.
Textures alternate the object's color with a darker shade of it (white: light grey) at a
period of a quarter of the object's side, so they survive small images and JPEG.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from bench.world.scene import BACKGROUNDS, COLORS, SIZES, Obj, Scene

SUPERSAMPLE = 4
# the sides the world is drawn at (any size renders; datasets, the demo and its ground truth keep to
# these): below 16 px a small object's texture cells (a quarter of 0.3 x the side) are under a pixel;
# the float64 canvas at 4x takes 384 bytes per pixel, 1.6 GB at 2048 x 2048
MIN_SIDE, MAX_SIDE = 16, 2048


def dark_shade(color: str) -> tuple[int, int, int]:
    if color == "white":
        return (165, 165, 165)
    return tuple(int(c * 0.55) for c in COLORS[color])


def shape_polygon(shape: str, box: tuple[float, float, float, float]) -> list[tuple[float, float]] | None:
    """Vertices of ``shape`` filling ``box`` = (left, top, side_w, side_h); None for the circle."""
    x0, y0, w, h = box
    if shape == "circle":
        return None
    unit = {
        "square": [(0, 0), (1, 0), (1, 1), (0, 1)],
        "triangle": [(0.5, 0), (1, 1), (0, 1)],
        "hexagon": [(0, 0.5), (0.25, 0), (0.75, 0), (1, 0.5), (0.75, 1), (0.25, 1)],
        "cross": [(1 / 3, 0), (2 / 3, 0), (2 / 3, 1 / 3), (1, 1 / 3), (1, 2 / 3), (2 / 3, 2 / 3), (2 / 3, 1),
                  (1 / 3, 1), (1 / 3, 2 / 3), (0, 2 / 3), (0, 1 / 3), (1 / 3, 1 / 3)],
    }.get(shape)
    if shape == "star":  # five points, apex up, inner radius 0.42 of outer; fitted to the box
        pts = []
        for k in range(10):
            r = 1.0 if k % 2 == 0 else 0.42
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((r * math.cos(a), r * math.sin(a)))
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        unit = [((px - min(xs)) / (max(xs) - min(xs)), (py - min(ys)) / (max(ys) - min(ys))) for px, py in pts]
    if unit is None:
        raise ValueError(f"unknown shape {shape!r}")
    return [(x0 + u * w, y0 + v * h) for u, v in unit]


def shape_mask(shape: str, size_hw: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Boolean mask [H, W] of ``shape`` filling ``box`` (pixel units), drawn without anti-aliasing."""
    h, w = size_hw
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    poly = shape_polygon(shape, box)
    x0, y0, bw, bh = box
    if poly is None:
        draw.ellipse([x0, y0, x0 + bw, y0 + bh], fill=255)
    else:
        draw.polygon(poly, fill=255)
    return np.asarray(im) > 127


def texture_pattern(texture: str, size_hw: tuple[int, int], box) -> np.ndarray:
    """Boolean [H, W]: True where the texture shows the dark shade."""
    h, w = size_hw
    x0, y0, bw, bh = box
    period = bw / 4
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = (xx + 0.5 - x0) / period, (yy + 0.5 - y0) / period
    if texture == "solid":
        return np.zeros((h, w), bool)
    if texture == "striped":  # vertical stripes
        return (np.floor(u) % 2) == 1
    if texture == "checkered":
        return ((np.floor(u) + np.floor(v)) % 2) == 1
    if texture == "dotted":  # a dot in the middle of every cell
        return (u - np.floor(u) - 0.5) ** 2 + (v - np.floor(v) - 0.5) ** 2 < 0.3**2
    raise ValueError(f"unknown texture {texture!r}")


def object_box(obj: Obj, height: int, width: int) -> tuple[float, float, float, float]:
    """(left, top, side, side) in pixels: a square box whose side is SIZES[size] × the shorter image side."""
    side = SIZES[obj.size] * min(height, width)
    return (obj.x * width - side / 2, obj.y * height - side / 2, side, side)


def render(scene: Scene, size: int | tuple[int, int] = 64, seed: int = 0) -> Image.Image:
    """The scene as an RGB image of ``size`` (an int for square, or (height, width))."""
    h, w = (size, size) if isinstance(size, int) else size
    s = SUPERSAMPLE
    canvas = np.empty((h * s, w * s, 3), np.float64)
    canvas[:] = BACKGROUNDS[scene.background]
    for obj in scene.objects:
        box = tuple(c * s for c in object_box(obj, h, w))
        mask = shape_mask(obj.shape, (h * s, w * s), box)
        dark = texture_pattern(obj.texture, (h * s, w * s), box)
        colors = np.where(dark[..., None], np.array(dark_shade(obj.color), float), np.array(COLORS[obj.color], float))
        canvas[mask] = colors[mask]
    small = canvas.reshape(h, s, w, s, 3).mean(axis=(1, 3))  # box filter = area average
    if scene.noise > 0:
        rng = np.random.default_rng(seed)
        small = small + rng.normal(0.0, scene.noise, small.shape)
    return Image.fromarray(np.clip(np.rint(small), 0, 255).astype(np.uint8), "RGB")
