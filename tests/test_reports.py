"""reports: Markdown tables, the image grid and loss-curve SVG, and the demo report from its files."""

import pytest
from PIL import Image

from reports.figures import CURVE_COLORS, image_grid, loss_curves_svg
from reports.tables import markdown_table


def test_markdown_table():
    lines = markdown_table(["model", "score"], [["a", "0.5"], ["b", 1]])
    assert lines == ["| model | score |", "|---|---|", "| a | 0.5 |", "| b | 1 |"]
    with pytest.raises(ValueError, match="2 columns"):
        markdown_table(["model", "score"], [["a"]])


def test_loss_curves_svg_draws_every_stage():
    curves = {f"stage{i}": [[s, 1.0 / (s + i + 1)] for s in range(5)] for i in range(8)}
    svg = loss_curves_svg(curves)
    assert svg.count("<polyline") == 8 and all(f">{name}</text>" in svg for name in curves)
    assert svg.count(f'stroke="{CURVE_COLORS[0]}"') == 2  # colours repeat after six stages


def test_image_grid(tmp_path):
    red, blue = Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    path = image_grid([("a red square", [red, red]), ("a blue square", [blue])], tmp_path / "g.png", cell=20)
    grid = Image.open(path).convert("RGB")
    assert grid.size == (260 + 2 * 20, 2 * 20)
    assert grid.getpixel((260 + 30, 10)) == (255, 0, 0) and grid.getpixel((270, 30)) == (0, 0, 255)
    assert grid.getpixel((260 + 30, 30)) == (255, 255, 255)  # the second row has one image
