"""T2I-CompBench for any model: the official per-category metrics on images in the generation store.

This package is for the prompt lists (package data, with licence and hash), the official folder layout
(``samples/{prompt}_{index:06d}.png``), and the metrics with the official rules — disentangled
BLIP-VQA for colour / shape / texture, UniDet 2-D spatial, CLIPScore for non-spatial, 3-in-1 for
complex — each with parity tests against the official scoring on the same images. The world's
pixel oracle (``bench.world.oracle``) already scores the same per-image definitions with exact facts.
"""
