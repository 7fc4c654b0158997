"""Load on the rating server: N simulated raters complete a study at once through ``gradio_client``.

For each ``--concurrency`` value a fresh study is created in a temporary folder (noise images of
``--models`` models over ``--prompts`` prompts; by default exactly N raters are planned), served by
``pixart-bench study serve`` as a subprocess, and N raters (one ``gradio_client.Client`` each, on its own
thread in this process) enter with their invites and answer every item with random valid rankings.
Printed per run:

- answers per second (all answers over the wall time from the first entry to the last code),
- p50 / p95 / max latency of one ``/submit`` (the commit and the next item, as the client sees it),
- the CPU seconds the server process and the simulated clients used during the run,
- lost answers (acknowledged to a rater but missing from the database or stored with other ranks, and
  raters left without a completion code) and duplicated ones (more than one row for a rater's item).

The raters run on the same machine as the server and share its CPUs, so on a small machine the figures
include the clients' own cost. ``--db`` runs on PostgreSQL: give a server URL whose role may create
databases (``postgresql+psycopg://USER:PASSWORD@HOST/postgres``); each run creates its own database
``study_bench_<random>`` there and drops it afterwards.

    .venv/bin/python benchmarks/study_load.py
    .venv/bin/python benchmarks/study_load.py --concurrency 1 16 --json study_load.json
    .venv/bin/python benchmarks/study_load.py --db postgresql+psycopg://study:study@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import secrets
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from human_study.loadtest import Server, SimRater, make_study
from human_study.storage import StudyStore, answers, assignments, raters, token_hash

ADMIN = "bench-admin-token"


@contextlib.contextmanager
def fresh_database(server_url: str | None):
    """None (SQLite in the study folder), or a new PostgreSQL database on ``server_url``, dropped after."""
    if server_url is None:
        yield None
        return
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"study_bench_{secrets.token_hex(6)}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_once(args, concurrency: int) -> dict:
    """One study, one server at ``concurrency``, ``args.raters`` raters; the measured figures."""
    with tempfile.TemporaryDirectory(prefix="study-load-") as tmp, fresh_database(args.db) as db_url:
        per_prompt = args.raters_per_prompt or max(1, args.raters * min(args.items_per_rater, args.prompts)
                                                   // args.prompts)
        study = make_study(Path(tmp), n_prompts=args.prompts, n_models=args.models, db_url=db_url,
                           items_per_rater=args.items_per_rater, raters_per_prompt=per_prompt,
                           attention_rate=args.attention_rate, seed=args.seed)
        store = StudyStore(study.database_url(), study.study_id)
        tokens = store.add_invites(args.raters)
        store.close()
        server = Server(study.folder, ADMIN, concurrency=concurrency, db_url=db_url, log=Path(tmp) / "serve.log")
        sims = []
        try:
            server.start()
            sims = [SimRater(server.url, f"token={t}", study, seed=args.seed * 100_003 + i)
                    for i, t in enumerate(tokens)]

            def one(rater):
                try:
                    return rater.run()
                except Exception as e:  # noqa: BLE001 - counted as a rater left without a code
                    return e

            server_cpu0, start, client_cpu0 = cpu_seconds(server.process.pid), time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(len(sims)) as pool:
                codes = list(pool.map(one, sims))
            wall = time.perf_counter() - start
            client_cpu = time.process_time() - client_cpu0
            server_cpu = cpu_seconds(server.process.pid)
            server_cpu = None if server_cpu is None or server_cpu0 is None else server_cpu - server_cpu0
        finally:
            for r in sims:
                r.close()
            server.kill()
        errors = [c for c in codes if not isinstance(c, str)]
        lost, duplicated, stored = count_lost(study, sims, tokens)
        latencies = np.array([x for r in sims for x in r.latencies]) * 1000
        n = len(latencies)
        return {"backend": "postgresql" if db_url else "sqlite", "concurrency": concurrency, "raters": args.raters,
                "items_per_rater_with_checks": len(study.plan(0)), "answers": n, "stored": stored, "wall_s": round(wall, 2),
                "answers_per_s": round(n / wall, 2),
                "submit_ms": {"p50": round(float(np.percentile(latencies, 50)), 1),
                              "p95": round(float(np.percentile(latencies, 95)), 1),
                              "max": round(float(latencies.max()), 1)} if n else None,
                "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
                "clients_cpu_s": round(client_cpu, 2),
                "lost": lost, "duplicated": duplicated, "raters_without_code": len(errors),
                "first_error": repr(errors[0]) if errors else None}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def count_lost(study, sims: list[SimRater], tokens: list[str]) -> tuple[int, int, int]:
    """(lost, duplicated, stored answers): acknowledged answers missing or changed in the database, plus
    assigned items of the raters left unanswered; rows beyond one per (rater, item)."""
    store = StudyStore(study.database_url(), study.study_id)
    try:
        with store.engine.connect() as c:
            ids = {r.token_hash: r.id for r in c.execute(select(raters.c.token_hash, raters.c.id))}
            items = {(a.rater_id, tuple(a.images)): a.position for a in c.execute(select(assignments))}
            rows = list(c.execute(select(answers.c.rater_id, answers.c.position, answers.c.ranks)))
            n_assigned = len(items)
    finally:
        store.close()
    stored = {(a.rater_id, a.position): a.ranks for a in rows}
    lost = 0
    for rater, token in zip(sims, tokens):
        rid = ids[token_hash(token)]
        for images, ranks in rater.acked:
            if stored.get((rid, items.get((rid, images)))) != ranks:
                lost += 1
    lost += n_assigned - len(stored)  # items never answered (a rater stopped by an error)
    duplicated = sum(n - 1 for n in Counter((a.rater_id, a.position) for a in rows).values())
    return lost, duplicated, len(rows)


def table(results: list[dict]) -> str:
    head = ["backend", "concurrency", "raters", "answers", "wall s", "answers/s", "p50 ms", "p95 ms", "max ms",
            "server CPU s", "clients CPU s", "lost", "duplicated"]
    lines = [head]
    for r in results:
        ms = r["submit_ms"] or {"p50": math.nan, "p95": math.nan, "max": math.nan}
        lines.append([r["backend"], r["concurrency"], r["raters"], r["answers"], r["wall_s"], r["answers_per_s"],
                      ms["p50"], ms["p95"], ms["max"], r["server_cpu_s"], r["clients_cpu_s"], r["lost"],
                      r["duplicated"]])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(v).rjust(w) for v, w in zip(row, widths)) for row in lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raters", type=int, default=50, help="simulated raters at once")
    p.add_argument("--prompts", type=int, default=40)
    p.add_argument("--models", type=int, default=2)
    p.add_argument("--items-per-rater", type=int, default=8)
    p.add_argument("--raters-per-prompt", type=int, default=None,
                   help="default: raters x items-per-rater / prompts (every rater has a planned slot)")
    p.add_argument("--attention-rate", type=float, default=0.125)
    p.add_argument("--concurrency", type=int, nargs="+", default=[16],
                   help="the server's --concurrency; several values run one after another")
    p.add_argument("--db", default=None, help="a PostgreSQL server URL (a fresh database is made there per run); "
                   "default: SQLite in the study folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    if args.raters < 1 or any(c < 1 for c in args.concurrency):
        p.error("--raters and --concurrency must be at least 1")

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results = []
    for concurrency in args.concurrency:
        results.append(run_once(args, concurrency))
        print(f"done: concurrency {concurrency} ({results[-1]['wall_s']} s)", file=sys.stderr, flush=True)
    print(table(results))
    for r in results:
        if r["first_error"]:
            print(f"concurrency {r['concurrency']}: {r['raters_without_code']} rater(s) without a code, e.g. "
                  f"{r['first_error']}")
    if args.json:
        record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "platform": platform.platform(),
                              "load_average_1min_before": load_before},
                  "settings": {k: v for k, v in vars(args).items() if k not in ("json", "db")},
                  "results": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"→ {args.json}")
    return 0 if all(r["lost"] == 0 and r["duplicated"] == 0 and not r["first_error"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
