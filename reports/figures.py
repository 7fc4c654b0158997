"""Figures from result files: an image grid (prompt → samples) and training-loss curves as SVG."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

CURVE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def image_grid(rows: list[tuple[str, list[Image.Image]]], path: Path, cell: int = 96, label_width: int = 260,
               marks: list[list[tuple[str, bool]]] | None = None) -> Path:
    """One row per prompt: its text (first 42 characters), then its images scaled to ``cell`` pixels
    (nearest neighbour, so small samples stay sharp). ``marks``: per row, per image, a short text and
    whether it is a pass, written in the image's bottom corner (green pass, red fail). Saved as PNG at ``path``."""
    width = label_width + cell * max(len(images) for _, images in rows)
    grid = Image.new("RGB", (width, cell * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, (prompt, images) in enumerate(rows):
        draw.text((4, i * cell + cell // 2 - 6), prompt[:42], fill=(0, 0, 0))
        for j, im in enumerate(images):
            grid.paste(im.convert("RGB").resize((cell, cell), Image.NEAREST), (label_width + j * cell, i * cell))
            if marks and j < len(marks[i]):
                text, ok = marks[i][j]
                x0, y0 = label_width + j * cell, (i + 1) * cell - 13
                draw.rectangle([x0, y0, x0 + 6 * len(text) + 4, y0 + 12], fill=(0, 110, 0) if ok else (170, 0, 0))
                draw.text((x0 + 2, y0 + 1), text, fill=(255, 255, 255))
    grid.save(path)
    return path


def loss_curves_svg(curves: dict[str, list[list[float]]], w: int = 640, h: int = 240) -> str:
    """Training loss per stage (``{stage: [[step, loss], ...]}``) as one SVG line chart, stages side by
    side in order on the x axis. Every stage gets a line and a label; colours repeat after six."""
    all_loss = [p[1] for pts in curves.values() for p in pts]
    lo, hi = min(all_loss), max(all_loss)
    total = sum(len(p) for p in curves.values())

    def x(k: int) -> float:
        return 40 + k / max(total - 1, 1) * (w - 60)

    def y(loss: float) -> float:
        return h - 30 - (loss - lo) / max(hi - lo, 1e-9) * (h - 50)

    parts, offset = [], 0
    for i, (name, pts) in enumerate(curves.items()):
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        xy = " ".join(f"{x(offset + k):.1f},{y(p[1]):.1f}" for k, p in enumerate(pts))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1" points="{xy}"/>')
        parts.append(f'<text x="{x(offset):.0f}" y="14" font-size="11" fill="{color}">{name}</text>')
        offset += len(pts)
    axes = (f'<text x="2" y="{h - 30}" font-size="10">{lo:.3f}</text><text x="2" y="24" font-size="10">{hi:.3f}</text>'
            f'<line x1="40" y1="{h - 30}" x2="{w - 20}" y2="{h - 30}" stroke="#888"/>'
            f'<text x="{w // 2 - 60}" y="{h - 8}" font-size="11">training step (stages in order)</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">{axes}{"".join(parts)}</svg>\n'
