"""Where every judgement of a study lives: SQLAlchemy over SQLite (WAL) by default, PostgreSQL by URL.

Tables (one database holds one study; ``meta`` names it, so a database of another study is refused):

- ``raters``: one row per rater. ``token_hash`` is the SHA-256 of the rater's invite token (the token
  itself is printed once and never stored); ``external_id`` is the crowd platform's participant id
  (``?PROLIFIC_PID=...``) for raters who came in through the platform's shared link. ``slot`` is the
  rater's place in the study plan (``human_study.design``), bound at the first visit.
- ``assignments``: the items of a rater's sequence, written in one transaction when the slot is
  bound: the prompt, the kind (``item`` or ``check``), and the screen order: which model's image
  (and which opaque image id) stands at each screen position. This is the log of the randomisation.
- ``answers``: one row per (rater, position): the ranks given on each criterion, by screen position.
  Its primary key makes a second submission of the same item a no-op, so a double click, a second
  tab or a retried request never duplicates or changes an answer.

Every write is its own short transaction, committed before the caller shows the next item; SQLite runs
in WAL mode with ``synchronous=FULL`` and a busy timeout, so a killed server loses nothing committed and
concurrent raters do not fail on a locked database.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (JSON, Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, create_engine,
                        event, func, insert, select, update)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, NoSuchModuleError

from human_study.errors import StudyError

SCHEMA_VERSION = 1
metadata = MetaData()

meta = Table("meta", metadata,
             Column("key", String(64), primary_key=True),
             Column("value", Text, nullable=False))

raters = Table("raters", metadata,
               Column("id", Integer, primary_key=True, autoincrement=True),
               Column("token_hash", String(64), unique=True),
               Column("external_id", String(256), unique=True),
               Column("slot", Integer, unique=True),
               Column("entry", JSON),  # the URL parameters the rater came with (crowd platform ids)
               Column("created_at", DateTime(timezone=True), nullable=False),
               Column("started_at", DateTime(timezone=True)),
               Column("finished_at", DateTime(timezone=True)),
               Column("completion_code", String(64)))

assignments = Table("assignments", metadata,
                    Column("rater_id", Integer, ForeignKey("raters.id"), primary_key=True),
                    Column("position", Integer, primary_key=True),
                    Column("prompt", Integer, nullable=False),
                    Column("kind", String(16), nullable=False),  # "item" or "check"
                    Column("models", JSON, nullable=False),  # model index at each screen position
                    Column("images", JSON, nullable=False),  # opaque image id at each screen position
                    Column("decoy", Integer))  # checks: the screen position of the mismatched image

answers = Table("answers", metadata,
                Column("rater_id", Integer, ForeignKey("raters.id"), primary_key=True),
                Column("position", Integer, primary_key=True),
                Column("ranks", JSON, nullable=False),  # {criterion: [rank at screen position 0, 1, ...]}
                Column("submitted_at", DateTime(timezone=True), nullable=False),
                Column("session", String(128)))


def now() -> datetime:
    return datetime.now(timezone.utc)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random invite or admin token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages and for ``study.json``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, FULL sync, a busy timeout and cross-thread use."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StudyError(f"--db {url}: not a database URL ({e}); use sqlite:///PATH or "
                         "postgresql+psycopg://USER:PASSWORD@HOST/DB") from None
    try:
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_size=10, max_overflow=40, pool_pre_ping=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
    except NoSuchModuleError:  # a dialect or driver name SQLAlchemy does not know
        raise StudyError(f"--db {shown_url(url)}: SQLAlchemy has no database dialect {parsed.drivername!r}; use "
                         "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB") from None
    except ImportError as e:
        raise StudyError(f"--db {shown_url(url)}: the database driver is not installed ({e}); for PostgreSQL "
                         "install psycopg: pip install 'psycopg[binary]'") from None

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def check_database(url: str) -> None:
    """StudyError, before anything is made, for a database a new study cannot use: a URL that does not parse
    or lacks its driver, SQLite in memory (the answers would vanish with the server) or in a folder that does
    not exist, or a server that does not answer. Connects to a server, never writes."""
    from pathlib import Path

    engine = make_engine(url)
    try:
        if engine.url.get_backend_name() == "sqlite":
            database = engine.url.database
            if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
                raise StudyError(f"--db {shown_url(url)}: an in-memory database keeps no answers; give "
                                 "sqlite:///PATH")
            if not Path(database).parent.is_dir():
                raise StudyError(f"--db {shown_url(url)}: the folder {Path(database).parent} does not exist")
            return
        try:
            with engine.connect():
                pass
        except DatabaseError as e:
            raise StudyError(f"--db {shown_url(url)}: cannot open the study database: {e.orig}") from None
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Rater:
    id: int
    slot: int | None
    external_id: str | None
    finished: bool
    completion_code: str | None


@dataclass(frozen=True)
class Assignment:
    position: int
    prompt: int
    kind: str
    models: list[int]
    images: list[str]
    decoy: int | None


class StudyStore:
    """The study's database. ``StudyStore(url, study_id)`` opens it (creating the tables on first use)
    and refuses a database that belongs to another study."""

    def __init__(self, url: str, study_id: str):
        self.url = url
        self.engine = make_engine(url)
        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as c:
                found = c.execute(select(meta.c.value).where(meta.c.key == "study_id")).scalar()
                if found is None:
                    c.execute(insert(meta), [{"key": "study_id", "value": study_id},
                                             {"key": "schema", "value": str(SCHEMA_VERSION)}])
                    found = study_id
        except IntegrityError:  # another process created it at the same moment
            with self.engine.begin() as c:
                found = c.execute(select(meta.c.value).where(meta.c.key == "study_id")).scalar()
        except DatabaseError as e:  # cannot connect, or a file that is not a database
            raise StudyError(f"cannot open the study database {shown_url(url)}: {e.orig}") from None
        if found != study_id:
            raise StudyError(f"the database {shown_url(url)} holds study {found}, not {study_id}: give each study "
                             "its own database")

    def close(self) -> None:
        self.engine.dispose()

    def secret(self, key: str) -> str:
        """A random secret of this study kept in ``meta`` (e.g. the crowd entry key), made on first use."""
        with self.engine.connect() as c:
            found = c.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
        if found is not None:
            return found
        try:
            with self.engine.begin() as c:
                c.execute(insert(meta).values(key=key, value=new_token()))
        except IntegrityError:  # made by another process at the same moment
            pass
        with self.engine.connect() as c:
            return c.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    # --- raters -------------------------------------------------------------------------------------------
    def add_invites(self, n: int) -> list[str]:
        """``n`` new raters with fresh tokens; returns the tokens (shown once, stored only as hashes)."""
        tokens = [new_token() for _ in range(n)]
        with self.engine.begin() as c:
            c.execute(insert(raters), [{"token_hash": token_hash(t), "created_at": now()} for t in tokens])
        return tokens

    def _rater(self, where) -> Rater | None:
        with self.engine.connect() as c:
            row = c.execute(select(raters.c.id, raters.c.slot, raters.c.external_id, raters.c.finished_at,
                                   raters.c.completion_code).where(where)).first()
        return None if row is None else Rater(row.id, row.slot, row.external_id, row.finished_at is not None,
                                              row.completion_code)

    def rater_by_token(self, token: str) -> Rater | None:
        return self._rater(raters.c.token_hash == token_hash(token)) if token else None

    def rater_by_id(self, rater_id: int) -> Rater | None:
        return self._rater(raters.c.id == rater_id)

    def rater_by_external(self, external_id: str, entry: dict | None = None) -> Rater:
        """The crowd-platform participant ``external_id``, created on the first visit."""
        found = self._rater(raters.c.external_id == external_id)
        if found is not None:
            return found
        try:
            with self.engine.begin() as c:
                c.execute(insert(raters).values(external_id=external_id, entry=entry or {}, created_at=now()))
        except IntegrityError:  # the same participant in two tabs at once
            pass
        return self._rater(raters.c.external_id == external_id)

    def bind_slot(self, rater: Rater, plan) -> Rater:
        """Give ``rater`` the next free slot of the study plan and write its items (once; a rater with a
        slot keeps it). ``plan(slot)`` returns the slot's ``Assignment`` list."""
        if rater.slot is not None:
            return rater
        for _ in range(1000):
            with self.engine.connect() as c:
                taken = c.execute(select(func.max(raters.c.slot))).scalar()
            slot = 0 if taken is None else taken + 1
            items = plan(slot)
            try:
                with self.engine.begin() as c:
                    done = c.execute(update(raters).where(raters.c.id == rater.id, raters.c.slot.is_(None))
                                     .values(slot=slot, started_at=now())).rowcount
                    if done:
                        c.execute(insert(assignments), [
                            {"rater_id": rater.id, "position": a.position, "prompt": a.prompt, "kind": a.kind,
                             "models": list(a.models), "images": list(a.images), "decoy": a.decoy} for a in items])
                return self.rater_by_id(rater.id)
            except IntegrityError:  # another rater took this slot first: try the next
                continue
        raise StudyError("could not bind a study slot after 1000 tries")

    # --- items and answers ----------------------------------------------------------------------------------
    def assignment(self, rater_id: int, position: int) -> Assignment | None:
        with self.engine.connect() as c:
            row = c.execute(select(assignments).where(assignments.c.rater_id == rater_id,
                                                      assignments.c.position == position)).first()
        return None if row is None else Assignment(row.position, row.prompt, row.kind, list(row.models),
                                                   list(row.images), row.decoy)

    def progress(self, rater_id: int) -> tuple[int, int, int | None]:
        """(answered, total, next unanswered position or None) for one rater."""
        with self.engine.connect() as c:
            total = c.execute(select(func.count()).select_from(assignments)
                              .where(assignments.c.rater_id == rater_id)).scalar()
            done = c.execute(select(answers.c.position).where(answers.c.rater_id == rater_id)).scalars().all()
            done_set = set(done)
            positions = c.execute(select(assignments.c.position).where(assignments.c.rater_id == rater_id)
                                  .order_by(assignments.c.position)).scalars().all()
        nxt = next((p for p in positions if p not in done_set), None)
        return len(done_set), total, nxt

    def submit(self, rater_id: int, position: int, ranks: dict[str, list[int]], session: str | None = None) -> bool:
        """Store the answer to item ``position``; True when new, False when it was already answered (the
        first answer stays). Committed when this returns."""
        if self.assignment(rater_id, position) is None:
            raise StudyError(f"rater {rater_id} has no item {position}")
        try:
            with self.engine.begin() as c:
                c.execute(insert(answers).values(rater_id=rater_id, position=position, ranks=ranks,
                                                 submitted_at=now(), session=session))
            return True
        except IntegrityError:
            return False

    def finish(self, rater_id: int, code: str) -> str:
        """Mark the rater finished (once) and return their completion code (the first one given stays)."""
        with self.engine.begin() as c:
            c.execute(update(raters).where(raters.c.id == rater_id, raters.c.finished_at.is_(None))
                      .values(finished_at=now(), completion_code=code))
            return c.execute(select(raters.c.completion_code).where(raters.c.id == rater_id)).scalar()

    # --- reading the study -------------------------------------------------------------------------------
    def rows(self) -> dict[str, list[dict]]:
        """Every rater, assignment and answer as plain dicts (the export and the aggregation read these)."""
        with self.engine.connect() as c:
            out = {}
            for name, table in (("raters", raters), ("assignments", assignments), ("answers", answers)):
                out[name] = [dict(r._mapping) for r in c.execute(select(table))]
        for r in out["raters"]:
            r.pop("token_hash", None)
            for k in ("created_at", "started_at", "finished_at"):
                r[k] = r[k].isoformat() if r[k] else None
        for a in out["answers"]:
            a["submitted_at"] = a["submitted_at"].isoformat()
        return out

    def item_ratings_per_prompt(self) -> dict[int, int]:
        """{prompt: answered regular items} (attention checks not counted), counted in the database."""
        query = (select(assignments.c.prompt, func.count())
                 .select_from(answers.join(assignments, (answers.c.rater_id == assignments.c.rater_id)
                                           & (answers.c.position == assignments.c.position)))
                 .where(assignments.c.kind == "item").group_by(assignments.c.prompt))
        with self.engine.connect() as c:
            return {prompt: n for prompt, n in c.execute(query)}

    def counts(self) -> dict:
        """Live numbers for the dashboard."""
        with self.engine.connect() as c:
            return {
                "raters_invited_or_seen": c.execute(select(func.count()).select_from(raters)).scalar(),
                "raters_started": c.execute(select(func.count()).select_from(raters)
                                            .where(raters.c.slot.is_not(None))).scalar(),
                "raters_finished": c.execute(select(func.count()).select_from(raters)
                                             .where(raters.c.finished_at.is_not(None))).scalar(),
                "answers": c.execute(select(func.count()).select_from(answers)).scalar(),
                "items_assigned": c.execute(select(func.count()).select_from(assignments)).scalar(),
            }


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)
