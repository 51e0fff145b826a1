"""One database connection an ingest partition keeps between batches.

Why: taking a connection from the pool for every batch costs more round trips than storing a
one-record batch. The pool pings each connection it hands out (``pool_pre_ping``: on asyncpg a
BEGIN, a ``;`` and a ROLLBACK) and resets it on return, so a live device's batch of one sale made
nine round trips to PostgreSQL where six do the work (py-spy on ``bench/replication.py``: the ping
and the checkout were a third of the ingest's database time). A partition stores one batch at a
time, so it can hold one connection and run each batch's transaction on it.

How it works: :meth:`HeldConnection.get` opens the connection on first use; after any failure the
caller :meth:`discard`\\ s it (it may be broken: a restarted database, a cut socket) and the next
batch opens a fresh one from the pool, pre-pinged as before. :meth:`close` gives it back when the
partition stops.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class HeldConnection:
    """``await held.get()`` — the partition's connection, opened when first needed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        """The held connection, opening one (from the pool, pinged) if there is none."""
        if self._conn is None:
            self._conn = await self.engine.connect()
        return self._conn

    async def discard(self) -> None:
        """Let go of a connection that may be broken; the next :meth:`get` opens another."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.invalidate()
            await conn.close()
        except Exception as err:  # it is gone either way
            log.debug("ingest: closing a failed connection: %s", err)

    async def close(self) -> None:
        """Give the connection back to the pool (the partition stops)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
