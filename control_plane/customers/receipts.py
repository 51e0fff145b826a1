"""The outbox of digital receipts: one row per replicated sale with a customer, leased, finished.

Why the ingest writes it (one narrow call, :func:`enqueue_receipts`) rather than a poller over
new sales rows: the row is inserted in the transaction that stores the sale, so a sale stored is
a receipt owed and a crash loses neither or both. A redelivered batch never reaches it (the
ingest stores only records past the device's high-water mark), and ``UNIQUE(device_id, seq)``
makes a second enqueue of the same record a no-op anyway. A poller would need a cursor over
sales committed by parallel ingest partitions out of order (a row committed late behind the
cursor is missed) or a scan of every sale for "customer but no receipt". The ingest's cost is one
INSERT for a batch holding sales with a customer, none otherwise; the consent check and the
address wait for the mailer (:mod:`control_plane.customers.mailer`), outside the ingest.

Claiming is the notifications outbox's lease, called, not copied
(:func:`control_plane.notifications.outbox.lease_due` and ``finish_attempt``): one UPDATE
leases due rows to a worker (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), a worker that died leaves
a lease that runs out, and :func:`finish` writes an outcome only while the row is still its own.
Delivery is at least once: a mailer that sent and died before recording re-sends after the lease
(the Message-ID is the receipt's id, so mail clients fold the copy).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.customers.tables import customer_receipts
from control_plane.ingest.rows import Accepted
from control_plane.notifications.outbox import finish_attempt, lease_due

Outcome = Literal["sent", "retry", "failed", "skipped"]


async def enqueue_receipts(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    device_id: str,
    accepted: Sequence[Accepted],
    now_ms: int,
) -> None:
    """Owe a receipt for each stored sale that names a customer (inside the ingest's
    transaction); a repeat is a no-op, a batch without such a sale costs no statement."""
    rows = [
        {
            "id": uuid.uuid4().hex,
            "tenant_id": tenant_id,
            "customer_id": item.sale.customer_id,
            "device_id": device_id,
            "seq": item.record.seq,
            "sale_id": item.sale.sale_id,
            "status": "pending",
            "attempts": 0,
            "next_at": now_ms,
            "created_at": now_ms,
        }
        for item in accepted
        if item.sale is not None and item.sale.customer_id is not None
    ]
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        await conn.execute(pg_insert(customer_receipts).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        await conn.execute(sqlite_insert(customer_receipts).on_conflict_do_nothing(), rows)
    else:
        await conn.execute(insert(customer_receipts), rows)


@dataclass(frozen=True, slots=True)
class DueReceipt:
    """A receipt leased to this mailer."""

    id: str
    tenant_id: str
    customer_id: str
    device_id: str
    seq: int
    attempts: int


async def claim(
    engine: AsyncEngine, *, owner: str, now_ms: int, lease_ms: int, limit: int
) -> list[DueReceipt]:
    """Lease up to ``limit`` due receipts to ``owner``."""
    c = customer_receipts.c
    rows = await lease_due(
        engine,
        customer_receipts,
        owner=owner,
        now_ms=now_ms,
        lease_ms=lease_ms,
        limit=limit,
        leased=select(c.id, c.tenant_id, c.customer_id, c.device_id, c.seq, c.attempts),
    )
    return [
        DueReceipt(
            id=row.id,
            tenant_id=row.tenant_id,
            customer_id=row.customer_id,
            device_id=row.device_id,
            seq=int(row.seq),
            attempts=int(row.attempts),
        )
        for row in rows
    ]


async def finish(
    engine: AsyncEngine,
    *,
    receipt_id: str,
    owner: str,
    outcome: Outcome,
    now_ms: int,
    error: str | None = None,
    retry_at: int | None = None,
) -> bool:
    """Record one attempt's outcome (``skipped`` is not an attempt); False when the lease was
    lost."""
    return await finish_attempt(
        engine,
        customer_receipts,
        row_id=receipt_id,
        owner=owner,
        outcome=outcome,
        now_ms=now_ms,
        error=error,
        retry_at=retry_at,
        counted=outcome != "skipped",
    )
