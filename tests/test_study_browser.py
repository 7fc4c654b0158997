"""The rating page in a real browser: headless Chromium driven by Playwright against the app served
in-process, on a tiny study of two noise-image models ("zebramodel", "okapimodel").

What a rater does is checked end to end: the invite link shows the prompt and the two images of the
item the database assigned, ranks chosen with the radio buttons reach the database for the right screen
positions, a missing rank shows an error and does not advance, a reload resumes at the first unanswered
item, and the finish screen shows the completion code the database holds. Blindness is checked on what
the browser actually got: no requested URL, no page HTML and no fetched image names a model or the
folders the images came from, and the images are served under their 16-hex ids, byte for byte the
study's copies. A page without a token shows the refusal and nothing of the study; the admin link
shows the live dashboard.

Chromium comes from ``STUDY_TEST_CHROMIUM``, else ``/usr/bin/chromium``. Without one the tests are
skipped, except on CI (``CI=true``), where they fail: ``.ci/run`` installs chromium, so a missing one
there is a broken setup. One full-page screenshot of an item is written to the temp folder
(``study-browser-item.png``) for a person to look at.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from chromium import launch as launch_chromium
from sqlalchemy import select
from study_helpers import MODEL_NAMES, make_study

from human_study.app import launch
from human_study.service import REFUSED, RatingService
from human_study.storage import StudyStore, answers, raters

MODELS = MODEL_NAMES[:2]  # "zebramodel", "okapimodel"
ITEMS = 3  # items per rater; with the check, every rater answers ITEMS + 1
ADMIN = "admin-token-for-the-browser-test"
SCREENSHOT = Path(tempfile.gettempdir()) / "study-browser-item.png"
HEX_NAME = re.compile(r"[0-9a-f]{16}\.png")
TIMEOUT_MS = 20_000
IMAGES_LOADED = ("() => [...document.querySelectorAll('img')].filter(i => i.src.includes('/gradio_api/file='))"
                 ".every(i => i.complete && i.naturalWidth > 0)")


# --- fixtures: one study, one server and one browser for the module; a fresh browser context per test ------

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(study, service, store, base URL) of a 2-model study (ITEMS items and 1 attention check per rater)
    served in-process; closed after the module's tests, failed or not."""
    root = tmp_path_factory.mktemp("browser")
    study = make_study(root, n_prompts=6, n_models=2, items_per_rater=ITEMS, raters_per_prompt=2,
                       attention_rate=0.3, seed=7)
    assert study.models == list(MODELS)
    store = StudyStore(study.database_url(), study.study_id)
    demo = None
    try:
        service = RatingService(study, store, ADMIN)
        demo = launch(study, service, port=None, block=False, quiet=True)
        yield study, service, store, demo.local_url
    finally:
        if demo is not None:
            demo.close()
        store.close()


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


class Recorder:
    """Everything one page fetched: every request URL, and the bodies of the images it got."""

    def __init__(self, page):
        self.urls: list[str] = []
        self.image_responses = []
        self.image_bytes: dict[str, bytes] = {}
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("response", lambda r: self.image_responses.append(r) if "/gradio_api/file=" in r.url else None)

    def read_images(self) -> None:
        """Read the bodies of the images fetched so far (before a reload drops them)."""
        for r in self.image_responses:
            if r.url not in self.image_bytes:
                assert r.ok, f"image {r.url} answered {r.status}"
                self.image_bytes[r.url] = r.body()
        self.image_responses.clear()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        pg = context.new_page()
        pg.recorder = Recorder(pg)
        yield pg
    finally:
        context.close()


# --- page helpers ----------------------------------------------------------------------------------------------

def radio_group(page, label: str):
    """The radio group Gradio renders for the component labelled ``label`` (a fieldset with that label)."""
    return page.locator("fieldset").filter(has=page.get_by_text(label, exact=True))


def choose(page, criterion: str, ranks: list[int]) -> None:
    """Click rank ``ranks[i]`` for the image at screen position i (Image A, B, ...)."""
    for letter, rank in zip("AB", ranks):
        group = radio_group(page, f"Image {letter} ({criterion})")
        group.get_by_role("radio", name=str(rank), exact=True).check()


def shown_images(page) -> list[str]:
    """The served file names of the item's images, in screen order (Image A, B)."""
    names = []
    for letter in "AB":
        img = page.locator(".block").filter(has=page.get_by_text(f"Image {letter}", exact=True)).locator("img")
        img.wait_for(state="visible")
        src = img.get_attribute("src")
        assert src and "/gradio_api/file=" in src, src
        names.append(Path(unquote(urlsplit(src).path)).name)
    # loaded and decoded (so their responses have been recorded before anything navigates away)
    page.wait_for_function(IMAGES_LOADED)
    return names


def wait_for_item(page, number: int, total: int) -> None:
    page.get_by_text(f"Item {number} of {total}", exact=True).wait_for(state="visible")


def answer_row(store, rater_id: int, position: int):
    with store.engine.connect() as c:
        return c.execute(select(answers.c.ranks).where(answers.c.rater_id == rater_id,
                                                        answers.c.position == position)).scalar()


def assert_blind(study, texts: list[str], blobs: list[bytes]) -> None:
    """No model name and no source folder in any of ``texts`` (URLs, HTML) or ``blobs`` (image bytes)."""
    sources = Path(study.folder).parent / "models"  # where study_helpers put the models' images
    secrets_ = [*MODELS, str(sources), str(sources.resolve())]
    for s in secrets_:
        for t in texts:
            assert s not in t, f"{s!r} reached the browser: ...{t[max(0, t.find(s) - 80):t.find(s) + 80]}..."
        for b in blobs:
            assert s.encode() not in b, f"{s!r} is in a served image"


# --- tests -------------------------------------------------------------------------------------------------------

def test_a_rater_ranks_every_item_resumes_after_a_reload_and_gets_the_code(page, app):
    study, service, store, base = app
    token = store.add_invites(1)[0]
    total = ITEMS + 1
    htmls, shown = [], set()

    page.goto(f"{base}?token={token}")
    wait_for_item(page, 1, total)
    rater = store.rater_by_token(token)
    assert rater.slot is not None
    items = {a.position: a for a in study.plan(rater.slot)}
    assert len(items) == total and sum(a.kind == "check" for a in items.values()) == 1
    position = 0
    for number in range(1, total + 1):
        if number == 3:  # reload mid-study: the page must resume at the first unanswered item, not item 1
            before = shown_images(page)  # item 3's images loaded, then read, before the reload drops them
            page.recorder.read_images()
            page.reload()
            wait_for_item(page, number, total)
            assert page.get_by_text("Item 1 of", exact=False).count() == 0
        item = items[position]
        # the prompt and the item's two images, in the logged screen order, under their opaque ids
        page.get_by_text(f"“{study.prompts[item.prompt]}”", exact=True).wait_for(state="visible")
        names = shown_images(page)
        assert all(HEX_NAME.fullmatch(n) for n in names), names
        assert names == [f"{i}.png" for i in item.images]
        if number == 3:
            assert names == before
        shown.update(names)
        quality, alignment = ([2, 1], [1, 2]) if number % 2 else ([1, 2], [2, 1])
        choose(page, "quality", quality)
        choose(page, "alignment", alignment)
        if number == 1:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        htmls.append(page.content())
        page.get_by_role("button", name="Submit and continue").click()
        if number < total:
            wait_for_item(page, number + 1, total)
        else:
            page.get_by_text("Your completion code is").wait_for(state="visible")
        # committed before the next item showed, for the screen positions that were clicked
        assert answer_row(store, rater.id, position) == {"quality": quality, "alignment": alignment}
        position += 1
        page.recorder.read_images()

    finish = page.locator("p").filter(has_text="Your completion code is")
    finish.wait_for(state="visible")
    htmls.append(page.content())
    shown_code = finish.locator("code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-F]{8}", shown_code), shown_code
    with store.engine.connect() as c:
        stored = c.execute(select(raters.c.completion_code).where(raters.c.id == rater.id)).scalar()
    assert shown_code == stored
    assert page.get_by_role("button", name="Submit and continue").is_hidden()

    # blindness of everything the browser got
    rec = page.recorder
    fetched = {Path(unquote(urlsplit(url).path)).name for url in rec.image_bytes}
    assert fetched == shown  # every image shown was fetched (and read here), and nothing else
    for url, body in rec.image_bytes.items():
        name = Path(unquote(urlsplit(url).path)).name
        assert body == study.image_path(name[:-4]).read_bytes(), f"{url} is not the study's copy byte for byte"
    assert_blind(study, rec.urls + htmls, list(rec.image_bytes.values()))


def test_a_missing_rank_shows_an_error_and_does_not_advance(page, app):
    study, service, store, base = app
    token = store.add_invites(1)[0]
    page.goto(f"{base}?token={token}")
    wait_for_item(page, 1, ITEMS + 1)
    rater = store.rater_by_token(token)
    choose(page, "quality", [1, 2])
    radio_group(page, "Image A (alignment)").get_by_role("radio", name="2", exact=True).check()  # B left out
    page.get_by_role("button", name="Submit and continue").click()
    page.get_by_text("alignment: give every image a rank").first.wait_for(state="visible")
    wait_for_item(page, 1, ITEMS + 1)
    assert page.get_by_text("Item 2 of").count() == 0
    assert answer_row(store, rater.id, 0) is None
    # the ranks already given stay, so completing the missing one is enough
    # (the error leaves the page usable: no overlay covers the radios, so this click would time out)
    radio_group(page, "Image B (alignment)").get_by_role("radio", name="1", exact=True).check()
    # a double click answers item 1 once and must not carry its ranks over to item 2, unseen
    page.get_by_role("button", name="Submit and continue").dblclick()
    wait_for_item(page, 2, ITEMS + 1)
    assert answer_row(store, rater.id, 0) == {"quality": [1, 2], "alignment": [2, 1]}
    page.wait_for_timeout(500)  # room for a second submission to land, were one sent
    assert answer_row(store, rater.id, 1) is None
    assert store.progress(rater.id)[0] == 1
    wait_for_item(page, 2, ITEMS + 1)


def test_a_page_without_a_token_shows_only_the_refusal(page, app):
    study, service, store, base = app
    for url in (base, f"{base}?token=not-a-real-token"):
        page.goto(url)
        page.get_by_text(REFUSED, exact=True).wait_for(state="visible")
        html = page.content()
        assert page.locator("img[src*='/gradio_api/file=']").count() == 0
        assert page.get_by_text("Item 1 of", exact=False).count() == 0
        assert page.get_by_role("button", name="Submit and continue").is_hidden()
        for prompt in study.prompts:
            assert prompt not in html
        assert not re.search(r"[0-9a-f]{16}\.png", html)
    page.recorder.read_images()
    assert page.recorder.image_bytes == {}
    assert_blind(study, page.recorder.urls + [page.content()], [])


def test_the_admin_link_shows_the_dashboard(page, app):
    study, service, store, base = app
    page.goto(f"{base}?admin={ADMIN}")
    page.get_by_text(f"{study.settings.title}: live").wait_for(state="visible")
    counts = store.counts()
    page.get_by_text(f"{counts['raters_finished']} finished, {study.planned_raters} planned").wait_for()
    page.get_by_text(f"answers: {counts['answers']} of {counts['items_assigned']} assigned items").wait_for()
    assert page.get_by_role("button", name="Download the export (unblinded)").is_visible()
    assert page.get_by_text("Item 1 of", exact=False).count() == 0
    # a wrong admin token is refused like any other bad link
    page.goto(f"{base}?admin=not-the-admin-token")
    page.get_by_text(REFUSED, exact=True).wait_for(state="visible")
    assert page.get_by_text(f"{study.settings.title}: live").count() == 0
