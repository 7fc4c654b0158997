"""``pixart-bench compbench``: T2I-CompBench for any model (being built)."""
