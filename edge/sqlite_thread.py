"""One SQLite connection on its own thread, for the register's files (ledger, pos.db, print queue).

How it works: :meth:`SqliteThread.open` starts one dedicated thread, which connects to the file,
runs the caller's ``setup`` and then takes units of work from a queue, one at a time, in the
order they were queued, until :meth:`SqliteThread.close`. ``await db.call(fn)`` queues
``fn(conn)`` and waits for it: a unit is a whole function, so a sale costs one hop to the thread
rather than one await per statement, and one thread doing every write is what lets the ledger
keep ``seq`` gap-free without a lock. The result or exception of ``fn`` comes back to the caller.
The connection never leaves its thread (sqlite3 refuses a connection used across threads).

The rules a unit lives by:

* A unit commits or rolls back its own transaction before it returns. One that leaves a
  transaction open is rolled back on the spot and its caller gets :class:`TransactionLeftOpenError`
  (or the unit's own exception, if it raised): the next unit never inherits half of another's.
* Cancelling the task that awaits :meth:`~SqliteThread.call` cancels the wait, not the work: a
  queued unit always runs to completion. The cancelled caller sees ``CancelledError`` and does
  not learn the outcome; the next unit sees the file as the cancelled unit left it (committed or
  rolled back, never in between). A unit that raised after its caller stopped waiting is logged.
* :meth:`~SqliteThread.close` refuses new units, lets every queued unit finish, then closes the
  connection on its thread. It is idempotent; a call after it raises :class:`SqliteClosedError`
  (the owners translate it into their own error, e.g. "ledger is not open").

The thread is a daemon: a process that exits without closing loses only units whose callers
never got an answer, which for a WAL file with ``synchronous=FULL`` is the same as a power cut.
Only the standard library is used (no aiosqlite, whose one seam for this was private).

Errors::

    SqliteThreadError             base; ``name`` says whose file (``ledger``, ``pos.db``)
    ├── SqliteClosedError         a unit offered after close (or to an unopened instance)
    └── TransactionLeftOpenError  a unit returned inside a transaction; it was rolled back
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class SqliteThreadError(Exception):
    """Base of this module's errors; ``name`` says which file's thread (``ledger``, ``pos.db``)."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class SqliteClosedError(SqliteThreadError):
    """A unit of work was offered after :meth:`SqliteThread.close` (or before a finished open)."""


class TransactionLeftOpenError(SqliteThreadError):
    """A unit returned inside a transaction; it was rolled back, so nothing of it was kept."""


#: A unit of work and the future (on the caller's loop) that gets its outcome; a unit of None
#: is the stop mark, and its future resolves once the connection is closed.
_Job = tuple[Callable[[sqlite3.Connection], Any] | None, "asyncio.Future[Any]"]


class SqliteThread:
    """Owns one ``sqlite3.Connection`` on one thread; make it with :meth:`open`."""

    def __init__(self, *, name: str) -> None:
        """Use :meth:`open`; a bare instance has no thread and refuses every call."""
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._stopped: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls,
        database: Path | str,
        *,
        name: str,
        setup: Callable[[sqlite3.Connection], object] | None = None,
        isolation_level: Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None = None,
        timeout: float = 5.0,
    ) -> SqliteThread:
        """Start the thread, connect there and run ``setup(conn)`` as its first unit.

        ``isolation_level=None`` (the default) leaves transactions to the units (explicit
        ``BEGIN``/``COMMIT``), as every owner here wants; ``timeout`` is sqlite3's busy wait. If
        connecting or ``setup`` fails, or the opener is cancelled, the connection is closed on
        its thread and the error is raised.
        """
        db = cls(name=name)
        connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(database, isolation_level=isolation_level, timeout=timeout)

        db._thread = threading.Thread(
            target=db._serve, args=(connect, connected), name=f"sqlite-{name}", daemon=True
        )
        db._thread.start()
        try:
            await connected
            db._accepting = True
            if setup is not None:
                await db._submit(setup)
        except Exception:
            await db.close()  # the file is closed when the error reaches the opener
            raise
        except BaseException:
            db._stop()  # a cancelled opener does not wait; the thread still closes the file
            raise
        return db

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has begun, or before :meth:`open` finished: no unit is taken."""
        return not self._accepting

    @property
    def thread(self) -> threading.Thread | None:
        """The one thread every unit runs on (for tests and diagnostics)."""
        return self._thread

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the thread as one unit of work; its result or exception returns."""
        if not self._accepting:
            raise SqliteClosedError("the connection is closed", name=self.name)
        return await self._submit(fn)

    async def close(self) -> None:
        """Finish every queued unit, then close the connection on its thread; safe to repeat.

        Cancelling a waiting ``close`` does not stop the closing: the thread still finishes.
        """
        stopped = self._stop()
        if stopped is not None:
            await asyncio.shield(stopped)

    # -- the caller's side ----------------------------------------------------------------------

    async def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((fn, done))
        return await done

    def _stop(self) -> asyncio.Future[None] | None:
        """Queue the stop once; its future resolves when the thread has closed the connection.

        The thread ends only at this mark (even when it could not connect), so it is always
        answered.
        """
        if self._stopped is None and self._thread is not None:
            self._accepting = False
            self._stopped = asyncio.get_running_loop().create_future()
            self._jobs.put((None, self._stopped))
        return self._stopped

    # -- the thread's side ----------------------------------------------------------------------

    def _serve(
        self, connect: Callable[[], sqlite3.Connection], connected: asyncio.Future[None]
    ) -> None:
        """The thread: connect, then one unit at a time in queue order until the stop mark."""
        conn: sqlite3.Connection | None = None
        try:
            conn = connect()
        except BaseException as err:  # the opener raises it, then queues the stop mark
            self._settle(connected, ok=False, value=err)
        else:
            self._settle(connected, ok=True, value=None)
        try:
            while True:
                fn, done = self._jobs.get()
                if fn is None:
                    break
                if conn is None:
                    refused = SqliteClosedError("the connection never opened", name=self.name)
                    self._settle(done, ok=False, value=refused)
                    continue
                try:
                    self._settle(done, ok=True, value=self._run(conn, fn))
                except BaseException as err:  # every outcome goes to its caller
                    self._settle(done, ok=False, value=err)
        finally:
            if conn is not None:
                conn.close()
        self._settle(done, ok=True, value=None)

    def _run(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        """One unit; a transaction it left open is rolled back before anything else runs."""
        try:
            result = fn(conn)
        except BaseException:
            self._roll_back_leftover(conn)
            raise
        if self._roll_back_leftover(conn):
            raise TransactionLeftOpenError(
                f"{getattr(fn, '__qualname__', fn)!s} returned inside a transaction; it was"
                " rolled back (a unit must COMMIT or ROLLBACK before it returns)",
                name=self.name,
            )
        return result

    def _roll_back_leftover(self, conn: sqlite3.Connection) -> bool:
        if not conn.in_transaction:
            return False
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as err:  # the unit's own error is the one to report
            log.error("%s: rolling back a unit's open transaction failed: %s", self.name, err)
        return True

    def _settle(self, done: asyncio.Future[Any], *, ok: bool, value: Any) -> None:
        """Hand an outcome to the caller's loop (which may be gone, or the caller cancelled)."""

        def deliver() -> None:
            if done.cancelled():
                if not ok:
                    log.warning(
                        "%s: a unit of work raised after its caller stopped waiting: %r",
                        self.name,
                        value,
                    )
                return
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

        try:
            done.get_loop().call_soon_threadsafe(deliver)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            log.debug("%s: the outcome of a unit was dropped, its event loop is closed", self.name)
