"""The real server under load and through a crash (slow: each test starts ``pixart-bench study serve``).

**Load.** 50 raters, one ``gradio_client.Client`` each on its own thread, complete a study of 40 prompts
and 2 models (8 prompts and 1 attention check per rater, 10 raters per prompt: exactly the 50 planned
raters) at once, with seeded random rankings; every fifth rater fails its check on purpose. Nothing may
be lost or doubled: every rater gets a completion code, the database holds exactly the assigned items'
answers with the ranks each rater was acknowledged for, each prompt has exactly 10 item ratings, and
the raters flagged by ``answers.tables`` are exactly the careless ones.

**Crash.** Raters answer continuously; once part of the study is acknowledged the server's process group
is killed with SIGKILL (no shutdown code runs) and a new server starts on the same database. Every answer
a rater was acknowledged for before the kill must be stored, every rater resumes at its first
unanswered item, and all can finish.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_helpers import ROOT, Server, SimRater, make_study

from human_study.answers import tables
from human_study.storage import StudyStore, answers, assignments, raters, token_hash

pytestmark = pytest.mark.slow

ADMIN = "load-admin-token"
RATERS = 50
SETTINGS = {"n_prompts": 40, "n_models": 2, "items_per_rater": 8, "raters_per_prompt": 10, "attention_rate": 0.125,
            "seed": 5}


def cli_invites(study_folder: Path, n: int, url: str) -> list[str]:
    """Tokens of ``n`` invites made by ``pixart-bench study invite`` (parsed from its links)."""
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "pixart-bench"), "study", "invite", str(study_folder),
                          "--n", str(n), "--url", url], capture_output=True, text=True, timeout=120, check=True)
    links = out.stdout.split()
    assert len(links) == n and all(link.startswith(url) for link in links), out.stdout
    return [parse_qs(urlparse(link).query)["token"][0] for link in links]


def database(study) -> dict:
    """Raters (by token hash), assignments and answers, read straight from the database."""
    store = StudyStore(study.database_url(), study.study_id)
    try:
        with store.engine.connect() as c:
            return {"raters": {r.token_hash: r for r in c.execute(select(raters))},
                    "assignments": {(a.rater_id, a.position): a for a in c.execute(select(assignments))},
                    "answers": list(c.execute(select(answers))),
                    "rows": store.rows()}
    finally:
        store.close()


def acked_are_stored(rater: SimRater, token: str, db: dict) -> int:
    """Check every answer ``rater`` was acknowledged for is stored with its ranks; returns how many."""
    rid = db["raters"][token_hash(token)].id
    by_images = {tuple(a.images): a.position for (r, _), a in db["assignments"].items() if r == rid}
    stored = {a.position: a.ranks for a in db["answers"] if a.rater_id == rid}
    for images, ranks in rater.acked:
        position = by_images[images]
        assert stored.get(position) == ranks, (token, position, stored.get(position), ranks)
    return len(rater.acked)


def run_all(raters: list[SimRater], **kwargs) -> list:
    """Run every rater on its own thread; returns each one's code or exception."""
    def one(rater):
        try:
            return rater.run(**kwargs)
        except Exception as e:  # noqa: BLE001 - reported per rater by the caller
            return e
    with ThreadPoolExecutor(len(raters)) as pool:
        return list(pool.map(one, raters))


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path, **SETTINGS)


def test_fifty_concurrent_raters_complete_the_study_with_nothing_lost_or_doubled(study):
    assert study.planned_raters == RATERS
    server = Server(study.folder, ADMIN)
    simulated = []
    try:
        server.start()
        tokens = cli_invites(study.folder, RATERS, server.url)
        careless = set(range(0, RATERS, 5))
        simulated = [SimRater(server.url, f"token={t}", study, seed=i, fail_checks=i in careless)
                     for i, t in enumerate(tokens)]
        start = time.perf_counter()
        codes = run_all(simulated)
        elapsed = time.perf_counter() - start
        failures = [(i, c) for i, c in enumerate(codes) if not isinstance(c, str)]
        assert not failures, f"{failures[:3]}\n{server.log()[-3000:]}"
    finally:
        for r in simulated:
            r.close()
        server.kill()
    db = database(study)
    n_answers = sum(len(r.latencies) for r in simulated)
    print(f"\n{RATERS} raters, {n_answers} answers in {elapsed:.1f} s ({n_answers / elapsed:.1f}/s)")

    # every rater finished, with the code the database gave it
    for token, code in zip(tokens, codes):
        assert db["raters"][token_hash(token)].completion_code == code
    # 0 lost: one answer per assigned item, each with the ranks the rater was acknowledged for
    assert len(db["answers"]) == len(db["assignments"]) == RATERS * 9 == n_answers
    assert sum(acked_are_stored(r, t, db) for r, t in zip(simulated, tokens)) == n_answers
    # 0 doubled
    keys = Counter((a.rater_id, a.position) for a in db["answers"])
    assert max(keys.values()) == 1 and set(keys) == set(db["assignments"])
    # balance: each prompt rated exactly raters_per_prompt times (checks not counted)
    per_prompt = Counter(db["assignments"][(a.rater_id, a.position)].prompt for a in db["answers"]
                         if db["assignments"][(a.rater_id, a.position)].kind == "item")
    assert per_prompt == {p: SETTINGS["raters_per_prompt"] for p in range(SETTINGS["n_prompts"])}
    # the raters who failed their check on purpose, and only they, are flagged
    _, table = tables(study, db["rows"])
    slot_of = {t: db["raters"][token_hash(t)].slot for t in tokens}
    flagged = {int(name[1:]) for name in table.loc[table.excluded, "rater"]}
    assert flagged == {slot_of[tokens[i]] for i in careless}
    assert table["finished"].all() and (table["n_checks"] == 1).all()


def test_a_server_killed_with_sigkill_loses_no_acknowledged_answer_and_raters_resume(study):
    n = 20
    store = StudyStore(study.database_url(), study.study_id)
    tokens = store.add_invites(n)
    store.close()
    simulated = [SimRater("", f"token={t}", study, seed=100 + i, timeout=60) for i, t in enumerate(tokens)]
    first = Server(study.folder, ADMIN)
    second = Server(study.folder, ADMIN)
    try:
        first.start()
        for r in simulated:
            r.url = first.url
        # raters answer until the server dies under them
        results = []

        def answer_until_killed(rater):
            try:
                rater.run()
            except Exception as e:  # noqa: BLE001 - the expected end: the server is gone
                results.append(e)
        threads = [threading.Thread(target=answer_until_killed, args=(r,), daemon=True) for r in simulated]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(len(r.acked) for r in simulated) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.kill()  # SIGKILL to the process group, mid-answer
        acked_at_kill = sum(len(r.acked) for r in simulated)
        for t in threads:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in threads), "a rater hung on the killed server"
        assert results, "no rater was cut off by the kill"
        assert 60 <= acked_at_kill < n * 9, acked_at_kill  # the kill came mid-study

        # every acknowledged answer survived the kill
        db = database(study)
        assert sum(acked_are_stored(r, t, db) for r, t in zip(simulated, tokens)) == sum(
            len(r.acked) for r in simulated)

        # a new server on the same database: every rater resumes at its first unanswered item and finishes
        second.start()
        for r, token in zip(simulated, tokens):
            r.close()
            r.url, r.view = second.url, None
            rid = db["raters"][token_hash(token)].id
            done = sum(1 for a in db["answers"] if a.rater_id == rid)
            view = r.enter()
            if done < 9:
                assert view.item == (done + 1, 9), (token, view.item, done)
            else:
                assert view.code is not None
        codes = run_all(simulated)
        assert all(isinstance(c, str) for c in codes), f"{codes}\n{second.log()[-3000:]}"
    finally:
        for r in simulated:
            r.close()
        first.kill()
        second.kill()
    db = database(study)
    assert len(db["answers"]) == len(db["assignments"]) == n * 9
    assert len({(a.rater_id, a.position) for a in db["answers"]}) == n * 9
    assert sum(acked_are_stored(r, t, db) for r, t in zip(simulated, tokens)) == sum(len(r.acked) for r in simulated)
    assert all(db["raters"][token_hash(t)].completion_code == c for t, c in zip(tokens, codes))


def test_the_load_benchmark_runs_and_finds_nothing_lost(tmp_path):
    """benchmarks/study_load.py end to end on a small study (its figures are for docs; this checks it runs
    and counts correctly)."""
    from conftest import load_script

    bench = load_script("study_load")
    out = tmp_path / "load.json"
    assert bench.main(["--raters", "3", "--prompts", "6", "--items-per-rater", "2", "--concurrency", "1", "4",
                       "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["concurrency"] for r in record["results"]] == [1, 4]
    for r in record["results"]:
        # 3 raters × (2 prompts + 1 check), all acknowledged and stored once
        assert (r["answers"], r["stored"], r["lost"], r["duplicated"], r["raters_without_code"]) == (9, 9, 0, 0, 0)
        assert 0 < r["submit_ms"]["p50"] <= r["submit_ms"]["p95"] <= r["submit_ms"]["max"]
        assert r["answers_per_s"] > 0
