"""What each T2I-CompBench category and shapes-world suite needs, as the evaluator options that provide it.

A table of names, free of imports, so that ``metrics`` (the evaluators), ``preflight`` (their checks
before any work), ``run`` and ``world`` read one source without importing each other.
"""

from __future__ import annotations

# what each category needs, as the CLI options that provide it
NEEDS = {"color": ("blip",), "shape": ("blip",), "texture": ("blip",), "spatial": ("detector_2d",),
         "non_spatial": ("clip",), "complex": ("blip", "detector_2d", "clip"), "3d_spatial": ("detector_3d", "depth"),
         "numeracy": ("detector_3d",)}
OPTION = {"blip": "--blip PATH (BLIP VQA: Salesforce/blip-vqa-capfilt-large)",
          "clip": "--clip PATH (CLIP ViT-B/32: openai/clip-vit-base-patch32, or OpenAI's ViT-B-32.pt)",
          "detector_2d": "--detections-2d FILE (the official rule: UniDet RS200's detections) or --detector "
                         "owlv2:PATH | grounding-dino:PATH",
          "detector_3d": "--detections-3d FILE (the official rules: UniDet R50's detections) or --detector "
                         "owlv2:PATH | grounding-dino:PATH",
          "depth": "--depth PATH (DPT-Hybrid MiDaS: Intel/dpt-hybrid-midas) or --depth-dir DIR"}

# the learned metric for each world suite, and the evaluator it needs
LEARNED = {"single": "blip", "color": "blip", "shape": "blip", "texture": "blip", "complex": "blip",
           "spatial": "detector_2d"}
