"""SqliteThread on a real SQLite file: one thread, units in order, whole units, a clean close.

A unit that must hold the thread still waits on a ``threading.Event`` the test sets, so every
ordering below is forced, never a matter of timing.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from edge.sqlite_thread import (
    SqliteClosedError,
    SqliteThread,
    SqliteThreadError,
    TransactionLeftOpenError,
)

WAIT_S = 10  # only a bound for a stuck thread; no test waits this long when it passes


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS rows (n INTEGER NOT NULL)")


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])


def _insert(n: int) -> Callable[[sqlite3.Connection], object]:
    return lambda conn: conn.execute("INSERT INTO rows VALUES (?)", (n,))


def _on_disk(path: Path) -> list[int]:
    """Rows as a second, independent connection reads them from the file."""
    conn = sqlite3.connect(path)
    try:
        return [int(n) for (n,) in conn.execute("SELECT n FROM rows ORDER BY rowid")]
    finally:
        conn.close()


async def _hold(db: SqliteThread) -> tuple[asyncio.Future[None], threading.Event]:
    """Occupy the thread with a unit that waits for the returned event; returns once it does."""
    holding, release = threading.Event(), threading.Event()

    def hold(_: sqlite3.Connection) -> None:
        holding.set()
        if not release.wait(WAIT_S):
            raise TimeoutError("the test never released the thread")

    held = asyncio.ensure_future(db.call(hold))
    assert await asyncio.to_thread(holding.wait, WAIT_S)
    return held, release


async def _until_queued(db: SqliteThread, count: int) -> None:
    """Yield to the loop until ``count`` units wait on the queue of the held thread."""
    for _ in range(100):
        if db._jobs.qsize() >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"expected {count} queued units, found {db._jobs.qsize()}")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteThread]:
    opened = await SqliteThread.open(tmp_path / "unit.db", name="unit", setup=_setup)
    yield opened
    await opened.close()


async def test_a_result_and_an_exception_come_back_to_the_caller(db: SqliteThread) -> None:
    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO rows VALUES (1)")
        raise ValueError("no such item")

    assert await db.call(lambda c: c.execute("SELECT 40 + 2").fetchone()[0]) == 42
    with pytest.raises(ValueError, match="no such item"):
        await db.call(fail)
    # the failed unit's transaction was rolled back, not left for the next unit to commit
    assert await db.call(lambda c: (_count(c), c.in_transaction)) == (0, False)


async def test_every_unit_runs_on_the_same_dedicated_thread(db: SqliteThread) -> None:
    idents = await asyncio.gather(*(db.call(lambda _: threading.get_ident()) for _ in range(20)))

    assert db.thread is not None
    assert set(idents) == {db.thread.ident}
    assert threading.get_ident() not in idents


async def test_units_run_in_the_order_they_were_called(db: SqliteThread) -> None:
    held, release = await _hold(db)
    calls = [asyncio.ensure_future(db.call(_insert(n))) for n in range(30)]
    await _until_queued(db, 30)
    release.set()
    await asyncio.gather(held, *calls)

    assert await db.call(
        lambda c: [n for (n,) in c.execute("SELECT n FROM rows ORDER BY rowid")]
    ) == list(range(30))


async def test_close_finishes_queued_units_then_closes_the_file_and_is_idempotent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "unit.db"
    db = await SqliteThread.open(path, name="unit", setup=_setup)
    held, release = await _hold(db)
    inserts = [asyncio.ensure_future(db.call(_insert(n))) for n in range(5)]
    await _until_queued(db, 5)
    closing = asyncio.ensure_future(db.close())
    await _until_queued(db, 6)  # the stop mark is behind the five inserts

    assert db.closed
    assert not closing.done()
    release.set()
    await closing
    await asyncio.gather(held, *inserts)  # every queued unit was answered, none refused

    assert _on_disk(path) == [0, 1, 2, 3, 4]
    assert not path.with_name("unit.db-wal").exists()  # the last connection closed cleanly
    assert db.thread is not None
    db.thread.join(WAIT_S)
    assert not db.thread.is_alive()
    await db.close()  # a second close is a no-op


async def test_a_call_after_close_is_refused_with_the_files_name(db: SqliteThread) -> None:
    await db.close()

    with pytest.raises(SqliteClosedError, match="unit: the connection is closed") as refused:
        await db.call(_count)
    assert refused.value.name == "unit"


@pytest.mark.parametrize("cancelled_while", ["queued", "running"])
async def test_a_cancelled_caller_leaves_no_half_done_unit(
    db: SqliteThread, cancelled_while: str
) -> None:
    started, finish = threading.Event(), threading.Event()

    def two_rows(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO rows VALUES (1)")
        started.set()
        if not finish.wait(WAIT_S):
            raise TimeoutError("the test never let the unit finish")
        conn.execute("INSERT INTO rows VALUES (2)")
        conn.execute("COMMIT")

    held, release = await _hold(db)
    caller = asyncio.ensure_future(db.call(two_rows))
    await _until_queued(db, 1)
    if cancelled_while == "running":
        release.set()
        assert await asyncio.to_thread(started.wait, WAIT_S)
    caller.cancel()
    release.set()
    finish.set()

    with pytest.raises(asyncio.CancelledError):
        await caller
    await held
    # the unit ran whole on its thread: the next unit sees both rows and no open transaction
    assert await db.call(lambda c: (_count(c), c.in_transaction)) == (2, False)


async def test_a_unit_that_returns_inside_a_transaction_is_rolled_back_and_refused(
    db: SqliteThread,
) -> None:
    def forgets_commit(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO rows VALUES (1)")

    with pytest.raises(TransactionLeftOpenError, match="rolled back"):
        await db.call(forgets_commit)
    assert await db.call(lambda c: (_count(c), c.in_transaction)) == (0, False)


async def test_a_unit_that_raises_after_its_caller_left_is_logged(
    db: SqliteThread, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(_: sqlite3.Connection) -> None:
        raise ValueError("paper out")

    held, release = await _hold(db)
    caller = asyncio.ensure_future(db.call(fail))
    await _until_queued(db, 1)
    caller.cancel()
    with caplog.at_level(logging.WARNING, logger="edge.sqlite_thread"):
        release.set()
        await held
        await db.call(_count)  # behind the failed unit: its outcome was delivered before this

    assert [r.getMessage() for r in caplog.records] == [
        "unit: a unit of work raised after its caller stopped waiting: ValueError('paper out')"
    ]


async def test_a_setup_that_fails_is_raised_and_the_file_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "unit.db"

    def corrupt(conn: sqlite3.Connection) -> None:
        _setup(conn)
        raise SqliteThreadError("head does not match", name="unit")

    with pytest.raises(SqliteThreadError, match="unit: head does not match"):
        await SqliteThread.open(path, name="unit", setup=corrupt)
    assert path.exists()
    assert not path.with_name("unit.db-wal").exists()


async def test_a_file_that_cannot_be_opened_is_raised_and_the_thread_ends(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        await SqliteThread.open(tmp_path / "no such folder" / "unit.db", name="unit")
    threads = [t for t in threading.enumerate() if t.name == "sqlite-unit"]
    for thread in threads:
        thread.join(WAIT_S)
    assert [t for t in threads if t.is_alive()] == []
