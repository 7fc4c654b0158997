"""The study's storage, on SQLite and on PostgreSQL: every test runs on both (the ``store_url`` fixture).

PostgreSQL comes from ``STUDY_TEST_PG_URL`` (e.g. ``postgresql+psycopg://study:study@127.0.0.1:5432/postgres``,
a role that may create databases): each test gets a fresh database ``study_<random>``, dropped after it.
Without that variable the PostgreSQL cases are skipped, except on CI (``CI=true``), where they fail:
``.ci/run`` starts PostgreSQL and sets the variable, so a missing one there is a broken setup, not a
reason to test less.

Concurrency is tested with real threads hitting one store at once (slot binding, submits, crowd
entries); durability with a child process killed by SIGKILL while it submits.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from human_study.errors import StudyError
from human_study.storage import Assignment, StudyStore, answers, assignments, metadata, raters, token_hash

ROOT = Path(__file__).resolve().parents[1]
PG_ENV = "STUDY_TEST_PG_URL"
ITEMS = 4  # items per slot in the test plan


def plan(slot: int) -> list[Assignment]:
    """A small made-up plan: ``ITEMS`` items of two models, the last one a check."""
    return [Assignment(i, (slot * ITEMS + i) % 50, "check" if i == ITEMS - 1 else "item", [(slot + i) % 2,
                       (slot + i + 1) % 2], [f"img{slot}-{i}-a", f"img{slot}-{i}-b"], 1 if i == ITEMS - 1 else None)
            for i in range(ITEMS)]


def _fresh_postgres(base: str):
    """Create ``study_<random>`` on the server of ``base``, yield its URL, drop it afterwards."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"study_{secrets.token_hex(6)}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - any failure here is a setup problem worth naming
        admin.dispose()
        pytest.fail(f"cannot create a test database with {PG_ENV}={make_url(base).render_as_string()}: {e}")
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set on CI: .ci/run starts PostgreSQL and sets {PG_ENV}; run the tests "
                        "through .ci/run (or export it) so the storage is tested on PostgreSQL too")
        pytest.skip(f"PostgreSQL storage tests: set {PG_ENV}=postgresql+psycopg://USER:PASSWORD@HOST:PORT/postgres")
    yield from _fresh_postgres(base)


@pytest.fixture
def open_store(store_url):
    """``open_store(study_id="s1")`` opens a store on the test's database; all are closed after the test."""
    opened = []

    def _open(study_id: str = "s1") -> StudyStore:
        store = StudyStore(store_url, study_id)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


def _count(store: StudyStore, table, *where) -> int:
    with store.engine.connect() as c:
        return c.execute(select(func.count()).select_from(table).where(*where)).scalar()


def _all_rows(store: StudyStore) -> str:
    """Every row of every table, as one string."""
    with store.engine.connect() as c:
        return "\n".join(repr(tuple(r)) for t in metadata.sorted_tables for r in c.execute(select(t)))


def _in_threads(n: int, work):
    """Run ``work(i)`` for i < n in n threads released at once; returns the results in order."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def _bound(store: StudyStore, n: int = 1):
    return [store.bind_slot(store.rater_by_token(t), plan) for t in store.add_invites(n)]


def test_tables_are_created_and_another_studys_database_is_refused(open_store):
    store = open_store("s1")
    assert {"meta", "raters", "assignments", "answers"} <= set(inspect(store.engine).get_table_names())
    assert open_store("s1").counts()["raters_invited_or_seen"] == 0  # reopening the same study is fine
    with pytest.raises(StudyError, match="holds study s1, not s2"):
        open_store("s2")


def test_invite_tokens_are_unique_and_stored_only_hashed(open_store):
    store = open_store()
    tokens = store.add_invites(30) + store.add_invites(5)
    assert len(tokens) == len(set(tokens)) == 35 and all(len(t) >= 20 for t in tokens)
    dump = _all_rows(store)
    assert not [t for t in tokens if t in dump]
    with store.engine.connect() as c:
        hashes = set(c.execute(select(raters.c.token_hash)).scalars())
    assert hashes == {token_hash(t) for t in tokens}
    ids = {store.rater_by_token(t).id for t in tokens}
    assert len(ids) == 35


def test_a_wrong_token_finds_no_rater(open_store):
    store = open_store()
    token = store.add_invites(1)[0]
    assert store.rater_by_token(token) is not None
    for wrong in (token[:-1], token + "x", token.upper() if token.upper() != token else token.lower(), "",
                  token_hash(token)):
        assert store.rater_by_token(wrong) is None, wrong


def test_concurrent_raters_get_distinct_slots_and_their_items_once(open_store):
    store = open_store()
    n = 20
    fresh = [store.rater_by_token(t) for t in store.add_invites(n)]
    assert all(r.slot is None for r in fresh)
    bound = _in_threads(n, lambda i: store.bind_slot(fresh[i], plan))
    assert sorted(r.slot for r in bound) == list(range(n))
    assert _count(store, assignments) == n * ITEMS
    for r in bound:
        got = [store.assignment(r.id, p) for p in range(ITEMS)]
        assert got == plan(r.slot), r
    # a second visit, even with a stale Rater read before binding, keeps the slot and writes nothing
    again = _in_threads(n, lambda i: store.bind_slot(fresh[i], plan))
    assert [r.slot for r in again] == [r.slot for r in bound]
    assert _count(store, assignments) == n * ITEMS
    assert store.counts()["raters_started"] == n


def test_submit_is_idempotent_and_keeps_the_first_answer(open_store):
    store = open_store()
    rater = _bound(store)[0]
    first = {"quality": [1, 2], "alignment": [2, 1]}
    assert store.submit(rater.id, 0, first, session="tab-1") is True
    assert store.submit(rater.id, 0, {"quality": [2, 1], "alignment": [1, 2]}, session="tab-2") is False
    with store.engine.connect() as c:
        rows = c.execute(select(answers).where(answers.c.rater_id == rater.id)).all()
    assert len(rows) == 1 and rows[0].ranks == first and rows[0].session == "tab-1"
    with pytest.raises(StudyError, match=f"no item {ITEMS}"):
        store.submit(rater.id, ITEMS, first)
    assert _count(store, answers) == 1


def test_concurrent_submits_lose_nothing(open_store):
    store = open_store()
    bound = _bound(store, 12)
    tasks = [(r.id, p) for r in bound for p in range(ITEMS)] * 2  # every answer sent twice (double clicks)
    random.Random(0).shuffle(tasks)

    def ranks(rater_id, position):
        return {"quality": [1, 2] if (rater_id + position) % 2 else [2, 1], "alignment": [rater_id, position]}

    results = _in_threads(len(tasks), lambda i: (tasks[i], store.submit(*tasks[i], ranks(*tasks[i]))))
    new = [task for task, fresh in results if fresh]
    assert sorted(new) == sorted(set(tasks))  # each answer stored exactly once, by one of its two submits
    assert _count(store, answers) == len(bound) * ITEMS
    with store.engine.connect() as c:
        for row in c.execute(select(answers)):
            assert row.ranks == ranks(row.rater_id, row.position)
    assert all(store.progress(r.id) == (ITEMS, ITEMS, None) for r in bound)


def test_progress_names_the_next_unanswered_position(open_store):
    store = open_store()
    unbound = store.rater_by_token(store.add_invites(1)[0])
    assert store.progress(unbound.id) == (0, 0, None)
    rater = _bound(store)[0]
    assert store.progress(rater.id) == (0, ITEMS, 0)
    store.submit(rater.id, 0, {"quality": [1, 2]})
    store.submit(rater.id, 2, {"quality": [1, 2]})
    assert store.progress(rater.id) == (2, ITEMS, 1)
    store.submit(rater.id, 1, {"quality": [1, 2]})
    assert store.progress(rater.id) == (3, ITEMS, 3)
    store.submit(rater.id, 3, {"quality": [1, 2]})
    assert store.progress(rater.id) == (ITEMS, ITEMS, None)


def test_finish_keeps_the_first_code(open_store):
    store = open_store()
    rater = _bound(store)[0]
    assert not rater.finished and rater.completion_code is None
    assert store.finish(rater.id, "FIRST-1") == "FIRST-1"
    assert store.finish(rater.id, "SECOND-2") == "FIRST-1"
    again = store.rater_by_id(rater.id)
    assert again.finished and again.completion_code == "FIRST-1"
    assert store.counts()["raters_finished"] == 1


def test_the_export_has_everything_but_the_token_hashes(open_store):
    store = open_store()
    tokens = store.add_invites(3)
    rater = store.bind_slot(store.rater_by_token(tokens[0]), plan)
    crowd = store.rater_by_external("PID-7", {"PROLIFIC_PID": "PID-7", "STUDY_ID": "S"})
    store.submit(rater.id, 1, {"quality": [2, 1], "alignment": [1, 2]}, session="sess")
    store.finish(rater.id, "CODE")
    rows = store.rows()
    assert len(rows["raters"]) == 4 and all("token_hash" not in r for r in rows["raters"])
    assert len(rows["assignments"]) == ITEMS and len(rows["answers"]) == 1
    answer = rows["answers"][0]
    assert (answer["rater_id"], answer["position"], answer["ranks"]) == (rater.id, 1, {"quality": [2, 1],
                                                                                       "alignment": [1, 2]})
    me = next(r for r in rows["raters"] if r["id"] == rater.id)
    assert me["slot"] == 0 and me["completion_code"] == "CODE" and me["finished_at"]
    assert next(r for r in rows["raters"] if r["id"] == crowd.id)["entry"]["STUDY_ID"] == "S"
    dump = json.dumps(rows)  # plain JSON: timestamps are strings
    assert not [t for t in tokens if t in dump or token_hash(t) in dump]


def test_a_crowd_participant_is_created_once_even_when_arriving_twice_at_once(open_store):
    store = open_store()
    entry = {"PROLIFIC_PID": "5f00abc", "STUDY_ID": "st", "SESSION_ID": "se"}
    got = _in_threads(20, lambda i: store.rater_by_external("5f00abc", entry))
    assert len({r.id for r in got}) == 1 and got[0].external_id == "5f00abc"
    assert _count(store, raters, raters.c.external_id == "5f00abc") == 1
    other = store.rater_by_external("6a11def", {})
    assert other.id != got[0].id and _count(store, raters) == 2
    assert store.rater_by_external("5f00abc").id == got[0].id


# --- durability: a killed writer loses nothing it reported committed (SQLite) ---------------------------------
CHILD = """
import sys
from human_study.storage import StudyStore
store = StudyStore(sys.argv[1], "durable")
rater_id = int(sys.argv[2])
print("ready", flush=True)
for position in range(int(sys.argv[3])):
    store.submit(rater_id, position, {"quality": [1, 2], "alignment": [position, 0]})
    print(position, flush=True)
print("done", flush=True)
"""


def test_answers_reported_committed_survive_sigkill(tmp_path):
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    store = StudyStore(url, "durable")
    n = 20_000
    rater = store.rater_by_token(store.add_invites(1)[0])
    rater = store.bind_slot(rater, lambda slot: [Assignment(p, p % 7, "item", [0, 1], ["a", "b"], None)
                                                for p in range(n)])
    store.close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(rater.id), str(n)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        printed = []
        while len(printed) < 40:  # let it commit a few, then kill it mid-loop
            line = child.stdout.readline().strip()
            assert line.isdigit(), (line, child.stderr.read())
            printed.append(int(line))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    printed += [int(x) for x in rest.split()]
    assert "done" not in rest and len(printed) < n, "the child finished before it was killed"
    assert printed == list(range(len(printed)))
    store = StudyStore(url, "durable")  # reopening recovers the WAL
    try:
        with store.engine.connect() as c:
            stored = sorted(c.execute(select(answers.c.position).where(answers.c.rater_id == rater.id)).scalars())
        assert set(printed) <= set(stored), sorted(set(printed) - set(stored))[:10]
        # the child commits, then prints: at most the one answer in between is stored but unreported
        assert stored == list(range(len(stored))) and len(stored) - len(printed) in (0, 1)
    finally:
        store.close()
