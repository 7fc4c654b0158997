"""What the oracle reads from one blob's pixels: tunables, image helpers and the fits.

Everything follows the drawing conventions of ``bench.world.render`` (square object boxes,
``shape_mask`` templates, ``texture_pattern`` with its phase fixed to the box, ``dark_shade``):

- ``as_float`` / ``border_background``: any image as float RGB; the background colour and noise;
- ``color_of``: the palette colour whose segment [dark shade, colour] lies nearest the blob's core;
- ``coverage_alpha``: per-pixel coverage α of background vs the object's shades, in a
  luma-weighted metric (JPEG smears chroma);
- ``fit_shape`` / ``shape_confidence`` / ``local_misfit``: the shape template with the best soft
  IoU against α, and how far the blob may stray from it;
- ``texture_of``: solid, or the texture template that correlates best with the darkness map.

The tunables are module constants read at call time (``benchmarks/oracle_failures.py`` scales
some of them); ``detection.detect`` puts the fits together.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from bench.world.render import SUPERSAMPLE, dark_shade, shape_mask, shape_polygon, texture_pattern
from bench.world.scene import COLORS, SIZES, TEXTURES

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

PALETTE_NAMES = list(COLORS)
_BRIGHT = np.array([COLORS[c] for c in PALETTE_NAMES], np.float64)  # [8, 3]
_DARK = np.array([dark_shade(c) for c in PALETTE_NAMES], np.float64)


# ------------------------------------------------------------------------------------------
# Image helpers
# ------------------------------------------------------------------------------------------


def as_float(image) -> np.ndarray:
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


def border_background(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Median colour of the border ring and the noise std (MAD) there."""
    h, w = img.shape[:2]
    r = max(1, min(h, w) // 40)
    ring = np.concatenate([img[:r].reshape(-1, 3), img[-r:].reshape(-1, 3),
                           img[r:-r, :r].reshape(-1, 3), img[r:-r, -r:].reshape(-1, 3)])
    bg = np.median(ring, axis=0)
    dev = np.abs(ring - bg)
    sigma = float(1.4826 * np.median(dev, axis=0).mean())
    return bg, sigma


def segment_fit(pix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def boundary_error(iou: float, shape: str, box) -> float:
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
# Fits
# ------------------------------------------------------------------------------------------


def color_of(img: np.ndarray, mask: np.ndarray) -> tuple[int, float, float]:
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
    dist, t = segment_fit(img[core])
    med = np.median(dist, axis=0)
    k = int(np.argmin(med))
    return k, float(med[k]), float(np.percentile(t[:, k], 95))


def coverage_alpha(img, bg, comp, allowed, k) -> tuple[np.ndarray, np.ndarray]:
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


def fit_shape(alpha: np.ndarray, shape: str) -> tuple[float, tuple, np.ndarray, np.ndarray]:
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


def local_misfit(alpha: np.ndarray, tb: np.ndarray) -> float:
    """Largest coverage surplus or deficit against the template in any 3×3 window, in pixels:
    blur, noise and JPEG scatter small errors along the outline; a bump, a dent or a wrong
    shape leaves a concentrated one."""
    return float(np.abs(ndi.uniform_filter(alpha - tb, MISFIT_WINDOW, mode="constant")).max() * MISFIT_WINDOW**2)


def misfit_confidence(misfit: float) -> float:
    """``local_misfit`` as a confidence: 0 pixels → 1, ``SHAPE_MAX_MISFIT`` → 0.5, twice that → 0."""
    return max(0.0, 1.0 - 0.5 * misfit / SHAPE_MAX_MISFIT)


def texture_of(img, k, shape, box, tmpl, interior) -> tuple[str | None, dict]:
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


def shape_confidence(iou: float, shape: str, box) -> float:
    """How well the blob fits ``shape``, in [0, 1], 0.5 at the acceptance limit.

    Two tests, the weaker decides: the soft IoU against the shape's floor ``SHAPE_MIN_IOU``
    (piecewise linear, floor → 0.5, 1 → 1), and the outline error in pixels (see
    ``boundary_error``) against ``SHAPE_MAX_OUTLINE_ERROR`` (0 → 1, limit → 0.5, twice → 0) —
    small blurred objects lose IoU at their edges, large irregular blobs lose it everywhere.
    """
    thr = SHAPE_MIN_IOU[shape]
    by_iou = 0.5 * iou / thr if iou < thr else 0.5 + 0.5 * (iou - thr) / (1.0 - thr)
    by_outline = max(0.0, 1.0 - 0.5 * boundary_error(iou, shape, box) / SHAPE_MAX_OUTLINE_ERROR)
    return min(by_iou, by_outline)
