"""The generation store for any model: prompts → images on disk, with a manifest that says how each
image was made, so that every benchmark scores the same files and an interrupted run resumes.

This module is for one function that fills a folder from a *source* — our checkpoints (through
``pixart.pipeline``), any diffusers text-to-image pipeline, or a folder of images made elsewhere
(matched to prompts by file name) — and extends ``pixart.sample_run``'s manifest (settings, seeds,
checkpoint hash, package versions, one entry per image) with the source's description. Today
``pixart.sample_run.run_sampling`` is the store for PixArt pipelines; the benchmark commands
(``compbench``, ``fid``) will call this module.
"""
