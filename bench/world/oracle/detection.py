"""Objects in an image: ``Detection``, per-blob analysis, splitting touching blobs, ``detect``.

``detect`` reads the pixels only:

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

Steps 2–5 are the fits of ``bench.world.oracle.fit``. Blobs that are tiny, fit no shape or carry
no palette colour come back as unknown (shape, colour, texture and size None, confidence <
``FOUND_CONFIDENCE``): on images from a generative model the oracle says "not found" rather
than guess. A blob that fits poorly is also tried as touching objects — split by palette colour,
by a higher coverage threshold, or at a neck of its distance transform — and kept split when
every part is a confident object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from bench.world.oracle.fit import (
    COLOR_MAX_DIST,
    COLOR_MIN_T,
    FOUND_CONFIDENCE,
    MAX_WORK_SIDE,
    MIN_AREA_FRAC,
    MIN_SIDE_FRAC,
    PALETTE_NAMES,
    SIZE_THRESHOLD,
    SPLIT_BELOW_IOU,
    WORK_SIDE,
    as_float,
    border_background,
    boundary_error,
    color_of,
    coverage_alpha,
    fit_shape,
    local_misfit,
    misfit_confidence,
    segment_fit,
    shape_confidence,
    texture_of,
)
from bench.world.scene import SHAPES, Obj, region_of

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


def _unknown(bbox, hw, confidence, why: str, **fit) -> Detection:
    h, w = hw
    x0, y0, x1, y1 = bbox
    return Detection(None, None, None, None, (int(x0), int(y0), int(x1), int(y1)), float((x0 + x1) / 2 / w),
                     float((y0 + y1) / 2 / h), float(min(confidence, 0.25)), {"unknown": why, **fit})


def _analyse(img, bg, comp_crop, allowed, offset, hw) -> tuple[Detection, np.ndarray | None]:
    """One blob (boolean mask in a crop) → (Detection, its coverage map α or None)."""
    H, W = hw
    oy, ox = offset
    ys, xs = np.nonzero(comp_crop)
    bbox = (ox + xs.min(), oy + ys.min(), ox + xs.max() + 1, oy + ys.max() + 1)
    side = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    if side < MIN_SIDE_FRAC * min(H, W) or comp_crop.sum() < 6:
        return _unknown(bbox, hw, 0.0, "tiny"), None
    k, cdist, ct = color_of(img, comp_crop)
    alpha, interior = coverage_alpha(img, bg, comp_crop, allowed, k)
    if alpha.sum() < 4:
        return _unknown(bbox, hw, 0.0, "empty"), None
    fits = {s: fit_shape(alpha, s) for s in SHAPES}
    ious = {s: f[0] for s, f in fits.items()}
    confs = {s: shape_confidence(f[0], s, f[1]) for s, f in fits.items()}
    shape = max(confs, key=confs.get)
    _, box, tmpl, tblur = fits[shape]
    misfit = local_misfit(alpha, tblur)
    color_conf = float(np.clip(1.0 - 0.5 * cdist / COLOR_MAX_DIST, 0.0, 1.0))
    if ct < COLOR_MIN_T:  # the brighter pixels never reach the palette colour (only its dark shade)
        color_conf = min(color_conf, 0.25)
    misfit_conf = misfit_confidence(misfit)
    conf = min(confs[shape], misfit_conf, color_conf)
    bx0, by0, bw, bh = box
    fbbox = (max(0, math.floor(ox + bx0)), max(0, math.floor(oy + by0)),
             min(W, math.ceil(ox + bx0 + bw)), min(H, math.ceil(oy + by0 + bh)))
    rel_side = math.sqrt(bw * bh) / min(H, W)
    fit = {"shape_iou": ious, "outline_error": {s: boundary_error(f[0], s, f[1]) for s, f in fits.items()},
           "misfit": misfit, "shape_guess": shape, "color_dist": cdist, "color_t": ct,
           "color_guess": PALETTE_NAMES[k],
           "box": (ox + bx0, oy + by0, bw, bh), "side": rel_side}
    if min(confs[shape], misfit_conf) < 0.5:
        return _unknown(bbox, hw, conf, "no shape fits", **fit), alpha
    if color_conf < 0.5:
        return _unknown(bbox, hw, conf, "no palette colour", **fit), alpha
    if rel_side < MIN_SIDE_FRAC:
        return _unknown(bbox, hw, conf, "tiny", **fit), alpha
    texture, tinfo = texture_of(img, k, shape, box, tmpl, interior)
    fit.update(tinfo)
    size = "small" if rel_side < SIZE_THRESHOLD else "large"
    det = Detection(shape, PALETTE_NAMES[k], texture, size, tuple(int(v) for v in fbbox),
                    float((ox + bx0 + bw / 2) / W), float((oy + by0 + bh / 2) / H), float(conf), fit)
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

    dist, _ = segment_fit(img[comp])
    lab = np.argmin(dist, axis=1)
    counts = np.bincount(lab, minlength=len(PALETTE_NAMES))
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
    img = as_float(image)
    H0, W0 = img.shape[:2]
    if min(H0, W0) < 8:
        return []
    if min(H0, W0) > MAX_WORK_SIDE:  # area-average down: keeps the anti-aliasing model of the edges
        f = WORK_SIDE / min(H0, W0)
        small = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        img = np.asarray(small.resize((max(8, round(W0 * f)), max(8, round(H0 * f))), Image.BOX), np.float64)
    H, W = img.shape[:2]
    bg, sigma = border_background(img)
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
