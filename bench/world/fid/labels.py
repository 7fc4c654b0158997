"""What ``WorldCNN``'s attribute heads predict: label groups, their slice of the logits, a scene's targets.

Multi-label groups (BCE, summed over a group's labels): shapes present (6), colours present (8),
textures present (4), sizes present (2), shape×colour pairs present (48, so features bind
colour to shape), 3×3 grid cells holding an object centre (9), background noise (1).
Single-label groups (CE): background (2) and number of objects (3).
"""

from __future__ import annotations

import numpy as np

from bench.world.scene import BACKGROUNDS, COLORS, SHAPES, SIZES, TEXTURES, Scene

COLOR_NAMES = tuple(COLORS)
SIZE_NAMES = tuple(SIZES)
BACKGROUND_NAMES = tuple(BACKGROUNDS)
PAIR_NAMES = tuple(f"{c} {s}" for s in SHAPES for c in COLOR_NAMES)
GRID_NAMES = tuple(f"cell{r}{c}" for r in range(3) for c in range(3))
MULTI_LABEL = {  # group → label names (BCE)
    "shape": SHAPES,
    "color": COLOR_NAMES,
    "texture": TEXTURES,
    "size": SIZE_NAMES,
    "pair": PAIR_NAMES,
    "grid": GRID_NAMES,
    "noise": ("noisy",),
}
SINGLE_LABEL = {  # group → class names (CE)
    "background": BACKGROUND_NAMES,
    "count": ("1", "2", "3"),
}


def _head_layout() -> dict[str, tuple[int, int]]:
    """group → (start, stop) slice of the logits vector, multi-label groups first."""
    out, i = {}, 0
    for group, names in (*MULTI_LABEL.items(), *SINGLE_LABEL.items()):
        out[group] = (i, i + len(names))
        i += len(names)
    return out


HEADS = _head_layout()
NUM_LOGITS = max(stop for _, stop in HEADS.values())


def scene_targets(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(multi-hot float32 [n_multi], class indices int64 [n_single]) for one scene."""
    multi = np.zeros(HEADS["noise"][1], np.float32)

    def on(group: str, index: int):
        multi[HEADS[group][0] + index] = 1.0

    for o in scene.objects:
        on("shape", SHAPES.index(o.shape))
        on("color", COLOR_NAMES.index(o.color))
        on("texture", TEXTURES.index(o.texture))
        on("size", SIZE_NAMES.index(o.size))
        on("pair", PAIR_NAMES.index(f"{o.color} {o.shape}"))
        on("grid", min(int(o.y * 3), 2) * 3 + min(int(o.x * 3), 2))
    if scene.noise > 0:
        on("noise", 0)
    single = np.array([BACKGROUND_NAMES.index(scene.background), len(scene.objects) - 1], np.int64)
    return multi, single
