"""Ablation runners: the paper's adaLN-single vs per-block adaLN comparison measured, not quoted.

``params`` counts parameters per module on the meta device (``pixart-bench params``). Runners for
memory and speed per training step and per sample, written as result files that ``reports`` reads,
go beside it.
"""
