"""FID on torch-fidelity: between two image sets, or a set and cached reference statistics; the core of
``pixart-bench fid folder``, and the COCO-30K and world protocols built on it.

The API::

    compute_fid(gen, ref, *, extractor="inception-v3-compat", weights=None, resize="center-crop-256",
                cache_dir=None, kid=False, device="cpu", batch_size=64, save_stats=None) -> dict
    reference_statistics(ref, *, extractor=..., weights=None, resize=..., cache_dir=None, kid=False,
                         device="cpu", batch_size=64) -> (Statistics, Path | None)

``gen``/``ref``: a folder, a list of image files or of in-memory images; ``ref`` may also be an ``.npz``
of statistics written here. ``compute_fid`` returns the ``fid.json`` dict: {"fid", "n_gen", "n_ref",
["kid_mean", "kid_std"], "warnings", "reference": {"id", "source", "n", ...}, "generated", "settings",
"extractor", "versions", "seconds"}; the commands add its ``protocol`` record (``labels``).

Modules:

- ``images``: image sets (folder, file list, in memory), their checks (empty, < 2 images, unreadable
  files, modes with transparency, sizes), the resize policies (``center-crop-256``, ``none``) and
  the uint8 [3, H, W] datasets torch-fidelity reads;
- ``extractors``: ``inception-v3-compat``, ``clip-vit-b-32`` (CLIP-FID) and ``world-cnn`` through
  torch-fidelity's registry, their weights found offline (``resolve_weights``), ``Extractor``;
- ``statistics``: features → mu/sigma/n, the ``.npz`` format with provenance, the content-keyed
  cache, ``reference_statistics``;
- ``metric``: ``compute_fid`` (FID, and KID with ``kid=True``, or where it can with ``kid=None``);
- ``labels``: the ``protocol`` record of ``fid.json`` (what a number may be called: "coco-30k zero-shot"
  only for ``fid coco`` with 30,000 images and the standard Inception) and the small-N warning;
- ``coco``: the COCO captions drawn and the real images they are compared with; ``protocol``: the
  ``fid coco`` and ``fid world`` protocols end to end; ``world``: world-FID against renderings.
"""

from bench.fid.extractors import EXTRACTORS, Extractor, resolve_weights
from bench.fid.images import RESIZE_POLICIES, center_crop_256, image_set
from bench.fid.metric import compute_fid
from bench.fid.statistics import Statistics, load_statistics, reference_statistics, save_statistics

__all__ = ["EXTRACTORS", "RESIZE_POLICIES", "Extractor", "Statistics", "center_crop_256", "compute_fid", "image_set",
           "load_statistics", "reference_statistics", "resolve_weights", "save_statistics"]
