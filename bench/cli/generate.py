"""``pixart-bench generate``: the generation store for any model (being built)."""
