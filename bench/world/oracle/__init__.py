"""Pixel-only oracle for the "shapes" world: ``detect(image)`` lists objects, ``score(image, spec)`` grades a prompt.

The oracle never sees the scene. It reads the pixels with the drawing conventions of
``bench.world.render``, so the same code grades renders and images from a generative model;
blobs that are not a recognisable object of the world come back as unknown (confidence below
``FOUND_CONFIDENCE``): the oracle says "not found" rather than guess.

- ``fit``: the tunables, image helpers and per-blob fits (colour, coverage α, shape template,
  texture);
- ``detection``: ``Detection``, blob analysis, splitting touching blobs, ``detect``;
- ``scoring``: ``score`` with T2I-CompBench's per-image definitions on exact 0/1 facts,
  ``position_score``, ``spec_from_scene``;
- ``validation``: ``corrupt`` / ``validation_case`` / ``validate``, the oracle measured on
  rendered scenes under noise, JPEG, blur and rescaling (``benchmarks/oracle_validation.py``).
"""

from bench.world.oracle.detection import Detection, detect
from bench.world.oracle.fit import FOUND_CONFIDENCE, SIZE_THRESHOLD
from bench.world.oracle.scoring import check_spec, position_score, score, spec_from_scene
from bench.world.oracle.validation import (
    VALIDATION_KEYS,
    VALIDATION_SIZES,
    corrupt,
    match_scene,
    validate,
    validation_case,
)

__all__ = [
    "FOUND_CONFIDENCE",
    "SIZE_THRESHOLD",
    "VALIDATION_KEYS",
    "VALIDATION_SIZES",
    "Detection",
    "check_spec",
    "corrupt",
    "detect",
    "match_scene",
    "position_score",
    "score",
    "spec_from_scene",
    "validate",
    "validation_case",
]
