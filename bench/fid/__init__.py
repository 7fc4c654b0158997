"""FID protocols on torch-fidelity: COCO-30K zero-shot FID (the PixArt-α table's protocol) and FID
between any two image folders.

This package is for the reference set's preparation (COCO 2014 validation captions and images, resized
as the protocol says), the generated set through ``bench.generate``, and the metric from
``torch_fidelity.calculate_metrics`` with the Inception weights passed as a local file for offline
use. ``bench.world.fid`` is the same machinery on the shapes world, with its own feature extractor.
"""
