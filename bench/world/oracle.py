"""Pixel-only oracle for the "shapes" world: ``detect(image)`` lists objects, ``score(image, spec)`` grades a prompt.

The oracle never sees the scene. It reads the pixels with the drawing conventions of
``render.py`` — square object boxes, shape templates from ``shape_mask``, textures from
``texture_pattern`` (period a quarter of the side, phase fixed to the box), dark shade from
``dark_shade`` — so the same code grades renders and images from a generative model:

1. background = median of the image border; blobs = connected components of pixels far from it
   (found on a lightly blurred copy when the border is noisy); images with a shorter side above
   ``MAX_WORK_SIDE`` are box-downscaled first;
2. colour = the palette colour whose segment [dark shade, colour] lies nearest the blob's core
   pixels (textures mix the two shades); too far from every segment → unknown;
3. coverage α ∈ [0, 1] per pixel: the pixel as a mix of background and the object's shades
   (non-negative least squares on both shades, or the nearest interior pixel's shade where
   background and shades are collinear), measured in a luma-weighted metric because JPEG
   smears chroma;
4. shape = the template (``shape_mask`` at 4× supersampling, drawn into the box implied by α's
   area, centroid and second moments) with the best soft IoU against α, over a few template
   blurs. Accepted only if the IoU clears the shape's floor, the implied mean outline error is
   under ``SHAPE_MAX_OUTLINE_ERROR`` pixels and no 3×3 window misfits by more than
   ``SHAPE_MAX_MISFIT``; otherwise the blob is unknown;
5. texture = solid when the blob shows (almost) no dark shade, else the texture template drawn
   into the fitted box that correlates best with the darkness map (too weak → None);
6. size = box side / shorter image side against ``SIZE_THRESHOLD`` (between small 0.3 and
   large 0.46); centre = box centre as fractions of width / height.

Blobs that are tiny, fit no shape or carry no palette colour come back as unknown (shape,
colour, texture and size None, confidence < ``FOUND_CONFIDENCE``): on images from a generative
model the oracle says "not found" rather than guess. A blob that fits poorly is also tried as
touching objects — split by palette colour, by a higher coverage threshold, or at a neck of its
distance transform — and kept split when every part is a confident object.

``score`` follows T2I-CompBench's per-image definitions with exact 0/1 facts in place of
BLIP-VQA probabilities and UniDet confidences (see ``score``). ``corrupt`` /
``validation_case`` / ``validate`` measure the oracle on rendered scenes under noise, JPEG,
blur and rescaling; ``benchmarks/oracle_validation.py`` prints the figures.
"""

from __future__ import annotations

import io
import itertools
import math
import random
import time
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage as ndi

from bench.world.render import SUPERSAMPLE, dark_shade, render, shape_mask, shape_polygon, texture_pattern
from bench.world.scene import COLORS, RELATIONS, SHAPES, SIZES, TEXTURES, Obj, Scene, region_of, sample_scene

# ------------------------------------------------------------------------------------------
# Tunables
# ------------------------------------------------------------------------------------------

SIZE_THRESHOLD = (SIZES["small"] + SIZES["large"]) / 2  # box side / shorter image side
COLOR_MAX_DIST = 48.0  # RGB distance from the nearest palette segment beyond which the colour is unknown
SHAPE_MIN_IOU = {  # soft IoU with the shape's template below which the blob is not that shape
    "circle": 0.86, "square": 0.86, "triangle": 0.8, "star": 0.72, "cross": 0.82, "hexagon": 0.86}
SHAPE_MAX_OUTLINE_ERROR = 0.8  # pixels: mean outline displacement implied by the IoU deficit
SHAPE_MAX_MISFIT = 4.5  # pixels of coverage: largest surplus / deficit against the template in a 3×3 window
COLOR_MIN_T = 0.4  # the brighter core pixels must reach this far from the dark shade towards the colour
SOLID_MAX_DARKNESS = 0.12  # mean darkness (0 = colour, 1 = dark shade) below which the object is solid
TEXTURE_MIN_CORR = 0.25  # correlation with the best texture template below which the texture is unknown
MAX_ASPECT = 1.15  # box width / height allowed when fitting a template (world boxes are square)
SPLIT_BELOW_IOU = 0.9  # blobs fitting their shape worse than this are tried as several touching objects
MIN_SIDE_FRAC = 0.2  # blobs smaller than this (fraction of the shorter side) are "tiny" → unknown
MIN_AREA_FRAC = 0.001  # components below this fraction of the image are dropped as specks
FOUND_CONFIDENCE = 0.5  # a detection counts for scoring only at or above this confidence
MAX_WORK_SIDE = 192  # larger images are box-downscaled to a shorter side of WORK_SIDE before detection
WORK_SIDE = 128
MISFIT_WINDOW = 3  # window (pixels) of the local misfit test
TEMPLATE_BLURS = (0.0, 0.4, 0.7, 1.0)  # Gaussian sigmas (pixels) tried on each shape template
INTERIOR_FRACTION = 0.6  # interior pixels: metric distance from the background above this × the darker shade's
CHROMA_WEIGHT = 0.3  # weight of Cb / Cr against Y in the coverage / darkness metric

# Coverage and darkness are measured with a metric that trusts luma over chroma: JPEG keeps luma at full
# resolution and subsamples / quantises chroma harder, so chroma bleeds across edges.
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_METRIC = _YCC.T @ np.diag([1.0, CHROMA_WEIGHT, CHROMA_WEIGHT]) @ _YCC  # <a, b> = a @ _METRIC @ b

_NAMES = list(COLORS)
_BRIGHT = np.array([COLORS[c] for c in _NAMES], np.float64)  # [8, 3]
_DARK = np.array([dark_shade(c) for c in _NAMES], np.float64)


@dataclass
class Detection:
    """One blob. Unknown blobs (not an object of the world) have shape / color / texture / size None
    and a confidence below ``FOUND_CONFIDENCE``; a known object may still have texture None."""

    shape: str | None
    color: str | None
    texture: str | None
    size: str | None
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 pixels (x1, y1 exclusive)
    x: float  # centre, fraction of width
    y: float  # centre, fraction of height
    confidence: float  # how well the blob fits its best shape template / colour, in [0, 1]
    fit: dict = field(default_factory=dict, repr=False)  # diagnostics: IoUs, colour distance, texture fits

    @property
    def known(self) -> bool:
        return self.shape is not None and self.color is not None and self.confidence >= FOUND_CONFIDENCE

    @property
    def region(self) -> str:
        """``scene.region_of`` the centre: "on the left", …, "in the middle"."""
        return region_of(Obj("circle", "red", x=self.x, y=self.y))

    def matches(self, want: dict) -> bool:
        """Every constrained attribute of ``want`` (shape / color / texture / size, and an optional
        "region") equals ours; unknown detections match nothing."""
        if not self.known:
            return False
        return all(want.get(k) is None or want.get(k) == getattr(self, k)
                   for k in ("shape", "color", "texture", "size", "region"))

    def as_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color, "texture": self.texture, "size": self.size,
                "bbox": [int(v) for v in self.bbox], "x": round(float(self.x), 4), "y": round(float(self.y), 4),
                "confidence": round(float(self.confidence), 4)}


# ------------------------------------------------------------------------------------------
# Image helpers
# ------------------------------------------------------------------------------------------


def _as_float(image) -> np.ndarray:
    """PIL image or array [H, W, 3|4] (uint8, or float in [0, 1] or [0, 255]) / [H, W] → float64 [H, W, 3]."""
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"))
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"expected an [H, W, 3] image, got shape {arr.shape}")
        arr = arr[..., :3]
        if arr.dtype != np.uint8 and np.issubdtype(arr.dtype, np.floating) and arr.max() <= 1.0:
            arr = arr * 255.0
    return arr.astype(np.float64)


def _background(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Median colour of the border ring and the noise std (MAD) there."""
    h, w = img.shape[:2]
    r = max(1, min(h, w) // 40)
    ring = np.concatenate([img[:r].reshape(-1, 3), img[-r:].reshape(-1, 3),
                           img[r:-r, :r].reshape(-1, 3), img[r:-r, -r:].reshape(-1, 3)])
    bg = np.median(ring, axis=0)
    dev = np.abs(ring - bg)
    sigma = float(1.4826 * np.median(dev, axis=0).mean())
    return bg, sigma


def _segment_fit(pix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For pixels [N, 3]: distance to each palette segment [dark shade, colour] and position t on it."""
    d = _BRIGHT - _DARK  # [8, 3]
    rel = pix[:, None, :] - _DARK[None]  # [N, 8, 3]
    t = np.clip((rel * d).sum(-1) / (d * d).sum(-1), 0.0, 1.0)
    dist = np.linalg.norm(rel - t[..., None] * d, axis=-1)
    return dist, t


@cache
def _shape_stats(shape: str) -> tuple[float, float, float, float]:
    """Area fraction, centroid y offset (per side, from the box centre), normalised x/y second moments."""
    n = 600
    m = shape_mask(shape, (n + 4, n + 4), (2.0, 2.0, float(n), float(n)))
    ys, xs = np.nonzero(m)
    xs, ys = (xs + 0.5 - 2.0) / n, (ys + 0.5 - 2.0) / n
    return float(m.sum() / n**2), float(ys.mean() - 0.5), float(xs.var()), float(ys.var())


@cache
def _shape_perimeter(shape: str) -> float:
    """Perimeter of ``shape`` drawn in a unit box."""
    poly = shape_polygon(shape, (0.0, 0.0, 1.0, 1.0))
    if poly is None:
        return math.pi
    return float(sum(math.dist(poly[i], poly[i - 1]) for i in range(len(poly))))


def _boundary_error(iou: float, shape: str, box) -> float:
    """(1 − IoU) as a mean displacement of the shape's outline in pixels: (1 − IoU) · area / perimeter."""
    side = math.sqrt(box[2] * box[3])
    return (1.0 - iou) * _shape_stats(shape)[0] * side / _shape_perimeter(shape)


def _coverage(shape: str, hw: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Anti-aliased coverage [H, W] of ``shape`` in ``box`` (x0, y0, w, h), as the renderer draws it."""
    h, w = hw
    s = SUPERSAMPLE
    m = shape_mask(shape, (h * s, w * s), tuple(c * s for c in box))
    return m.reshape(h, s, w, s).mean(axis=(1, 3))


def _texture_darkness(texture: str, shape: str, hw, box) -> np.ndarray:
    """Expected fraction of dark-shade area per pixel (within the shape) for ``texture`` in ``box``."""
    h, w = hw
    s = SUPERSAMPLE
    sbox = tuple(c * s for c in box)
    m = shape_mask(shape, (h * s, w * s), sbox)
    p = texture_pattern(texture, (h * s, w * s), sbox) & m
    cov = m.reshape(h, s, w, s).sum(axis=(1, 3))
    dark = p.reshape(h, s, w, s).sum(axis=(1, 3))
    return dark / np.maximum(cov, 1)


# ------------------------------------------------------------------------------------------
# Detection
# ------------------------------------------------------------------------------------------


def _unknown(bbox, hw, confidence, why: str, **fit) -> Detection:
    h, w = hw
    x0, y0, x1, y1 = bbox
    return Detection(None, None, None, None, (int(x0), int(y0), int(x1), int(y1)), float((x0 + x1) / 2 / w),
                     float((y0 + y1) / 2 / h), float(min(confidence, 0.25)), {"unknown": why, **fit})


def _color_of(img: np.ndarray, mask: np.ndarray) -> tuple[int, float, float]:
    """Palette index nearest the blob's core pixels, their median distance to its segment, bright-end t.

    Each palette colour is the segment [dark shade, colour] (textures mix the two); the core is
    the blob eroded away from its edge, where JPEG's chroma bleed and anti-aliasing are weakest.
    The third value, the 95th percentile of the core's position on the segment, is near 1 when
    the brighter pixels show the palette colour itself (not only its dark shade).
    """
    depth = ndi.distance_transform_edt(mask)
    core = depth >= min(2.0, max(1.0, 0.6 * depth.max()))
    if core.sum() < 4:
        core = mask
    dist, t = _segment_fit(img[core])
    med = np.median(dist, axis=0)
    k = int(np.argmin(med))
    return k, float(med[k]), float(np.percentile(t[:, k], 95))


def _alpha(img, bg, comp, allowed, k) -> tuple[np.ndarray, np.ndarray]:
    """Coverage α and the interior mask inside a crop, for an object of palette colour k.

    A pixel is α·(object colour) + (1 − α)·background, the object colour lying on the segment
    [dark shade, colour]. Where the two shades and the background are far from collinear (most
    colours on grey) α comes from a non-negative least-squares fit of both shades; otherwise
    (the dark background, white) the local shade is taken from the nearest interior pixel.
    """
    bright, dark = _BRIGHT[k], _DARK[k]

    def norm(v):
        return np.sqrt(np.maximum(((v @ _METRIC) * v).sum(-1), 0.0))

    half = INTERIOR_FRACTION * min(norm(dark - bg), norm(bright - bg))
    dist = norm(img - bg)
    solid = (dist > half) & ndi.binary_dilation(comp, iterations=1)
    interior = ndi.binary_erosion(solid) & comp
    if interior.sum() < 3:
        interior = solid & comp
    if interior.sum() == 0:
        return np.zeros(comp.shape), interior
    p = img - bg
    u, v = bright - bg, dark - bg
    uu, vv, uv = u @ _METRIC @ u, v @ _METRIC @ v, u @ _METRIC @ v
    pu, pv = p @ (_METRIC @ u), p @ (_METRIC @ v)
    det = uu * vv - uv * uv
    if det > (0.5**2) * uu * vv:  # sin(angle between the shades, seen from the background) > 0.5
        a = (pu * vv - pv * uv) / det
        b = (pv * uu - pu * uv) / det
        only_u, only_v = np.maximum(pu / uu, 0), np.maximum(pv / vv, 0)
        res_u = -only_u**2 * uu  # residual up to a constant shared by both options
        res_v = -only_v**2 * vv
        one = np.where(res_u <= res_v, only_u, only_v)
        a_ok = (a >= 0) & (b >= 0)
        alpha = np.where(a_ok, a + b, one)
    else:
        # the local object colour: the nearest interior pixel's colour, projected onto the palette segment
        _, (iy, ix) = ndi.distance_transform_edt(~interior, return_indices=True)
        seg = bright - dark
        t = np.clip(((img[iy, ix] - dark) @ (_METRIC @ seg)) / (seg @ _METRIC @ seg), 0.0, 1.0)
        local = dark + t[..., None] * seg - bg
        num = ((p @ _METRIC) * local).sum(-1)
        den = np.maximum(((local @ _METRIC) * local).sum(-1), 1e-6)
        alpha = num / den
    a = np.clip(alpha, 0.0, 1.0)
    a[interior] = 1.0
    a[~allowed] = 0.0
    return a, interior


def _fit_shape(alpha: np.ndarray, shape: str) -> tuple[float, tuple, np.ndarray, np.ndarray]:
    """``shape`` drawn into the box implied by α's area / centroid / moments:
    (soft IoU, box, template coverage, the template blurred as α matched it best)."""
    h, w = alpha.shape
    area = alpha.sum()
    yy, xx = np.mgrid[0:h, 0:w]
    cx = (alpha * (xx + 0.5)).sum() / area
    cy = (alpha * (yy + 0.5)).sum() / area
    vx = (alpha * (xx + 0.5 - cx) ** 2).sum() / area
    vy = (alpha * (yy + 0.5 - cy) ** 2).sum() / area
    k, oy, kx, ky = _shape_stats(shape)
    # world objects have square boxes; allow a generated object to be mildly stretched, no more
    aspect = math.sqrt(max(vx / kx, 1e-6) / max(vy / ky, 1e-6))
    aspect = 1.0 if abs(math.log(aspect)) < 0.12 else min(max(aspect, 1 / MAX_ASPECT), MAX_ASPECT)
    bw = math.sqrt(area / k * aspect)
    bh = math.sqrt(area / k / aspect)
    box = (cx - bw / 2, cy - oy * bh - bh / 2, bw, bh)
    for _ in range(2):  # calibrate against the rasterised template (PIL's edge conventions)
        t = _coverage(shape, (h, w), box)
        ta = t.sum()
        if ta <= 0:
            return 0.0, box, t, t
        tx = (t * (xx + 0.5)).sum() / ta
        ty = (t * (yy + 0.5)).sum() / ta
        s = math.sqrt(area / ta)
        nw, nh = box[2] * s, box[3] * s
        # scale about the template centroid, then move it onto α's centroid
        x0 = cx - (tx - box[0]) * s
        y0 = cy - (ty - box[1]) * s
        box = (x0, y0, nw, nh)
    t = _coverage(shape, (h, w), box)
    iou, tb = _soft_iou(alpha, t)
    return iou, box, t, tb


def _soft_iou(alpha: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Soft IoU of α with the template, the best over a few template blurs (the image may be
    blurred), and that blurred template."""
    best = (-1.0, t)
    for sigma in TEMPLATE_BLURS:
        tb = ndi.gaussian_filter(t, sigma, mode="constant") if sigma else t
        iou = float(np.minimum(alpha, tb).sum() / max(np.maximum(alpha, tb).sum(), 1e-9))
        if iou > best[0]:
            best = (iou, tb)
    return best


def _local_misfit(alpha: np.ndarray, tb: np.ndarray) -> float:
    """Largest coverage surplus or deficit against the template in any 3×3 window, in pixels:
    blur, noise and JPEG scatter small errors along the outline; a bump, a dent or a wrong
    shape leaves a concentrated one."""
    return float(np.abs(ndi.uniform_filter(alpha - tb, MISFIT_WINDOW, mode="constant")).max() * MISFIT_WINDOW**2)


def _texture_of(img, k, shape, box, tmpl, interior) -> tuple[str | None, dict]:
    """Texture from the darkness map inside the object: solid when (almost) no dark shade, else the
    texture template (drawn into the fitted box, so its phase is known) that correlates best."""
    h, w = tmpl.shape
    inside = ndi.binary_erosion(tmpl > 0.999) & interior
    if inside.sum() < 6:
        inside = (tmpl > 0.999) & interior
    if inside.sum() < 4:
        return None, {"texture_pixels": int(inside.sum())}
    bright, dark = _BRIGHT[k], _DARK[k]
    d = bright - dark
    t = ((img[inside] - dark) @ (_METRIC @ d)) / (d @ _METRIC @ d)
    dk = 1.0 - np.clip(t, -0.5, 1.5)  # observed darkness: 0 = the colour, 1 = its dark shade
    fits = {}
    for tex in TEXTURES[1:]:
        p = ndi.gaussian_filter(_texture_darkness(tex, shape, (h, w), box), 0.5)[inside]
        if p.std() < 1e-6 or dk.std() < 1e-6:
            fits[tex] = 0.0
        else:
            fits[tex] = float(np.corrcoef(dk, p)[0, 1])
    mean = float(dk.mean())
    best = max(fits, key=fits.get)
    info = {"texture_fits": fits, "darkness_mean": mean, "texture_pixels": int(inside.sum())}
    if mean < SOLID_MAX_DARKNESS or (mean < 2 * SOLID_MAX_DARKNESS and fits[best] < 0.4):
        return "solid", info
    if fits[best] < TEXTURE_MIN_CORR:
        return None, info
    return best, info


def _shape_confidence(iou: float, shape: str, box) -> float:
    """How well the blob fits ``shape``, in [0, 1], 0.5 at the acceptance limit.

    Two tests, the weaker decides: the soft IoU against the shape's floor ``SHAPE_MIN_IOU``
    (piecewise linear, floor → 0.5, 1 → 1), and the outline error in pixels (see
    ``_boundary_error``) against ``SHAPE_MAX_OUTLINE_ERROR`` (0 → 1, limit → 0.5, twice → 0) —
    small blurred objects lose IoU at their edges, large irregular blobs lose it everywhere.
    """
    thr = SHAPE_MIN_IOU[shape]
    by_iou = 0.5 * iou / thr if iou < thr else 0.5 + 0.5 * (iou - thr) / (1.0 - thr)
    by_outline = max(0.0, 1.0 - 0.5 * _boundary_error(iou, shape, box) / SHAPE_MAX_OUTLINE_ERROR)
    return min(by_iou, by_outline)


def _analyse(img, bg, comp_crop, allowed, offset, hw) -> tuple[Detection, np.ndarray | None]:
    """One blob (boolean mask in a crop) → (Detection, its coverage map α or None)."""
    H, W = hw
    oy, ox = offset
    ys, xs = np.nonzero(comp_crop)
    bbox = (ox + xs.min(), oy + ys.min(), ox + xs.max() + 1, oy + ys.max() + 1)
    side = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    if side < MIN_SIDE_FRAC * min(H, W) or comp_crop.sum() < 6:
        return _unknown(bbox, hw, 0.0, "tiny"), None
    k, cdist, ct = _color_of(img, comp_crop)
    alpha, interior = _alpha(img, bg, comp_crop, allowed, k)
    if alpha.sum() < 4:
        return _unknown(bbox, hw, 0.0, "empty"), None
    fits = {s: _fit_shape(alpha, s) for s in SHAPES}
    ious = {s: f[0] for s, f in fits.items()}
    confs = {s: _shape_confidence(f[0], s, f[1]) for s, f in fits.items()}
    shape = max(confs, key=confs.get)
    _, box, tmpl, tblur = fits[shape]
    misfit = _local_misfit(alpha, tblur)
    color_conf = float(np.clip(1.0 - 0.5 * cdist / COLOR_MAX_DIST, 0.0, 1.0))
    if ct < COLOR_MIN_T:  # the brighter pixels never reach the palette colour (only its dark shade)
        color_conf = min(color_conf, 0.25)
    misfit_conf = max(0.0, 1.0 - 0.5 * misfit / SHAPE_MAX_MISFIT)
    conf = min(confs[shape], misfit_conf, color_conf)
    bx0, by0, bw, bh = box
    fbbox = (max(0, math.floor(ox + bx0)), max(0, math.floor(oy + by0)),
             min(W, math.ceil(ox + bx0 + bw)), min(H, math.ceil(oy + by0 + bh)))
    rel_side = math.sqrt(bw * bh) / min(H, W)
    fit = {"shape_iou": ious, "outline_error": {s: _boundary_error(f[0], s, f[1]) for s, f in fits.items()},
           "misfit": misfit, "shape_guess": shape, "color_dist": cdist, "color_t": ct, "color_guess": _NAMES[k],
           "box": (ox + bx0, oy + by0, bw, bh), "side": rel_side}
    if min(confs[shape], misfit_conf) < 0.5:
        return _unknown(bbox, hw, conf, "no shape fits", **fit), alpha
    if color_conf < 0.5:
        return _unknown(bbox, hw, conf, "no palette colour", **fit), alpha
    if rel_side < MIN_SIDE_FRAC:
        return _unknown(bbox, hw, conf, "tiny", **fit), alpha
    texture, tinfo = _texture_of(img, k, shape, box, tmpl, interior)
    fit.update(tinfo)
    size = "small" if rel_side < SIZE_THRESHOLD else "large"
    det = Detection(shape, _NAMES[k], texture, size, tuple(int(v) for v in fbbox), float((ox + bx0 + bw / 2) / W),
                    float((oy + by0 + bh / 2) / H), float(conf), fit)
    return det, alpha


def _split_candidates(img, comp, alpha) -> list[list[np.ndarray]]:
    """Ways to split a blob into 2–3 parts: by palette colour (touching objects of different
    colours), by thresholding its coverage α higher, and at necks of its distance transform
    (same-colour objects that touch)."""
    out = []
    area = comp.sum()

    def from_labels(lab2, n, min_seed):
        if n < 2:
            return None
        sizes = ndi.sum(np.ones_like(lab2), lab2, range(1, n + 1))
        keep = [i + 1 for i in np.argsort(-sizes)[:3] if sizes[i] >= min_seed]
        if len(keep) < 2:
            return None
        seeds = np.zeros(comp.shape, int)
        for j, i in enumerate(keep):
            seeds[lab2 == i] = j + 1
        parts = _grow(seeds, comp)
        return parts if min(p.sum() for p in parts) >= max(8, 0.04 * area) else None

    dist, _ = _segment_fit(img[comp])
    lab = np.argmin(dist, axis=1)
    counts = np.bincount(lab, minlength=len(_NAMES))
    big = [c for c in np.argsort(-counts)[:3] if counts[c] >= max(12, 0.05 * area)]
    if len(big) >= 2:
        full = np.full(comp.shape, -1)
        full[comp] = lab
        seeds = np.zeros(comp.shape, int)
        for i, c in enumerate(big):
            cl, cn = ndi.label(ndi.binary_erosion(full == c))
            if cn:
                seeds[cl == 1 + int(np.argmax(ndi.sum(cl > 0, cl, range(1, cn + 1))))] = i + 1
        if len(np.unique(seeds[seeds > 0])) >= 2:
            out.append(_grow(seeds, comp))
    masks = [comp]
    if alpha is not None:
        for level in (0.75, 0.9):
            parts = from_labels(*ndi.label(alpha >= level), max(8, 0.04 * area))
            if parts:
                out.append(parts)
                break
        masks.insert(0, alpha >= 0.5)
    for m in masks:
        edt = ndi.distance_transform_edt(m)
        for t in np.arange(1.5, edt.max(), 0.5):
            parts = from_labels(*ndi.label(edt > t), 3)
            if parts:
                out.append(parts)
                break
    return out


def _grow(seeds: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Assign every mask pixel to its nearest seed."""
    _, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    owner = seeds[iy, ix]
    return [(owner == i) & mask for i in range(1, seeds.max() + 1) if ((owner == i) & mask).any()]


def detect(image) -> list[Detection]:
    """Objects in ``image`` (PIL image or uint8 array [H, W, 3], any size), largest first.

    Every blob that is not a speck comes back; those that are not a recognisable object of the
    world (tiny, no shape template fits, no palette colour) have every attribute None and a
    confidence below ``FOUND_CONFIDENCE``.
    """
    img = _as_float(image)
    H0, W0 = img.shape[:2]
    if min(H0, W0) < 8:
        return []
    if min(H0, W0) > MAX_WORK_SIDE:  # area-average down: keeps the anti-aliasing model of the edges
        f = WORK_SIDE / min(H0, W0)
        small = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        img = np.asarray(small.resize((max(8, round(W0 * f)), max(8, round(H0 * f))), Image.BOX), np.float64)
    H, W = img.shape[:2]
    bg, sigma = _background(img)
    if sigma > 1.5:  # noisy: find the blobs on a lightly blurred copy
        smooth = ndi.gaussian_filter(img, (0.8, 0.8, 0))
        sig_s = sigma * 0.35
    else:
        smooth, sig_s = img, sigma
    dist = np.linalg.norm(smooth - bg, axis=-1)
    support = dist > max(22.0, 5.0 * sig_s)
    lab, _ = ndi.label(support, structure=np.ones((3, 3), bool))
    min_area = max(6, MIN_AREA_FRAC * H * W)
    dets = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        pad = 3
        y0, y1 = max(0, sl[0].start - pad), min(H, sl[0].stop + pad)
        x0, x1 = max(0, sl[1].start - pad), min(W, sl[1].stop + pad)
        comp = lab[y0:y1, x0:x1] == i
        if comp.sum() < min_area:
            continue
        others = (lab[y0:y1, x0:x1] > 0) & ~comp
        allowed = ndi.binary_dilation(comp, iterations=2) & ~ndi.binary_dilation(others, iterations=1)
        crop = img[y0:y1, x0:x1]
        det, alpha = _analyse(crop, bg, comp, allowed, (y0, x0), (H, W))
        if det.shape is None or det.fit["shape_iou"][det.shape] < SPLIT_BELOW_IOU:
            best = None
            for parts in _split_candidates(crop, comp, alpha):
                sub = []
                for part in parts:
                    if part.sum() < min_area:
                        continue
                    allowed_p = (ndi.binary_dilation(part, iterations=2) & allowed
                                 & ~ndi.binary_dilation(comp & ~part, iterations=1)) | part
                    sub.append(_analyse(crop, bg, part, allowed_p, (y0, x0), (H, W))[0])
                if len(sub) >= 2 and all(d.known for d in sub):
                    q = min(d.confidence for d in sub)
                    if q > det.confidence + 0.02 and (best is None or q > best[0]):
                        best = (q, sub)
            if best is not None:
                dets.extend(best[1])
                continue
        dets.append(det)
    if (H, W) != (H0, W0):  # boxes back to the caller's pixels (centres are fractions already)
        sx, sy = W0 / W, H0 / H
        for d in dets:
            x0, y0, x1, y1 = d.bbox
            d.bbox = (math.floor(x0 * sx), math.floor(y0 * sy),
                      min(W0, math.ceil(x1 * sx)), min(H0, math.ceil(y1 * sy)))
    dets.sort(key=lambda d: -(d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]))
    return dets


# ------------------------------------------------------------------------------------------
# Scoring (T2I-CompBench definitions with exact facts)
# ------------------------------------------------------------------------------------------


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def position_score(a: Detection, b: Detection, relation: str, iou_threshold: float = 0.1) -> float:
    """T2I-CompBench's ``determine_position`` for "a <relation> b", on box centres (y downwards):
    the displacement from a to b must point the named way and dominate the other axis; then 1 if
    the boxes' IoU < 0.1, else 0.1 / IoU.

    Displacements are measured in fractions of the image width / height — the frame of
    ``scene.relation_holds`` — which is T2I-CompBench's pixel frame for square images (its
    generated images are square); the IoU test is the same in either frame.
    """
    dx, dy = b.x - a.x, b.y - a.y
    ok = {"left of": dx > 0 and abs(dx) > abs(dy), "right of": dx < 0 and abs(dx) > abs(dy),
          "above": dy > 0 and abs(dy) > abs(dx), "below": dy < 0 and abs(dy) > abs(dx)}
    if relation not in ok:
        raise ValueError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")
    if not ok[relation]:
        return 0.0
    iou = _iou(a.bbox, b.bbox)
    return 1.0 if iou < iou_threshold else iou_threshold / iou


def _phrase(o: dict) -> str:
    words = [o.get("size"), o.get("color"), o.get("texture"), o.get("shape") or "object", o.get("region")]
    return "a " + " ".join(w for w in words if w)


def _max_matching(wants: list[dict], dets: list[Detection]) -> list[int | None]:
    """One-to-one assignment of spec objects to matching detections with the most objects found."""
    cand = [[j for j, d in enumerate(dets) if d.matches(o)] for o in wants]
    best: list[int | None] = [None] * len(wants)
    best_n = -1
    for choice in itertools.product(*[c + [None] for c in cand]):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)):
            continue
        if len(used) > best_n:
            best, best_n = list(choice), len(used)
            if best_n == len(wants):
                break
    return best


def _spatial(wants: list[dict], dets: list[Detection], relation: str) -> tuple[float, dict]:
    """UniDet-style spatial score of "wants[0] <relation> wants[1]" over the best pair of distinct detections.

    raw = 0.25·c1 + 0.25·c2 + 0.5·pos with c1, c2 ∈ {0, 1} (object found) and pos from
    ``position_score``. T2I-CompBench zeroes raw < 0.5; its c1, c2 are detector confidences
    below 1, so "both found, relation wrong" (0.25·(c1 + c2)) always lands below the cut-off.
    With exact facts that case is exactly 0.5, so the cut-off is applied as raw ≤ 0.5 → 0.
    """
    first = [j for j, d in enumerate(dets) if d.matches(wants[0])] + [None]
    second = [j for j, d in enumerate(dets) if d.matches(wants[1])] + [None]
    best = None
    for i in first:
        for j in second:
            if i is not None and i == j:
                continue
            pos = position_score(dets[i], dets[j], relation) if i is not None and j is not None else 0.0
            c1, c2 = int(i is not None), int(j is not None)
            raw = 0.25 * c1 + 0.25 * c2 + 0.5 * pos
            key = (raw, c1 + c2)
            if best is None or key > best[0]:
                best = (key, {"c1": c1, "c2": c2, "pos": pos, "raw": raw, "pair": [i, j]})
    info = best[1]
    return (info["raw"] if info["raw"] > 0.5 else 0.0), info


def score(image, spec: dict, detections: list[Detection] | None = None) -> dict:
    """Score one image against a prompt spec; ``detections`` (from ``detect``) skips detection.

    spec = {"prompt": str, "category": "single" | "color" | "shape" | "texture" | "spatial" | "complex",
            "objects": [{"shape", "color", "texture", "size"}, ...], "relation": str | None};
    an attribute that is None (or absent) is not constrained (an object may also constrain
    "region", one of ``scene.REGIONS``); for spatial the relation reads objects[0] <relation>
    objects[1]. Only known detections (confidence ≥ ``FOUND_CONFIDENCE``) can match. Per-image
    scores, T2I-CompBench's with 0/1 facts:

    - single / color / shape / texture (BLIP-VQA's product over noun phrases): 1 if every spec
      object is matched by a distinct detection (one-to-one assignment), else 0;
    - spatial (UniDet): 0.25·c1 + 0.25·c2 + 0.5·pos, zeroed at ≤ 0.5 (see ``_spatial``);
    - complex (3-in-1 without the CLIP action part): mean of the attribute score and, when a
      relation is given, the spatial score.

    Returns {"score": float in [0, 1], "found": [the matched detection as a dict, or None, per
    spec object (spatial: the pair scored)], "details": {"missing": [noun phrases not found],
    "attribute_score", ("spatial_score", "c1", "c2", "pos", "raw", "pair", "relation_failed"),
    "detections": [every detection as a dict]}}.
    """
    dets = detect(image) if detections is None else detections
    wants = list(spec.get("objects", []))
    category = spec.get("category", "single")
    relation = spec.get("relation")
    if category not in ("single", "color", "shape", "texture", "spatial", "complex"):
        raise ValueError(f"unknown category {category!r}")
    details: dict = {"detections": [d.as_dict() for d in dets]}
    assign = _max_matching(wants, dets) if wants else []
    attr = float(all(a is not None for a in assign)) if wants else 0.0
    details["attribute_score"] = attr
    found = [dets[j].as_dict() if j is not None else None for j in assign]
    missing = [_phrase(o) for o, j in zip(wants, assign) if j is None]
    if category == "spatial" or (category == "complex" and relation):
        if len(wants) < 2 or relation is None:
            raise ValueError("a spatial spec needs two objects and a relation")
        sp, info = _spatial(wants[:2], dets, relation)
        details.update(spatial_score=sp, **info)
        if info["c1"] and info["c2"] and info["pos"] < 1.0:
            details["relation_failed"] = relation
        if category == "spatial":
            s = sp
            found = [dets[k].as_dict() if k is not None else None for k in info["pair"]]
            missing = [_phrase(o) for o, k in zip(wants[:2], info["pair"]) if k is None]
        else:
            s = (attr + sp) / 2
    else:
        s = attr
    details["missing"] = missing
    return {"score": float(s), "found": found, "details": details}


def spec_from_scene(scene: Scene, category: str | None = None) -> dict:
    """The spec a scene satisfies in full (every attribute constrained); handy for tests."""
    objs = [{"shape": o.shape, "color": o.color, "texture": o.texture, "size": o.size} for o in scene.objects]
    if category is None:
        category = "spatial" if scene.relation else ("single" if len(objs) == 1 else "complex")
    return {"prompt": "", "category": category, "objects": objs, "relation": scene.relation}


# ------------------------------------------------------------------------------------------
# Validation against rendered scenes
# ------------------------------------------------------------------------------------------

VALIDATION_SIZES = (64, 128, (64, 96), (128, 96), 96)


def corrupt(image: Image.Image, rng: random.Random, jpeg: int | None = None, blur: float | None = None,
            scale: float | None = None) -> Image.Image:
    """Rescale (any PIL filter), blur (Gaussian radius), JPEG round trip — in that order; None = skip."""
    im = image
    if scale is not None and scale != 1.0:
        w, h = im.size
        resample = rng.choice((Image.BILINEAR, Image.BICUBIC, Image.LANCZOS))
        im = im.resize((max(8, round(w * scale)), max(8, round(h * scale))), resample)
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    if jpeg is not None:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(jpeg))
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return im


def validation_case(index: int, seed: int = 0, hard: bool = False) -> tuple[Scene, Image.Image, dict]:
    """Scene ``index`` of the validation stream with its size / noise / corruption (deterministic)."""
    rng = random.Random(f"oracle-validation-{seed}-{index}")
    scene = sample_scene(rng)
    size = VALIDATION_SIZES[index % len(VALIDATION_SIZES)]
    if hard:
        meta = {"size": size, "noise": 8.0, "jpeg": 75, "blur": 0.7, "scale": rng.choice((0.9, 1.1))}
    else:
        meta = {"size": size, "noise": rng.choice((scene.noise, 0.0, round(rng.uniform(0.0, 8.0), 2), 8.0)),
                "jpeg": rng.choice((None, rng.randint(75, 95))),
                "blur": rng.choice((None, rng.uniform(0.2, 0.7))),
                "scale": rng.choice((None, rng.uniform(0.9, 1.1)))}
    scene = replace(scene, noise=meta["noise"])
    image = render(scene, size, seed=index)
    image = corrupt(image, rng, meta["jpeg"], meta["blur"], meta["scale"])
    return scene, image, meta


def match_scene(scene: Scene, dets: list[Detection]) -> list[Detection | None]:
    """Assign each scene object the detection whose centre is nearest (within half its side)."""
    out = []
    used = set()
    for o in scene.objects:
        best, bd = None, None
        for j, d in enumerate(dets):
            if j in used:
                continue
            dd = math.hypot(d.x - o.x, d.y - o.y)
            if bd is None or dd < bd:
                best, bd = j, dd
        if best is not None and bd < SIZES[o.size] / 2:
            used.add(best)
            out.append(dets[best])
        else:
            out.append(None)
    return out


VALIDATION_KEYS = ("shape", "color", "texture", "size", "region", "relation", "count", "self_score")


def validate(n_scenes: int = 2000, seed: int = 0, hard: bool = False, start: int = 0) -> dict:
    """Accuracy of ``detect`` / ``score`` on scenes ``start`` … ``start + n_scenes − 1`` of the validation stream.

    Per object (matched to the detection with the nearest centre): shape, color, texture, size,
    region (``scene.region_of`` of the detected centre). Per 2-object scene: relation
    (``position_score`` of the two detections is 1). Per scene: count (as many known
    detections as objects) and self_score (``score`` of the scene's full spec is 1).
    Returns {"accuracy": {key: fraction}, "hits", "totals", "by_size": {size: {key: fraction}},
    "by_size_counts": {size: (hits, totals)},
    "n_scenes", "wall_s", "conditions": [meta per scene], "failures": [{index, meta, scene, errors, score}]}.
    """
    hits = {k: 0 for k in VALIDATION_KEYS}
    totals = {k: 0 for k in VALIDATION_KEYS}
    by_size: dict = {}
    failures, conditions = [], []
    t0 = time.perf_counter()
    for i in range(start, start + n_scenes):
        scene, image, meta = validation_case(i, seed, hard)
        conditions.append(meta)
        dets = detect(image)
        got = match_scene(scene, dets)
        size_hits, size_totals = by_size.setdefault(
            str(meta["size"]), ({k: 0 for k in VALIDATION_KEYS}, {k: 0 for k in VALIDATION_KEYS}))

        def tally(key, ok, size_hits=size_hits, size_totals=size_totals):
            hits[key] += ok
            totals[key] += 1
            size_hits[key] += ok
            size_totals[key] += 1

        bad = []
        for o, d in zip(scene.objects, got):
            for k in ("shape", "color", "texture", "size"):
                ok = d is not None and getattr(d, k) == getattr(o, k)
                tally(k, ok)
                if not ok:
                    bad.append((k, getattr(o, k), getattr(d, k) if d else None))
            ok = d is not None and d.region == region_of(o)
            tally("region", ok)
            if not ok:
                bad.append(("region", (round(o.x, 3), round(o.y, 3)), (round(d.x, 3), round(d.y, 3)) if d else None))
        if scene.relation:
            a, b = got
            ok = a is not None and b is not None and position_score(a, b, scene.relation) == 1.0
            tally("relation", ok)
            if not ok:
                bad.append(("relation", scene.relation, None))
        n_known = sum(d.known for d in dets)
        tally("count", n_known == len(scene.objects))
        if n_known != len(scene.objects):
            bad.append(("count", len(scene.objects), n_known))
        s = score(image, spec_from_scene(scene), detections=dets)["score"]
        tally("self_score", s == 1.0)
        if bad or s != 1.0:
            failures.append({"index": i, "meta": meta, "scene": scene.to_dict(), "errors": bad, "score": s})
    wall = time.perf_counter() - t0
    acc = {k: hits[k] / totals[k] for k in VALIDATION_KEYS if totals[k]}
    sizes = {k: {key: h[key] / t[key] for key in VALIDATION_KEYS if t[key]} for k, (h, t) in by_size.items()}
    return {"accuracy": acc, "hits": hits, "totals": totals, "by_size": sizes, "by_size_counts": by_size,
            "n_scenes": n_scenes,
            "wall_s": wall, "conditions": conditions, "failures": failures}
