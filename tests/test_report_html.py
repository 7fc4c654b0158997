"""reports.html: the self-contained report.html, read as text and opened in headless Chromium.

The page is built twice: from stand-in results and tables (two compbench runs with images in the
official layout, a study, a demo folder; prompts with HTML characters), and by ``write_report`` from
the report fixtures in ``tests/data/report/`` with sample images added. Chromium opens it with every
request that is not ``file:`` or ``data:`` aborted, and the test checks that each table shows all
its rows, that every image decodes, and that nothing left the page. Chromium comes from
``tests/chromium.py`` (skipped without one, except on CI).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from chromium import launch
from PIL import Image
from test_report_figure import study_results

from reports.build import build_tables, write_report
from reports.collect import collect
from reports.figures import image_grid, loss_curves_svg
from reports.html import PROMPTS_PER_CATEGORY, THUMBNAIL, render_html, write_html

TIMEOUT_MS = 20_000
FIXTURES = Path(__file__).parent / "data" / "report"  # result files of every kind
COLOR_PROMPTS = ["a red circle", "a blue square", "a green <triangle> & a cup", "a red star", "a blue cup"]
SPATIAL_PROMPTS = ["a circle left of a square", "a cup on a table"]


@dataclass
class Entry:
    kind: str
    path: Path
    data: dict
    model: str | None
    sha256: str
    per_image: pd.DataFrame | None = None


@dataclass
class Results:
    entries: list[Entry]


@dataclass
class Table:
    key: str
    title: str
    frame: pd.DataFrame
    notes: list[str]

    def to_html(self) -> str:
        notes = "".join(f'<p class="footnote">{html.escape(n)}</p>' for n in self.notes)
        return self.frame.to_html(index=False) + notes


def write_samples(folder: Path, prompts: list[str], per_prompt: int, color, size: int = 64) -> None:
    """``folder/samples/<prompt>_<NNNNNN>.png``, ``per_prompt`` images per prompt; image k of prompt i
    is filled with ``color`` shaded by k, so the first image of a prompt is the brightest."""
    (folder / "samples").mkdir(parents=True)
    for i, prompt in enumerate(prompts):
        for k in range(per_prompt):
            shade = tuple(max(0, c - 60 * k) for c in color)
            Image.new("RGB", (size, size), shade).save(folder / "samples" / f"{prompt}_{10 * i + k:06d}.png")


def compbench_entry(root: Path, model: str, folder_field, color, skip: set[str] = frozenset()) -> Entry:
    run = root / model
    write_samples(run / "color", [p for p in COLOR_PROMPTS if p not in skip], 2, color, size=256)
    write_samples(run / "spatial", SPATIAL_PROMPTS, 2, color)
    data = {"format": "pixart-bench compbench", "model": {"name": model},
            "categories": {c: {"score": 0.5, "ci95": [0.4, 0.6], "folder": folder_field(run, c)}
                           for c in ("color", "spatial")}}
    (run / "results.json").write_text(json.dumps(data))
    return Entry("compbench", run / "results.json", data, model, "ab" * 32)


def demo_entry(root: Path) -> Entry:
    folder = root / "demo"
    folder.mkdir()
    image_grid([("a red circle", [Image.new("RGB", (32, 32), (200, 0, 0))])], folder / "grid.png")
    (folder / "loss_curves.svg").write_text(loss_curves_svg({"stage1": [[0, 1.0], [1, 0.5]]}))
    (folder / "results.json").write_text("{}")
    return Entry("demo", folder / "results.json", {}, None, "cd" * 32)


@pytest.fixture
def report(tmp_path):
    """(report.html path, results, tables) of two compbench runs, a study and a demo."""
    # model a names its folders by absolute path; model b by a path relative to where it ran, which
    # does not hold from here, so its folders are found next to its results.json; b lacks one prompt
    a = compbench_entry(tmp_path, "model-a", lambda run, c: str(run / c), (250, 40, 40))
    b = compbench_entry(tmp_path, "model-b", lambda run, c: f"elsewhere/{c}", (40, 40, 250), skip={"a blue square"})
    study = Entry("study", tmp_path / "study" / "results.json", study_results(), None, "ef" * 32)
    results = Results([a, b, study, demo_entry(tmp_path)])
    tables = [Table("compbench", "T2I-CompBench <scores>", pd.DataFrame({"model": ["model-a", "model-b"],
                                                                         "color": [0.5, 0.4]}),
                    ["Scores are means over images & prompts."]),
              Table("study", "User study", pd.DataFrame({"model": ["pixart", "sdxl", "dalle2"],
                                                         "first": ["50%", "30%", "20%"]}), ["95% intervals."])]
    return write_html(results, tables, tmp_path / "out"), results, tables


def test_the_page_holds_every_table_the_images_and_escapes_text(report):
    path, results, tables = report
    assert path.name == "report.html"
    page = path.read_text()
    # self-contained: every src and href is a data: URI or an in-page anchor
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(u.startswith(("data:", "#")) for u in links), [u[:40] for u in links if "data:" not in u]
    assert "<link" not in page and "@import" not in page and "url(" not in page
    # text is escaped: the table title, a prompt and a note with HTML characters
    assert "T2I-CompBench &lt;scores&gt;" in page and "<scores>" not in page
    assert "a green &lt;triangle&gt; &amp; a cup" in page and "<triangle>" not in page
    # what was read: every file with its short hash
    for e in results.entries:
        assert f"<code>{e.sha256[:12]}</code>" in page
    # color grid: the first PROMPTS_PER_CATEGORY prompts × 2 models, one missing image (b lacks a prompt)
    color = re.search(r'id="samples-color".*?</section>', page, re.DOTALL).group(0)
    assert color.count("<tr>") == 1 + PROMPTS_PER_CATEGORY
    assert color.count("<img") == 2 * PROMPTS_PER_CATEGORY - 1 and color.count("no image") == 1
    assert COLOR_PROMPTS[PROMPTS_PER_CATEGORY] not in color
    spatial = re.search(r'id="samples-spatial".*?</section>', page, re.DOTALL).group(0)
    assert spatial.count("<img") == 2 * len(SPATIAL_PROMPTS)
    # the grid shows the first image of a prompt, downscaled to a thumbnail
    first = re.search(r'<img src="data:image/jpeg;base64,([^"]+)" alt="model-a: a red circle"', color).group(1)
    with Image.open(io.BytesIO(base64.b64decode(first))) as im:
        assert im.size == (THUMBNAIL, THUMBNAIL)
        r, g, b = im.convert("RGB").getpixel((64, 64))
        assert r > 230 and g < 70 and b < 70  # image 0 (250, 40, 40), not image 1 (190, 0, 0)
    # the study figure and the demo's grid and curves are embedded
    assert page.count('src="data:image/svg+xml;base64,') == 2 and page.count('src="data:image/png;base64,') == 1
    assert render_html(results, tables) == page  # made from its inputs alone: the same page again


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


def open_offline(browser, path: Path, tables: list[tuple[str, str, pd.DataFrame, list[str]]]) -> int:
    """Open ``path`` in Chromium with every request that is not file: or data: aborted; assert each table
    (key, title, frame, notes) is visible with all its rows and its first note, that every image is
    decoded and that no request left the page; returns the number of images."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    requested, blocked = [], []

    def only_local(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    try:
        page = context.new_page()
        page.route("**/*", only_local)
        page.on("request", lambda r: requested.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        for key, title, frame, notes in tables:
            section = page.locator(f"#table-{key}")
            assert section.is_visible(), key
            assert section.locator("h3").inner_text() == title
            rows = section.locator("table tbody tr")
            assert rows.count() == len(frame), key
            for i, row in enumerate(frame.astype(str).itertuples(index=False)):
                assert rows.nth(i).is_visible()
                assert rows.nth(i).locator("td").all_inner_texts() == list(row), (key, i)
            if notes:
                assert section.locator(".footnote").first.inner_text() == notes[0]
        images = page.evaluate("() => [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")
        undecoded = [alt for alt, complete, width in images if not (complete and width > 0)]
        assert not undecoded, f"images not decoded: {undecoded}"
        assert [u for u in requested if not u.startswith(("file:", "data:"))] == [] and blocked == []
        # the guard works: a request to a server is seen and aborted
        page.evaluate("() => fetch('https://example.com/x').catch(() => null)")
        assert blocked == ["https://example.com/x"]
        return len(images)
    finally:
        context.close()


def test_chromium_shows_every_table_and_image_with_no_request_leaving_the_page(report, browser):
    path, _, tables = report
    n = open_offline(browser, path, [(t.key, t.title, t.frame, t.notes) for t in tables])
    assert n == 2 * PROMPTS_PER_CATEGORY - 1 + 2 * len(SPATIAL_PROMPTS) + 3  # thumbnails, study figure, demo's two


def test_a_report_of_result_files_opens_offline_in_chromium(tmp_path, browser):
    """pixart-bench report's own machinery on the report fixtures (two compbench runs with their
    images, a study, a demo): report.html shows every table written and every image."""
    for name in ("cb-pixart", "cb-sdxl", "study", "demo"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
    for run, color in (("cb-pixart", (250, 40, 40)), ("cb-sdxl", (40, 40, 250))):
        per_image = pd.read_csv(tmp_path / run / "per_image.csv")
        for category, rows in per_image.groupby("category"):
            (tmp_path / run / category / "samples").mkdir(parents=True)
            for file in rows["file"]:
                Image.new("RGB", (64, 64), color).save(tmp_path / run / category / "samples" / file)
    image_grid([("a red circle", [Image.new("RGB", (32, 32), (200, 0, 0))])], tmp_path / "demo" / "grid.png")
    paths = [tmp_path / name for name in ("cb-pixart", "cb-sdxl", "study", "demo")]
    record = write_report(paths, tmp_path / "out", formats=("md", "html"))
    tables = build_tables(collect(paths))
    assert [t.key for t in tables] == [t["key"] for t in record["tables"]]
    n = open_offline(browser, tmp_path / "out" / "report.html", [(t.key, t.title, t.frame, t.notes) for t in tables])
    prompts = per_image.groupby("category")["prompt"].nunique().clip(upper=PROMPTS_PER_CATEGORY).sum()
    # both runs hold the same prompts
    assert n == 2 * prompts + 1 + 1  # a thumbnail per prompt and model, the study figure, the demo's grid
