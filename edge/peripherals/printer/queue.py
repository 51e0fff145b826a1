"""Durable print queue: jobs survive a reboot, and a sale never waits for paper.

How it works: one SQLite table (WAL, ``synchronous=FULL``) holds every job with its ESC/POS
bytes. ``submit`` only inserts a row. The print service asks for the next *due* job, tries it,
and either marks it printed or schedules the next attempt after the fleet's one backoff
(:meth:`mqttlink.backoff.Backoff.delay_after`, counted by the attempts stored with the job, so a
reboot does not start a failing job's sequence afresh).
Printed jobs stay in the table, so a reprint is a new job copied from an old one. All SQLite
work runs on the queue's own thread (:class:`~edge.sqlite_thread.SqliteThread`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from edge.sqlite_thread import SqliteClosedError, SqliteThread
from mqttlink.backoff import Backoff

T = TypeVar("T")
JobState = Literal["queued", "printed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS print_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'printed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    printed_at REAL,
    reprint_of INTEGER REFERENCES print_jobs(id)
);
CREATE INDEX IF NOT EXISTS print_jobs_due ON print_jobs (state, next_attempt_at);
"""
_COLUMNS = "id, kind, ref, payload, state, attempts, next_attempt_at, last_error, reprint_of"
_OUTSIDE = "PrintQueue used outside 'async with'"


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)


@dataclass(frozen=True, slots=True)
class PrintJob:
    """One job as stored."""

    id: int
    kind: str  # "receipt", "x_report", "z_report", "test_page", "drawer"
    ref: str  # receipt number or report id: what a person asks to reprint
    payload: bytes
    state: JobState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    reprint_of: int | None


def default_backoff() -> Backoff:
    """A failed job's retry: within a second at first, doubling up to a minute."""
    return Backoff(initial=1.0, cap=60.0)


class PrintQueue:
    """The job table; open with ``async with PrintQueue(path=…) as queue``."""

    def __init__(
        self,
        *,
        path: Path,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._backoff = default_backoff() if backoff is None else backoff
        self._clock = clock
        self._db: SqliteThread | None = None
        self.changed = asyncio.Event()  # set whenever a job is added or changes state

    async def __aenter__(self) -> PrintQueue:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await SqliteThread.open(self._path, name="print-queue", setup=_setup)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """One unit of work on the queue's thread."""
        if self._db is None:
            raise RuntimeError(_OUTSIDE)
        try:
            return await self._db.call(fn)
        except SqliteClosedError as err:  # closed while this call was on its way
            raise RuntimeError(_OUTSIDE) from err

    async def submit(
        self, *, kind: str, ref: str, payload: bytes, reprint_of: int | None = None
    ) -> int:
        """Store a job; returns its id at once (nothing waits for the printer)."""
        now = self._clock()

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO print_jobs (kind, ref, payload, state, next_attempt_at, created_at,"
                " reprint_of) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (kind, ref, payload, now, now, reprint_of),
            )
            return int(cur.lastrowid or 0)

        job_id = await self._run(insert)
        self.changed.set()
        return job_id

    async def get(self, job_id: int) -> PrintJob | None:
        """One job by id."""
        return await self._one(f"SELECT {_COLUMNS} FROM print_jobs WHERE id = ?", (job_id,))

    async def last_for(self, ref: str) -> PrintJob | None:
        """The newest job for a receipt number or report id (what a reprint copies)."""
        sql = f"SELECT {_COLUMNS} FROM print_jobs WHERE ref = ? ORDER BY id DESC LIMIT 1"
        return await self._one(sql, (ref,))

    async def next_due(self) -> PrintJob | None:
        """The oldest queued job whose retry time has come."""
        sql = (
            f"SELECT {_COLUMNS} FROM print_jobs WHERE state = 'queued' AND next_attempt_at <= ?"
            " ORDER BY id LIMIT 1"
        )
        return await self._one(sql, (self._clock(),))

    async def seconds_until_next(self) -> float | None:
        """How long until a queued job is due; None when nothing is queued."""

        def query(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM print_jobs WHERE state = 'queued'"
            ).fetchone()
            due: float | None = row[0]
            return None if due is None else max(due - self._clock(), 0.0)

        return await self._run(query)

    async def mark_printed(self, job_id: int) -> None:
        """The printer took the job and reported itself ready after it."""
        now = self._clock()
        await self._run(
            lambda conn: conn.execute(
                "UPDATE print_jobs SET state = 'printed', printed_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (now, job_id),
            )
        )
        self.changed.set()

    async def mark_failed(self, job_id: int, *, attempts: int, error: str) -> float:
        """Schedule the next attempt; returns the delay chosen."""
        delay = self._backoff.delay_after(attempts)
        due = self._clock() + delay
        await self._run(
            lambda conn: conn.execute(
                "UPDATE print_jobs SET attempts = ?, next_attempt_at = ?, last_error = ?"
                " WHERE id = ?",
                (attempts + 1, due, error, job_id),
            )
        )
        self.changed.set()
        return delay

    async def retry_now(self) -> None:
        """Make every waiting job due at once (the printer told us it is ready again)."""
        now = self._clock()
        await self._run(
            lambda conn: conn.execute(
                "UPDATE print_jobs SET next_attempt_at = ? WHERE state = 'queued'"
                " AND next_attempt_at > ?",
                (now, now),
            )
        )
        self.changed.set()

    async def pending(self) -> int:
        """How many jobs wait for the printer."""
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM print_jobs WHERE state = 'queued'"
            ).fetchone()
        )
        return int(row[0])

    async def _one(self, sql: str, args: tuple[object, ...]) -> PrintJob | None:
        row = await self._run(lambda conn: conn.execute(sql, args).fetchone())
        return None if row is None else PrintJob(*row)
