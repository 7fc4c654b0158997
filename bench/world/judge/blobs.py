"""Blobs of a world image and what the judge's network reads from each (``find_blobs``).

1. background = median of the image border (``oracle.fit.border_background``); the image is
   first brought to a shorter side of at most ``WORK_SIDE`` (area average);
2. support = pixels far from the background (on a lightly blurred copy when the border is noisy),
   holes filled; blobs = its 8-connected components of at least ``MIN_AREA_FRAC`` of the image
   (specks and fragments below it are not objects, as a person does not count them);
3. colour = the palette colour whose segment [dark shade, colour] lies nearest the blob's core
   (``oracle.fit.color_of``); its distance and how far the brighter pixels reach towards the
   colour itself come with it, so the judge can say "no palette colour";
4. the network's input, ``INPUT`` × ``INPUT`` pixels of a square window around the blob (its box
   side × ``WINDOW``, centred, so a rectangle stays a rectangle): channel 0 the blob's mask,
   channel 1 its darkness (0 = the palette colour, 1 = its dark shade; 0 outside the blob).

Training (``judge.train``) runs the same function on rendered scenes, so the network sees
exactly what it sees at judging time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from bench.world.oracle.fit import _BRIGHT, _DARK, _METRIC, as_float, border_background, color_of

WORK_SIDE = 128  # larger images are area-averaged down to this shorter side first
MIN_AREA_FRAC = 0.008  # blobs below this fraction of the image are specks (a small star covers ~3%)
INPUT = 32  # network input side
WINDOW = 1.2  # window side / blob box side


@dataclass
class Blob:
    mask: np.ndarray  # bool [H, W] in the working image (holes filled)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in the working image (x1, y1 exclusive)
    color: int  # palette index of the nearest segment
    color_dist: float  # median distance of the core pixels to that segment (RGB units)
    color_t: float  # 95th percentile of the core's position on it (1 = the colour itself)
    inputs: np.ndarray  # float32 [2, INPUT, INPUT]: mask, darkness

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def working_image(image) -> np.ndarray:
    """float64 [H, W, 3], area-averaged to a shorter side of at most ``WORK_SIDE``."""
    img = as_float(image)
    h, w = img.shape[:2]
    if min(h, w) > WORK_SIDE:
        f = WORK_SIDE / min(h, w)
        small = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        img = np.asarray(small.resize((max(8, round(w * f)), max(8, round(h * f))), Image.BOX), np.float64)
    return img


def darkness(img: np.ndarray, k: int) -> np.ndarray:
    """Per pixel: 0 at palette colour k, 1 at its dark shade (projected on the segment, luma-weighted)."""
    d = _BRIGHT[k] - _DARK[k]
    t = ((img - _DARK[k]) @ (_METRIC @ d)) / (d @ _METRIC @ d)
    return 1.0 - np.clip(t, 0.0, 1.0)


def _window(a: np.ndarray, bbox, side: float) -> np.ndarray:
    """``a`` [H, W] resampled on an INPUT × INPUT grid over the square window of ``side`` pixels
    centred on ``bbox`` (bilinear, pre-blurred when shrinking; 0 outside the image)."""
    x0, y0, x1, y1 = bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    step = side / INPUT
    if step > 1.2:
        a = ndi.gaussian_filter(a, 0.4 * step)
    c = (np.arange(INPUT) + 0.5) * step - side / 2
    yy, xx = np.meshgrid(cy + c - 0.5, cx + c - 0.5, indexing="ij")
    return ndi.map_coordinates(a, [yy, xx], order=1, mode="constant", cval=0.0)


def find_blobs(image) -> tuple[np.ndarray, list[Blob]]:
    """(the working image, its blobs largest first)."""
    img = working_image(image)
    H, W = img.shape[:2]
    bg, sigma = border_background(img)
    smooth = ndi.gaussian_filter(img, (0.8, 0.8, 0)) if sigma > 1.5 else img
    dist = np.linalg.norm(smooth - bg, axis=-1)
    support = dist > max(22.0, 5.0 * (sigma * 0.35 if sigma > 1.5 else sigma))
    lab, n = ndi.label(support, structure=np.ones((3, 3), bool))
    blobs = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        mask = np.zeros((H, W), bool)
        mask[sl] = ndi.binary_fill_holes(lab[sl] == i)
        if mask.sum() < max(6, MIN_AREA_FRAC * H * W):
            continue
        ys, xs = np.nonzero(mask)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        k, cdist, ct = color_of(img, mask)
        dk = np.where(mask, darkness(img, k), 0.0)
        side = WINDOW * max(bbox[2] - bbox[0], bbox[3] - bbox[1]) + 2
        inputs = np.stack([_window(mask.astype(np.float64), bbox, side), _window(dk, bbox, side)]).astype(np.float32)
        blobs.append(Blob(mask, bbox, k, cdist, ct, inputs))
    blobs.sort(key=lambda b: -b.area)
    return img, blobs
