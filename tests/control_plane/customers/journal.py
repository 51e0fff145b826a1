"""Sales with a customer, as a register journals them, stored through the real ingest."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.ingest.service import IngestOutcome, ingest_batch
from protocols.canonical import canonical_text
from protocols.chain import envelope_bytes, hash_envelope
from protocols.messages import JournalBatch, JournalRecord
from protocols.vocabulary import JournalKind


def sale_body(sale_id: str, receipt_no: int, total: int, customer_id: str | None) -> dict[str, Any]:
    """A ``sale.completed`` body: one line, paid in cash, naming ``customer_id``."""
    body: dict[str, Any] = {
        "sale_id": sale_id,
        "register_id": "r1",
        "receipt_no": receipt_no,
        "currency": "CHF",
        "total_minor": total,
        "tendered_minor": total,
        "change_minor": 0,
        "lines": [
            {
                "sku": "4006381333931",
                "description": "Espresso beans 500 g",
                "quantity": "1",
                "unit_price_minor": total,
                "amount_minor": total,
            }
        ],
        "tenders": [{"kind": "cash", "amount_minor": total, "reference": None}],
    }
    if customer_id is not None:
        body["customer_id"] = customer_id
    return body


async def journal_sales(
    engine: AsyncEngine, device_id: str, bodies: list[dict[str, Any]]
) -> JournalBatch:
    """The next records of ``device_id``'s chain holding ``bodies`` (an unsigned batch)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(devices.c.hwm, devices.c.head_hash).where(devices.c.id == device_id)
            )
        ).one()
    seq, head = int(row.hwm), str(row.head_hash)
    records = []
    for body in bodies:
        seq += 1
        ts = time.time_ns() // 1_000_000
        kind = JournalKind.SALE_COMPLETED.value
        envelope = envelope_bytes(seq=seq, kind=kind, ts=ts, body_text=canonical_text(body))
        digest = hash_envelope(head, envelope)
        records.append(
            JournalRecord(seq=seq, kind=kind, ts=ts, prev_hash=head, hash=digest, body=body)
        )
        head = digest
    return JournalBatch(records=records)


async def ingest(engine: AsyncEngine, device_id: str, batch: JournalBatch) -> IngestOutcome:
    """The batch through the cloud's ingest, as the worker stores it."""
    outcome = await ingest_batch(
        engine=engine, device_id=device_id, batch=batch, now_ms=time.time_ns() // 1_000_000
    )
    assert outcome.problem is None, outcome.problem
    return outcome
