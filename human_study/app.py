"""The rating page: Gradio Blocks over ``human_study.service``.

One page serves raters and the admin. Nothing of the study is in the page until ``enter`` accepts the
URL's parameters (the initial values of every component are empty, and the study's components are
hidden), so a page opened without a valid token shows a refusal only.

- A rater sees the prompt, the K images labelled A, B, C, ... in the item's logged screen order, and
  for each criterion a rank (1..K) per image; **Submit** commits the answer before the next item is
  shown. A reload calls ``enter`` again, which resumes at the first unanswered item. The last answer
  shows the completion code (and a link back to the crowd platform, when the study has one).
- Images are returned as file paths of the study's opaque copies (``images/<16 hex>.png``): Gradio
  serves them under their own names without re-encoding (``format="png"``; returned paths are never
  converted), with no download or share buttons.
- The session's rater id lives in ``gr.State`` on the server; no request names a rater, so a page can
  only answer for the rater whose link opened it.
- The admin (``?admin=TOKEN``) sees the live dashboard and can download the unblinded export.

Endpoints a script can call with ``gradio_client`` (the load test does): ``/enter`` (a query string such
as ``token=T``) and ``/submit`` (the K quality ranks, then the K alignment ranks).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a study server

import gradio as gr  # noqa: E402

from human_study.design import CRITERIA, QUESTIONS, STUDY_FILE, Study  # noqa: E402
from human_study.errors import StudyError  # noqa: E402
from human_study.service import LETTERS, Entry, RatingService  # noqa: E402
from human_study.storage import dumps  # noqa: E402

CSS = ".study-prompt {font-size: 1.3em; font-weight: 600}"
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def markdown_text(text: str) -> str:
    """``text`` shown as written: Markdown's special characters escaped."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def build_app(service: RatingService) -> gr.Blocks:
    study = service.study
    k = len(study.models)
    ranks = [str(r) for r in range(1, k + 1)]
    exports: list[Path] = []
    # every hour, Gradio deletes the files it cached (served images, exports) that are over two hours old
    with gr.Blocks(title=study.settings.title, analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        state = gr.State(None)  # {"rater": id, "position": p} or {"admin": True}
        message = gr.Markdown("Loading…")
        with gr.Column(visible=False) as item_box:
            gr.Markdown(f"## {study.settings.title}\n{study.settings.instructions}")
            progress = gr.Markdown("")
            prompt = gr.Markdown("", elem_classes=["study-prompt"])
            with gr.Row():
                # one display height for every image, whatever its file's size
                images = [gr.Image(None, type="filepath", format="png", interactive=False, buttons=[], height=384,
                                   label=f"Image {LETTERS[i]}", show_label=True) for i in range(k)]
            radios = {}
            for criterion in CRITERIA:
                gr.Markdown(f"**{QUESTIONS[criterion]}**")
                with gr.Row():
                    radios[criterion] = [gr.Radio(ranks, value=None, label=f"Image {LETTERS[i]} ({criterion})")
                                         for i in range(k)]
            submit = gr.Button("Submit and continue", variant="primary")
        with gr.Column(visible=False) as finish_box:
            finish = gr.Markdown("")
        with gr.Column(visible=False) as admin_box:
            dashboard = gr.Markdown("")
            refresh = gr.Button("Refresh")
            export = gr.Button("Download the export (unblinded)")
            export_file = gr.File(None, label="export", interactive=False)
        entry_query = gr.Textbox("", visible=False)  # the API's way in: a query string
        enter_button = gr.Button("enter", visible=False)

        all_radios = [r for c in CRITERIA for r in radios[c]]
        outputs = [state, message, item_box, progress, prompt, *images, *all_radios, finish_box, finish, admin_box,
                   dashboard]

        def show(entry: Entry) -> dict:
            hidden = {item_box: gr.Column(visible=False), finish_box: gr.Column(visible=False),
                      admin_box: gr.Column(visible=False)}
            if entry.kind == "refused":
                return {**hidden, state: None, message: entry.message}
            if entry.kind == "admin":
                return {**hidden, state: {"admin": True}, message: "", admin_box: gr.Column(visible=True),
                        dashboard: service.dashboard()}
            if entry.code is not None:
                link = study.settings.completion_url
                text = f"## Thank you!\nYour completion code is **`{entry.code}`**."
                if link:
                    text += f"\n\n[Return to the study platform]({link.format(code=entry.code)})"
                return {**hidden, state: {"rater": entry.rater_id, "position": None}, message: "",
                        finish_box: gr.Column(visible=True), finish: text}
            view = entry.item
            return {**hidden, state: {"rater": entry.rater_id, "position": view.position}, message: "",
                    item_box: gr.Column(visible=True), progress: f"Item {view.answered + 1} of {view.total}",
                    prompt: f"### “{markdown_text(view.prompt)}”",
                    **{im: str(study.image_path(i)) for im, i in zip(images, view.images)},
                    **{r: gr.Radio(value=None) for r in all_radios}}

        def enter_from_url(request: gr.Request):
            return show(service.enter(dict(request.query_params) if request else {}))

        def enter_from_query(query: str):
            return show(service.enter(dict(parse_qsl(query or ""))))

        def on_submit(current, *values, request: gr.Request = None):
            if not current or current.get("rater") is None:
                raise gr.Error("Open the study with the link you were given.")
            if current.get("position") is None:
                return show(service.enter_rater(current["rater"]))
            given = {c: list(values[i * k:(i + 1) * k]) for i, c in enumerate(CRITERIA)}
            try:
                entry = service.submit(current["rater"], current["position"], given,
                                       session=getattr(request, "session_hash", None))
            except StudyError as e:
                raise gr.Error(str(e)) from None
            return show(entry)

        def on_refresh(current):
            if not (current and current.get("admin")):
                raise gr.Error("admin only")
            return service.dashboard()

        def on_export(current):
            if not (current and current.get("admin")):
                raise gr.Error("admin only")
            # one export at a time on disk, under a fresh random folder; Gradio serves its own copy, which
            # its cache clean-up (delete_cache below) removes within two hours
            for old in exports:
                shutil.rmtree(old, ignore_errors=True)
            exports[:] = [Path(tempfile.mkdtemp(prefix="study-export-"))]
            path = exports[0] / f"study-{study.study_id}-export.json"
            path.write_text(dumps(service.export()))
            return str(path)

        demo.load(enter_from_url, None, outputs, api_visibility="private")
        enter_button.click(enter_from_query, entry_query, outputs, api_name="enter")
        submit.click(on_submit, [state, *all_radios], outputs, api_name="submit", show_progress="hidden")
        refresh.click(on_refresh, state, dashboard, api_visibility="private")
        export.click(on_export, state, export_file, api_visibility="private")
    return demo


def launch(study: Study, service: RatingService, *, host: str = "127.0.0.1", port: int | None = 7860,
           concurrency: int = 16, root_path: str | None = None, block: bool = True, quiet: bool = False):
    """Serve the study. ``concurrency`` answers are handled at once (Gradio's default is one per event,
    which would queue every rater behind the slowest database write); returns the Blocks (running in the
    background when ``block`` is False)."""
    if concurrency < 1:
        raise StudyError(f"--concurrency must be at least 1, got {concurrency}")
    demo = build_app(service)
    demo.queue(default_concurrency_limit=concurrency, max_size=None)
    images = study.image_path("x").parent
    # only the opaque image copies may be served; never the design, the database or their journals
    blocked = [str(p) for p in study.folder.iterdir() if p.resolve() != images.resolve()] + [str(study.folder /
                                                                                               STUDY_FILE)]
    demo.launch(server_name=host, server_port=port, allowed_paths=[str(images)], blocked_paths=blocked,
                footer_links=[], root_path=root_path, prevent_thread_lock=not block, quiet=quiet, show_error=True,
                ssr_mode=False, max_threads=max(40, 2 * concurrency), css=CSS)
    return demo
