"""Parameter counts on the meta device against the published / derived figures."""

from bench.ablate.params import dit_breakdown, parameter_table, pixart_breakdown
from pixart.model import PixArtConfig


def test_xl2_counts():
    rows = {r["short"]: r for r in parameter_table()}
    assert rows["single"]["total"] == 610_856_096
    assert rows["1024-MS"]["total"] == 611_349_152
    assert rows["DiT-XL/2"]["total"] == 674_834_720
    for r in rows.values():
        assert sum(r["breakdown"].values()) == r["total"]
    # per-block adaLN: the global t_block and the tables go, every block gets a Linear(D, 6D)
    d, depth = 1152, 28
    expected = 610_856_096 - (d * 6 * d + 6 * d) - depth * 6 * d + depth * (d * 6 * d + 6 * d)
    assert rows["per-block"]["total"] == expected == 825_840_032
    assert rows["per-block"]["breakdown"]["per-block adaLN MLPs"] == rows["DiT-XL/2"]["breakdown"]["per-block adaLN MLPs"]


def test_breakdown_groups_cover_the_tiny_model():
    config = PixArtConfig.preset("tiny-MS")
    b = pixart_breakdown(config)
    assert b["per-block embeddings E(i)"] == config.depth * 6 * config.hidden_size
    assert b["micro-conditions (size, aspect ratio)"] > 0


def test_dit_embedders_counted_once():
    small = dit_breakdown(depth=2, hidden=64, heads=2, input_size=8, num_classes=10)
    assert small["class embedding"] == 11 * 64  # 10 classes + the null class, once, not per block
    assert small["time embedder"] == 256 * 64 + 64 + 64 * 64 + 64
