"""bench.compbench.published: the published rows carry the names their sources give them.

The T2I-CompBench++ table names PixArt-α's row "Pixart-α-ft" and does not say what "-ft" denotes, so the
current-code row is printed under that name (with a note), not as the released PixArt-α."""

from __future__ import annotations

from bench.compbench.published import CURRENT_NAME, PEERS, PIXART_ALPHA
from bench.compbench.results import table


def test_the_current_code_row_is_named_as_in_the_t2i_compbench_pp_table():
    assert CURRENT_NAME == "Pixart-α-ft"
    current = PIXART_ALPHA["current"]
    assert current["label"] == "Pixart-α-ft, published (T2I-CompBench++ table; current official code)"
    assert '"-ft"' in current["name_note"] and "not stated" in current["name_note"]
    rows = [r for r in PEERS["current"] if r["scores"] == current["scores"]]
    assert [r["model"] for r in rows] == ["Pixart-α-ft"]
    assert not any(r["model"] == "PixArt-α" for r in PEERS["current"])


def test_the_compbench_table_prints_the_sources_name():
    results = {"color": {"score": 0.5, "ci95": [0.4, 0.6], "metric": "B-VQA"}}
    text = table(results, "ours")
    published = [line for line in text.splitlines() if "published" in line]
    assert len(published) == 1 and published[0].startswith("| Pixart-α-ft, published (T2I-CompBench++ table")
    assert "0.6690" in published[0]
