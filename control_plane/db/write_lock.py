"""The write lock a read-then-write transaction needs on SQLite, where ``FOR UPDATE`` is ignored.

Why: on PostgreSQL a transaction that reads a row, decides, and writes locks the row as it reads
it (``SELECT … FOR UPDATE``), so a concurrent one waits and then reads the result. SQLite has no
row locks and drops ``FOR UPDATE``; its reads take no lock that keeps another writer out, and the
database's write lock comes only with the first write. Two such transactions can then both read
the same state and both write from it: a stock page folded twice, a mark inserted twice. Taking
the write lock first (``BEGIN IMMEDIATE``, waiting as long as the busy timeout) makes the rest
of the transaction see what no one else can change before its commit. Readers are not held up
(WAL), only other writers, which SQLite serialises anyway.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


async def hold_write_lock(conn: AsyncConnection) -> None:
    """On SQLite, take the database's write lock now, before the transaction's reads that its
    writes depend on; on PostgreSQL nothing (lock the rows read ``FOR UPDATE``).

    Call it inside ``engine.begin()``. If the transaction has written already, it holds the
    lock and nothing more is done."""
    if conn.dialect.name != "sqlite":
        return
    raw = await conn.get_raw_connection()
    if raw.driver_connection is not None and raw.driver_connection.in_transaction:
        return  # a write began the transaction: the lock is held
    await conn.exec_driver_sql("BEGIN IMMEDIATE")
