"""T2I-CompBench for any model, with the official scoring rules (docs/compbench.md).

- ``prompts``: the validation lists (package data, MIT, checked by SHA-256); ``parse``: spaCy's
  analyses of prompts (the shipped ones precomputed); ``samples``: the official folder layout,
  ``samples/<prompt>_<NNNNNN>.png``, the ``Scorer`` interface and the official ``vqa_result.json``.
- Metrics: ``blip_vqa`` (B-VQA: color, shape, texture), ``spatial`` / ``spatial_rules`` (UniDet's 2D
  rules), ``clipscore`` (non-spatial), ``three_in_one`` (complex), ``spatial3d`` / ``depth`` and
  ``numeracy`` (T2I-CompBench++); detectors: ``detectors`` (the detections-file reader, the official
  frame) and ``open_vocab`` (OWLv2, Grounding DINO); ``evaluators``: loading evaluator models offline.
- ``metrics``: which metric scores which category, with which evaluators (``Evaluators.preflight``
  resolves and checks them); ``preflight``: what a compbench or world run checks before it generates;
  ``protocol``: what a run verified of the official protocol; ``audit``: a run's scores against the
  official scripts' outputs; ``run``: generate or find
  each category's images, score them, write the results; ``results``: scores, CIs over prompts, the
  result files and the table; ``published``: the published PixArt-α rows; ``world``: the shapes
  world's suites, scored by the oracle with the learned metrics beside it.
"""
