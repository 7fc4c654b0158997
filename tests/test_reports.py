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


def demo_results(reference: str) -> dict:
    """A demo's results.json with the keys run_demo writes (two categories)."""
    return {"quick": True, "prompts_per_category": 2, "seeds": 1, "first_seed": 0, "size": 128,
            "sampler": "sde-dpm-solver", "steps": 20, "cfg": 2.0, "world_fid": 41.237, "reference_parameters": 1234567,
            "reference": reference, "seconds": 63.4,
            "scores": {"single": {"score": 0.5, "ci95": [0.0, 1.0], "images": 2, "prompts": 2, "vae_ceiling": 1.0,
                                  "objects_per_image": 1.5, "images_with_extra_objects": 1},
                       "spatial": {"score": 0.25, "ci95": [0.125, 0.375], "images": 2, "prompts": 2,
                                   "vae_ceiling": 0.875, "objects_per_image": 2.0, "images_with_extra_objects": 0}},
            "parameter_table": [{"model": "PixArt-XL/2 (adaLN-single)", "total": 610856096},
                                {"model": "PixArt-XL/2 (per-block adaLN)", "total": 833048480}],
            "reference_training": {"vae_psnr_db": 31.456, "seconds": {"vae": 120.4, "stage1": 300.6}}}


def test_demo_tables_hold_the_scores_settings_and_parameters(tmp_path):
    from types import SimpleNamespace

    from reports.demo import demo_tables

    scores, params = demo_tables(SimpleNamespace(data=demo_results(str(tmp_path))))
    assert list(scores.frame["category"]) == ["single", "spatial"]
    # a demo made before the world judge: no agreement or exact-oracle column to fill, the oracle named as the reader
    assert scores.frame.iloc[1].tolist() == ["spatial", "0.250", "[0.125, 0.375]", 2, "-", "-", "0.875", "2.00", 0]
    assert scores.title == "Demo: oracle scores per category"
    notes = "\n".join(scores.notes)
    assert "2 prompts per category × 1 seeds (from seed 0), 128×128 px, sde-dpm-solver 20 steps, cfg 2.0" in notes
    assert "1,234,567 transformer parameters" in notes and "World-FID" in notes and "41.24" in notes
    assert "VAE reconstruction PSNR 31.46 dB; wall time (s): vae 120, stage1 301" in notes
    assert params.frame.values.tolist() == [["PixArt-XL/2 (adaLN-single)", "610,856,096"],
                                            ["PixArt-XL/2 (per-block adaLN)", "833,048,480"]]
    md = scores.to_markdown()
    assert md.count("\n| s") == 2 and "VAE ceiling" in md  # one row per category, the notes below
    # no reference training record: no line for it
    r = demo_results(str(tmp_path))
    del r["reference_training"]
    assert "PSNR" not in "\n".join(demo_tables(SimpleNamespace(data=r))[0].notes)


def test_demo_figures_grid_of_the_first_prompts_and_loss_curves(tmp_path):
    import json

    from reports.demo import write_demo_figures

    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "training.json").write_text(json.dumps({"loss_curves": {"stage1": [[0, 1.0], [5, 0.5]],
                                                                                "stage2": [[0, 0.6], [5, 0.4]]}}))
    r = demo_results(str(tmp_path / "ref"))
    r["seeds"] = 2
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "results.json").write_text(json.dumps(r))
    colors = {"single": (255, 0, 0), "spatial": (0, 0, 255)}
    for category, color in colors.items():
        folder = tmp_path / "demo" / "images" / category
        folder.mkdir(parents=True)
        images = []
        for index in range(4):  # two prompts × two seeds; the grid shows the first prompt's two
            Image.new("RGB", (16, 16), color if index < 2 else (0, 255, 0)).save(folder / f"{index}.png")
            images.append({"index": index, "file": f"{index}.png"})
        (folder / "manifest.json").write_text(json.dumps({"prompts": [f"{category} one", f"{category} two"],
                                                          "images": images}))
    grid, curves = write_demo_figures(tmp_path / "demo")
    assert (grid.name, curves.name) == ("grid.png", "loss_curves.svg")
    im = Image.open(grid).convert("RGB")
    assert im.size == (260 + 2 * 96, 2 * 96)
    assert [im.getpixel((260 + 48 + 96 * k, 48)) for k in range(2)] == [(255, 0, 0)] * 2
    assert [im.getpixel((260 + 48 + 96 * k, 96 + 48)) for k in range(2)] == [(0, 0, 255)] * 2
    assert all(f">{stage}</text>" in curves.read_text() for stage in ("stage1", "stage2"))
