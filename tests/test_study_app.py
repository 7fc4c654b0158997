"""The rating app over HTTP, in-process: entry, answers, resume, admin gating and blindness.

One study (6 prompts, 3 models with distinctive names, 3 items and 1 attention check per rater) is
served once for the module with ``human_study.app.launch(..., port=None, block=False)``; each test
talks to it through ``gradio_client`` (the way a browser's calls reach the server) with its own invite
tokens, and reads the database directly to check what was stored. Private endpoints (the admin's
export and refresh) are called the way a browser would, through the raw queue protocol, to show that
a rater's session cannot reach them whatever it sends.

Blindness is checked on what leaves the server: the image URLs, the served bytes (pixels equal to the
model's source image, no model name or path inside), the page and its config before entry, and the
study's own files (design and database), which must not be served at all.

The last tests are unit tests of ``human_study.answers.tables`` on a store filled through
``RatingService`` (no server): screen positions mapped back to models, checks scored, failed raters
excluded.
"""

from __future__ import annotations

import io
import json
import random
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_helpers import MODEL_NAMES, PROMPT_WORD, SimRater, client, make_study, parse_view, release

from human_study.answers import RATER_COLUMNS, check_passed, tables
from human_study.service import REFUSED, RatingService
from human_study.storage import StudyStore, answers, raters

ADMIN = "admin-secret-0123"
K = 3  # models, i.e. images per item


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The study, its store and service, served in this process; closed even when a test fails."""
    from human_study.app import launch

    root = tmp_path_factory.mktemp("app")
    study = make_study(root, n_prompts=6, n_models=K, items_per_rater=3, raters_per_prompt=2, attention_rate=0.3,
                       seed=7)
    store = StudyStore(study.database_url(), study.study_id)
    service = RatingService(study, store, ADMIN)
    demo = None
    try:
        demo = launch(study, service, port=None, block=False, quiet=True)
        yield SimpleNamespace(study=study, store=store, service=service, demo=demo, url=demo.local_url,
                              sources=json.loads((study.folder / "study.json").read_text())["image_sources"])
    finally:
        if demo is not None:
            demo.close()
        store.close()


def invite(served) -> str:
    return served.store.add_invites(1)[0]


def enter(served, query: str):
    """(client, view) of a fresh page session entered with ``query``."""
    c = client(served.url)
    return c, parse_view(c.predict(query, api_name="/enter"), K)


def rater_id(served, token: str) -> int:
    return served.store.rater_by_token(token).id


def stored(served, rid: int) -> dict[int, dict]:
    """{position: ranks} of one rater's stored answers."""
    with served.store.engine.connect() as c:
        rows = c.execute(select(answers.c.position, answers.c.ranks).where(answers.c.rater_id == rid)).all()
    return {r.position: r.ranks for r in rows}


def n_raters(served) -> int:
    with served.store.engine.connect() as c:
        return c.execute(select(func.count()).select_from(raters)).scalar()


def ranks_args(quality, alignment) -> list:
    return [*quality, *alignment]


def get(served, path: str) -> httpx.Response:
    return httpx.get(urllib.parse.urljoin(served.url, path), timeout=30)


def call_private(served, session: str, fn_name: str, data: list) -> dict:
    """Call an event handler the page has but the API does not list (``api_visibility="private"``) the
    way the browser does: join the queue with its ``fn_index`` under ``session``, read the result."""
    fn_index = next(i for i, f in served.demo.fns.items() if f.name == fn_name)
    with httpx.Client(base_url=served.url, timeout=30) as h:
        joined = h.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                       "event_data": None, "trigger_id": None})
        assert joined.status_code == 200, joined.text
        with h.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        return msg
    raise AssertionError(f"{fn_name}: the queue closed without a result")


def leaks(text: str, served) -> list[str]:
    """The study secrets found in ``text``: model names, prompt text, image ids, the study id."""
    study = served.study
    secrets = [*study.models, PROMPT_WORD, study.study_id, *(i for row in study.images for i in row)]
    return [s for s in secrets if s in text]


# --- entry ---------------------------------------------------------------------------------------------------

def test_an_invite_enters_at_item_1_with_k_images_in_the_logged_screen_order(served):
    token = invite(served)
    c, view = enter(served, f"token={token}")
    try:
        rid = rater_id(served, token)
        _, total, position = served.store.progress(rid)
        assert view.message == ""
        assert view.item == (1, total) and total == 4  # 3 prompts + 1 attention check
        item = served.store.assignment(rid, position)
        assert view.prompt == served.study.prompts[item.prompt]
        assert len(view.images) == K
        assert view.image_ids == item.images  # what is shown is what the log says was shown
        assert view.code is None and view.dashboard == ""
    finally:
        release(c)


@pytest.mark.parametrize("query", ["", "token=not-an-invite", "token=", "tokens=x", "PROLIFIC_PID=abc",
                                   "key=&PROLIFIC_PID=abc"])
def test_an_invalid_or_absent_token_gets_the_refusal_and_nothing_of_the_study(served, query):
    before = n_raters(served)
    c, view = enter(served, query)
    try:
        assert view.message == REFUSED
        assert (view.progress, view.prompt, view.images, view.finish, view.dashboard) == ("", "", [], "", "")
        assert n_raters(served) == before  # no rater made
        with pytest.raises(Exception, match="link you were given"):
            c.predict(*ranks_args("123", "123"), api_name="/submit")
    finally:
        release(c)


# --- answers -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    ranks_args(["1", "1", "2"], ["1", "2", "3"]),  # duplicate quality ranks (no ties in this study)
    ranks_args(["1", "2", "3"], ["3", "3", "3"]),  # duplicate alignment ranks
    ranks_args(["1", "2", None], ["1", "2", "3"]),  # a missing rank
    ranks_args([None] * 3, [None] * 3),  # nothing chosen
    ranks_args(["1", "2", "4"], ["1", "2", "3"]),  # not one of the choices
])
def test_wrong_ranks_raise_an_error_and_store_nothing(served, bad):
    token = invite(served)
    c, _ = enter(served, f"token={token}")
    try:
        with pytest.raises(Exception) as raised:
            c.predict(*bad, api_name="/submit")
        assert "rank" in str(raised.value) or "choices" in str(raised.value)
        rid = rater_id(served, token)
        assert stored(served, rid) == {}
        # the page is still on item 1, and a valid answer goes through
        again = parse_view(c.predict(*ranks_args("123", "321"), api_name="/submit"), K)
        assert again.item == (2, 4)
        assert stored(served, rid) == {0: {"quality": [1, 2, 3], "alignment": [3, 2, 1]}}
    finally:
        release(c)


def test_a_full_sequence_completes_with_a_completion_code(served):
    token = invite(served)
    rater = SimRater(served.url, f"token={token}", served.study, seed=1)
    try:
        code = rater.run()
        assert code and len(code) == 8
        rid = rater_id(served, token)
        r = served.store.rater_by_id(rid)
        assert r.finished and r.completion_code == code
        got = stored(served, rid)
        assert sorted(got) == [0, 1, 2, 3]
        # what the server stored is what the rater was acknowledged for, item by item
        for position, (images, ranks) in enumerate(rater.acked):
            assert served.store.assignment(rid, position).images == list(images)
            assert got[position] == ranks
        # Submit again on the thank-you page, or come back: the same code, nothing stored
        after = parse_view(rater.client.predict(*ranks_args("123", "123"), api_name="/submit"), K)
        assert after.code == code
        c, back = enter(served, f"token={token}")
        release(c)
        assert back.code == code and back.images == [] and back.prompt == ""
        assert sorted(stored(served, rid)) == [0, 1, 2, 3]
    finally:
        rater.close()


def test_a_reload_resumes_at_the_first_unanswered_item(served):
    token = invite(served)
    first = SimRater(served.url, f"token={token}", served.study, seed=2)
    try:
        first.run(max_answers=2)
        assert first.view.item == (3, 4)
    finally:
        first.close()
    c, view = enter(served, f"token={token}")  # a new page session: a reload, another browser
    try:
        assert view.item == (3, 4)
        assert view.image_ids == first.view.image_ids and view.prompt == first.view.prompt
        assert sorted(stored(served, rater_id(served, token))) == [0, 1]
    finally:
        release(c)


def test_one_item_answered_from_two_pages_is_stored_once_and_the_first_answer_stays(served):
    token = invite(served)
    (a, view_a), (b, view_b) = enter(served, f"token={token}"), enter(served, f"token={token}")
    try:
        assert view_a.item == view_b.item == (1, 4) and view_a.image_ids == view_b.image_ids
        after_a = parse_view(a.predict(*ranks_args("123", "123"), api_name="/submit"), K)
        after_b = parse_view(b.predict(*ranks_args("321", "321"), api_name="/submit"), K)
        assert stored(served, rater_id(served, token)) == {0: {"quality": [1, 2, 3], "alignment": [1, 2, 3]}}
        # the second page is not stuck: it moves on to the rater's next unanswered item
        assert after_a.item == after_b.item == (2, 4)
    finally:
        release(a)
        release(b)


# --- crowd entry ---------------------------------------------------------------------------------------------

def test_crowd_entry_makes_one_rater_per_participant_who_resumes_and_a_wrong_key_is_refused(served):
    key = served.store.secret("entry_key")
    pid = f"prolific-{random.Random(3).getrandbits(32):08x}"
    query = f"key={key}&PROLIFIC_PID={pid}&STUDY_ID=s1&SESSION_ID=x1"
    before = n_raters(served)
    first = SimRater(served.url, query, served.study, seed=3)
    try:
        first.enter()
        assert first.view.item == (1, 4)
        first.answer()
    finally:
        first.close()
    c, again = enter(served, query)  # the participant comes back
    release(c)
    assert again.item == (2, 4)
    assert n_raters(served) == before + 1
    with served.store.engine.connect() as conn:
        row = conn.execute(select(raters.c.id, raters.c.entry).where(raters.c.external_id == pid)).one()
    assert row.entry == {"PROLIFIC_PID": pid, "STUDY_ID": "s1", "SESSION_ID": "x1"}
    assert sorted(stored(served, row.id)) == [0]
    for wrong in (f"key={key[:-1]}x&PROLIFIC_PID={pid}", f"key={key}x&PROLIFIC_PID=other", f"key={key}"):
        c, view = enter(served, wrong)
        release(c)
        assert view.message == REFUSED and view.images == [] and view.prompt == ""
    assert n_raters(served) == before + 1


def test_one_participant_opening_several_tabs_at_once_is_one_rater(served):
    key = served.store.secret("entry_key")
    query = f"key={key}&PROLIFIC_PID=tabs-{random.Random(5).getrandbits(32):08x}"
    before = n_raters(served)
    clients = [client(served.url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            views = list(pool.map(lambda c: parse_view(c.predict(query, api_name="/enter"), K), clients))
    finally:
        for c in clients:
            release(c)
    assert n_raters(served) == before + 1
    assert all(v.item == (1, 4) and v.image_ids == views[0].image_ids for v in views)


# --- the admin -----------------------------------------------------------------------------------------------

def test_the_admin_token_shows_the_dashboard_and_a_wrong_one_is_refused(served):
    c, view = enter(served, f"admin={ADMIN}")
    try:
        assert view.message == "" and view.images == [] and view.prompt == ""
        assert "live" in view.dashboard and view.dashboard == served.service.dashboard()
        # the admin's page cannot answer items
        before = served.store.counts()["answers"]
        with pytest.raises(Exception, match="link you were given"):
            c.predict(*ranks_args("123", "123"), api_name="/submit")
        assert served.store.counts()["answers"] == before
    finally:
        release(c)
    for wrong in (f"admin={ADMIN}x", f"admin={ADMIN[:-1]}", "admin=", f"token={ADMIN}"):
        c, view = enter(served, wrong)
        release(c)
        assert view.message == REFUSED and view.dashboard == ""


def test_a_rater_session_cannot_export_or_refresh_whatever_it_sends(served):
    token = invite(served)
    c, _ = enter(served, f"token={token}")
    try:
        for fn in ("on_export", "on_refresh"):
            for state in (None, {"admin": True}):  # the state is the server's: a forged one is ignored
                msg = call_private(served, c.session_hash, fn, [state])
                assert msg["success"] is False and msg["output"]["error"] == "admin only", msg
        # nor answer for another rater by naming it
        victim = invite(served)
        vc, _ = enter(served, f"token={victim}")
        release(vc)
        vid = rater_id(served, victim)
        msg = call_private(served, "fresh-session-1", "on_submit",
                           [{"rater": vid, "position": 0}, *ranks_args("123", "123")])
        assert msg["success"] is False
        assert stored(served, vid) == {}
    finally:
        release(c)
    # the admin's session can export: the gate is the session, not the endpoint
    a, _ = enter(served, f"admin={ADMIN}")
    try:
        msg = call_private(served, a.session_hash, "on_export", [None])
        assert msg["success"] is True
        export = get(served, msg["output"]["data"][0]["url"])
        assert export.status_code == 200 and export.json()["models"] == list(served.study.models)
    finally:
        release(a)


# --- blindness -------------------------------------------------------------------------------------------------

def test_served_images_name_no_model_and_no_path_and_keep_the_source_pixels(served):
    token = invite(served)
    rater = SimRater(served.url, f"token={token}", served.study, seed=4)
    try:
        rater.enter()
        views = [rater.view]
        while rater.view.item is not None:
            views.append(rater.answer())
    finally:
        rater.close()
    seen = 0
    for view in views:
        for image in view.images:
            image_id = Path(image["orig_name"]).stem
            source = Path(served.sources[image_id])
            url = urllib.parse.unquote(image["url"])
            for secret in (*MODEL_NAMES, PROMPT_WORD, source.name, str(source.parent), str(served.study.folder)):
                assert secret not in url, (secret, url)
            assert len(image_id) == 16 and all(ch in "0123456789abcdef" for ch in image_id)
            response = get(served, image["url"])
            assert response.status_code == 200
            body = response.content
            for secret in (*MODEL_NAMES, PROMPT_WORD, str(source.parent)):
                assert secret.encode() not in body, secret
            with Image.open(io.BytesIO(body)) as served_im, Image.open(source) as source_im:
                assert served_im.format == "PNG" and not served_im.info.get("text")
                assert np.array_equal(np.asarray(served_im.convert("RGB")), np.asarray(source_im.convert("RGB")))
            seen += 1
    assert seen == 4 * K


def test_the_study_design_and_database_are_not_served_but_images_are(served):
    folder = served.study.folder.resolve()
    image = served.study.image_path(served.study.images[0][0]).resolve()
    assert get(served, f"gradio_api/file={image}").status_code == 200
    source = Path(served.sources[served.study.images[0][0]]).resolve()
    refused = [folder / "study.json", folder / "study.db", folder / "study.db-wal", folder / "images" / ".."
               / "study.json", source, source.parent.parent]
    for path in refused:
        response = get(served, f"gradio_api/file={path}")
        assert response.status_code != 200, path
        assert not leaks(response.text.replace(str(path), ""), served), path  # (the refusal echoes the path)


@pytest.mark.parametrize("path", ["", "?token=not-an-invite", "config", "gradio_api/info", "?admin=wrong"])
def test_nothing_of_the_study_is_in_the_page_before_entry(served, path):
    response = get(served, path)
    assert response.status_code == 200
    assert leaks(response.text, served) == []


# --- answers → tables (no server) ---------------------------------------------------------------------------

def test_check_passed_needs_the_decoy_strictly_worst():
    assert check_passed([1, 2, 3], 2) and check_passed([2, 3, 1], 1)
    assert not check_passed([1, 3, 3], 2)  # tied with another image: not clearly spotted
    assert not check_passed([1, 2, 3], 0)


@pytest.fixture
def filled(tmp_path):
    """A study answered through RatingService: rater A ranks by model (zebramodel best on quality,
    worst on alignment) and spots every decoy; B ranks the same way but ranks the decoy best; C was
    invited and never came; D answered one item and left."""
    study = make_study(tmp_path, n_prompts=8, n_models=K, items_per_rater=4, raters_per_prompt=2,
                       attention_rate=0.25, seed=11)
    store = StudyStore(study.database_url(), study.study_id)
    service = RatingService(study, store, ADMIN)
    tokens = dict(zip("ABCD", store.add_invites(4)))
    ids = {}
    try:
        for name in "ABD":
            entry = service.enter({"token": tokens[name]})
            ids[name] = entry.rater_id
            for _ in range(1 if name == "D" else 5):  # 4 prompts and 1 check each
                item = store.assignment(entry.rater_id, entry.item.position)
                quality = [1 + m for m in item.models]  # rank by model index, whatever the screen order
                alignment = [K - m for m in item.models]
                if item.kind == "check":  # B gives the decoy the best rank (fails), A and D the worst
                    decoy_rank = 1 if name == "B" else K
                    alignment = [r for r in range(1, K + 1) if r != decoy_rank]
                    alignment.insert(item.decoy, decoy_rank)
                entry = service.submit(entry.rater_id, entry.item.position, {"quality": quality,
                                                                              "alignment": alignment})
            assert (entry.code is not None) == (name != "D")
        yield SimpleNamespace(study=study, store=store, ids=ids)
    finally:
        store.close()


def test_tables_map_screen_positions_back_to_models(filled):
    rows = filled.store.rows()
    judgements, _ = tables(filled.study, rows)
    items = [a for a in rows["assignments"] if a["kind"] == "item"]
    answered = {(a["rater_id"], a["position"]) for a in rows["answers"]}
    answered_items = [a for a in items if (a["rater_id"], a["position"]) in answered]
    # the test has power: some items show the models in another order than the study's
    assert any(a["models"] != sorted(a["models"]) for a in answered_items)
    assert len(judgements) == len(answered_items) * K * 2  # checks are not judgements
    index = {m: i for i, m in enumerate(filled.study.models)}
    expected = {"quality": lambda m: 1 + index[m], "alignment": lambda m: K - index[m]}
    for row in judgements.itertuples():
        assert row.rank == expected[row.criterion](row.model), row
    assert set(judgements["model"]) == set(MODEL_NAMES[:K])
    assert sorted(set(judgements["prompt"])) == sorted({a["prompt"] for a in answered_items})


def test_tables_score_the_checks_and_flag_the_raters_who_fail_them(filled):
    judgements, table = tables(filled.study, filled.store.rows())
    assert list(table.columns) == RATER_COLUMNS
    by_id = {r["id"]: r for r in filled.store.rows()["raters"]}
    names = {k: f"r{by_id[v]['slot']:04d}" for k, v in filled.ids.items()}
    table = table.set_index("rater")
    assert sorted(table.index) == sorted(names.values())  # C never came: not a rater of the study
    a, b, d = table.loc[names["A"]], table.loc[names["B"]], table.loc[names["D"]]
    assert (a.n_checks, a.failed_checks, a.excluded, a.finished, a.answers) == (1, 0, False, True, 5)
    assert (b.n_checks, b.failed_checks, b.excluded, b.finished, b.answers) == (1, 1, True, True, 5)
    assert (d.finished, d.answers, d.excluded) == (False, 1, False)
    # judgements of an excluded rater are still in the table (the aggregation decides), under its name
    assert {names["A"], names["B"]} <= set(judgements["rater"])
