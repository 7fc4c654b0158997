"""The report as one self-contained HTML page: ``OUT/report.html``.

Everything the page shows is inside the file: the CSS is inline, and images (sample thumbnails, the
user-study figure, a demo's grid and loss curves) are base64 ``data:`` URIs, so the page opens
offline, can be mailed as one attachment, and makes no request to any server.

The page holds, in order: what was read (each result file's name, kind, model and short SHA-256),
every table with its footnotes (``Table.to_html()``), the user-study figure of each study, and
image grids. For compbench results the grid has, per category, a row for each of the first
``PROMPTS_PER_CATEGORY`` prompts and a column per model, showing the first image of that prompt
(the lowest index in ``samples/``) as a thumbnail at most ``THUMBNAIL`` pixels on a side. A demo
folder shows its ``grid.png`` and ``loss_curves.svg``. Every piece of text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from bench.compbench.samples import NAME, SAMPLES
from pixart.files import write_text_atomic
from reports.provenance import short

REPORT_HTML = "report.html"
PROMPTS_PER_CATEGORY = 4
THUMBNAIL = 128  # pixels, longest side

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.prompt { max-width: 18em; text-align: left; }
.grid td { text-align: center; } .grid td.prompt { text-align: left; }
.grid img { width: 128px; image-rendering: pixelated; }
.missing { color: #999; }
.note, .footnote, figcaption { font-size: 0.85em; color: #555; }
code { font-size: 0.9em; }
"""


def write_html(results, tables, out: Path) -> Path:
    """Write ``out/report.html`` (``out`` is made if missing) from the collected ``results`` (its
    ``.entries``) and the report's ``tables``; returns the file's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out / REPORT_HTML, render_html(results, tables))


def render_html(results, tables) -> str:
    """The page as a string (see the module docstring)."""
    entries = list(results.entries)
    body = ["<h1>pixart-bench report</h1>", _sources(entries)]
    if tables:
        body.append("<h2>Tables</h2>")
        for table in tables:
            key = getattr(table, "key", "") or ""
            body.append(f'<section class="report-table" id="table-{_e(key)}"><h3>{_e(table.title)}</h3>'
                        f"{table.to_html()}</section>")
    studies = [e for e in entries if e.kind == "study"]
    if studies:
        body.append("<h2>User study</h2>")
        body += [_study_figure(e) for e in studies]
    compbench = [e for e in entries if e.kind == "compbench"]
    if compbench:
        body.append("<h2>Samples</h2>")
        body.append(_compbench_grids(compbench))
    for entry in (e for e in entries if e.kind == "demo"):
        body.append(_demo_figures(entry))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>pixart-bench report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _label(entry) -> str:
    """The name an entry goes by in the page: its model, else its folder's name."""
    return entry.model or _folder(entry).name or str(entry.path)


def _folder(entry) -> Path:
    path = Path(entry.path)
    return path if path.is_dir() else path.parent


def _sources(entries) -> str:
    rows = "".join(f"<tr><td><code>{_e(Path(e.path).name)}</code></td><td>{_e(e.kind)}</td>"
                   f"<td>{_e(e.model or '')}</td><td><code>{_e(short(e.sha256))}</code></td>"
                   f'<td class="note">{_e(e.path)}</td></tr>' for e in entries)
    return ('<h2>What was read</h2><table class="sources"><thead><tr><th>file</th><th>kind</th><th>model</th>'
            f"<th>SHA-256</th><th>path</th></tr></thead><tbody>{rows}</tbody></table>")


def _study_figure(entry) -> str:
    import matplotlib

    from reports.study_figure import user_study_figure

    fig = user_study_figure(entry.data)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "pixart-bench report"}):  # fixed ids: the same page on a rerun
        fig.savefig(buf, format="svg", metadata={"Date": None})
    uri = _data_uri(buf.getvalue(), "image/svg+xml")
    return (f'<figure class="study"><img src="{uri}" alt="{_e("user-study figure of " + _label(entry))}">'
            f"<figcaption>First-place share per model and criterion, with bootstrap intervals "
            f"({_e(Path(entry.path).name)}, {_e(_label(entry))}).</figcaption></figure>")


# --- compbench: a grid per category, a row per prompt, a column per model ---------------------------------------

def _thumbnail(path: Path) -> str | None:
    """A JPEG data URI of the image at ``path``, at most THUMBNAIL pixels on a side; None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL, THUMBNAIL))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=85)
    except (OSError, UnidentifiedImageError):
        return None
    return _data_uri(buf.getvalue(), "image/jpeg")


def sample_folder(entry, category: str) -> Path | None:
    """Where a compbench entry's ``category`` images are: the folder its results.json names (as
    written, or relative to the results' folder), else ``<results folder>/<category>``; None if
    none of them has a ``samples/`` folder."""
    base = _folder(entry)
    named = (entry.data.get("categories", {}).get(category) or {}).get("folder")
    candidates = []
    if named:
        candidates += [Path(named), base / named, base / Path(named).name]
    candidates.append(base / category)
    return next((c for c in candidates if (c / SAMPLES).is_dir()), None)


def first_images(folder: Path) -> dict[str, Path]:
    """{prompt: its first image (lowest index)} of ``folder/samples/``, prompts in index order;
    files not named ``<prompt>_<N>.png`` are passed over."""
    named = []
    for path in (folder / SAMPLES).iterdir():
        m = NAME.match(path.name)
        if m and path.is_file():
            named.append((int(m["index"]), m["prompt"], path))
    first: dict[str, Path] = {}
    for _, prompt, path in sorted(named):
        first.setdefault(prompt, path)
    return first


def _compbench_grids(entries) -> str:
    labels = [_label(e) for e in entries]
    if len(set(labels)) < len(labels):  # two runs of one model: tell them apart by their folders
        labels = [f"{label} ({_folder(e).name})" for label, e in zip(labels, entries)]
    categories = list(dict.fromkeys(c for e in entries for c in e.data.get("categories", {})))
    parts = []
    for category in categories:
        images = {}
        for label, e in zip(labels, entries):
            if category in e.data.get("categories", {}):
                folder = sample_folder(e, category)
                images[label] = first_images(folder) if folder else None
        prompts = list(dict.fromkeys(p for found in images.values() if found for p in found))[:PROMPTS_PER_CATEGORY]
        head = "".join(f"<th>{_e(label)}</th>" for label in images)
        rows = []
        for prompt in prompts:
            cells = []
            for label, found in images.items():
                uri = _thumbnail(found[prompt]) if found and prompt in found else None
                cells.append(f'<td><img src="{uri}" alt="{_e(label)}: {_e(prompt)}"></td>' if uri
                             else '<td class="missing">no image</td>')
            rows.append(f'<tr><td class="prompt">{_e(prompt)}</td>{"".join(cells)}</tr>')
        missing = [label for label, found in images.items() if found is None]
        note = (f'<p class="note">No samples/ folder found for {_e(", ".join(missing))}.</p>' if missing else "")
        parts.append(f'<section class="samples" id="samples-{_e(category)}"><h3>{_e(category)}</h3>{note}'
                     f'<table class="grid"><thead><tr><th>prompt</th>{head}</tr></thead>'
                     f"<tbody>{''.join(rows)}</tbody></table></section>")
    return "\n".join(parts)


# --- a demo folder: its grid and loss curves ---------------------------------------------------------------------

def _demo_figures(entry) -> str:
    folder = _folder(entry)
    parts = [f"<h2>Demo samples ({_e(_label(entry))})</h2>"]
    grid = folder / "grid.png"
    if grid.is_file():
        parts.append(f'<figure><img src="{_data_uri(grid.read_bytes(), "image/png")}" alt="demo sample grid">'
                     "<figcaption>The first prompt of each category, one image per seed.</figcaption></figure>")
    curves = folder / "loss_curves.svg"
    if curves.is_file():
        parts.append(f'<figure><img src="{_data_uri(curves.read_bytes(), "image/svg+xml")}" '
                     'alt="reference model training loss curves">'
                     "<figcaption>The reference model's training loss, stage by stage.</figcaption></figure>")
    if len(parts) == 1:
        parts.append(f'<p class="note">No grid.png or loss_curves.svg in {_e(folder)}.</p>')
    return "\n".join(parts)
