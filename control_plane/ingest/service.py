"""Storing a journal batch: the cloud half of exactly-once replication.

How it works: the device row is the lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
serialises writers itself), so any number of ingest instances may receive batches of the same
device from a shared subscription and still advance its high-water mark one record at a time.
Only the run of records that continues the stored chain is accepted:

* seq ≤ hwm — a duplicate (QoS 1 redelivery, a resend): ignored, acked again;
* first new seq > hwm + 1 — a gap: nothing stored, ask to resend from hwm + 1;
* a record whose ``prev_hash`` is not the stored head, or whose ``hash`` does not match its
  content — the records before it are stored, it and everything after are refused, the device is
  flagged, and the ack carries ``error`` so the appliance pauses instead of hammering.

``UNIQUE(device_id, seq)`` is the final guard: if it ever fires, the transaction rolls back and
nothing is booked twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.db.tables import devices, journal, sales
from control_plane.ingest import metrics
from protocols.canonical import canonical_text
from protocols.chain import envelope_bytes, hash_envelope
from protocols.messages import JournalAck, JournalBatch, JournalRecord

SALE_COMPLETED = "sale.completed"


class UnknownDevice(Exception):  # noqa: N818 - named in the domain's words
    """A batch for a device the registry does not know (or has decommissioned)."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} is not registered or was decommissioned")
        self.device_id = device_id


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to a batch, and the ack to publish."""

    ack: JournalAck
    stored: int
    duplicates: int
    problem: str | None = None


async def ingest_batch(
    *, engine: AsyncEngine, device_id: str, batch: JournalBatch, now_ms: int
) -> IngestOutcome:
    """Store what continues ``device_id``'s chain and say what the appliance should do next."""
    async with engine.begin() as conn:
        return await _ingest(conn, device_id=device_id, batch=batch, now_ms=now_ms)


async def _ingest(
    conn: AsyncConnection, *, device_id: str, batch: JournalBatch, now_ms: int
) -> IngestOutcome:
    query = select(
        devices.c.hwm,
        devices.c.head_hash,
        devices.c.tenant_id,
        devices.c.store_id,
        devices.c.decommissioned_at,
    ).where(devices.c.id == device_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None or row.decommissioned_at is not None:
        raise UnknownDevice(device_id)
    hwm, head = int(row.hwm), str(row.head_hash)

    fresh = [record for record in batch.records if record.seq > hwm]
    duplicates = len(batch.records) - len(fresh)
    metrics.DUPLICATES.inc(duplicates)
    if not fresh:
        return IngestOutcome(JournalAck(hwm=hwm, head_hash=head), 0, duplicates)
    if fresh[0].seq != hwm + 1:
        metrics.GAPS.inc()
        problem: str | None = f"gap: expected seq {hwm + 1}, batch starts at {fresh[0].seq}"
        ack = JournalAck(hwm=hwm, head_hash=head, resend_from=hwm + 1)
        return IngestOutcome(ack, 0, duplicates, problem)

    accepted: list[tuple[JournalRecord, str]] = []
    problem = None
    for record in fresh:
        if record.prev_hash != head:
            problem = f"seq {record.seq}: prev_hash does not continue the stored chain"
            break
        # decode() refused floats in journal bodies already, so the unchecked form is canonical
        body_text = canonical_text(record.body, checked=False)
        envelope = envelope_bytes(
            seq=record.seq, kind=record.kind, ts=record.ts, body_text=body_text
        )
        if hash_envelope(head, envelope) != record.hash:
            problem = f"seq {record.seq}: hash does not match the record's content"
            break
        accepted.append((record, body_text))
        head = record.hash

    new_hwm = hwm + len(accepted)
    if accepted:
        await _store(
            conn,
            device_id=device_id,
            tenant_id=row.tenant_id,
            store_id=row.store_id,
            accepted=accepted,
            now_ms=now_ms,
        )
        metrics.RECORDS_STORED.inc(len(accepted))
        for record, _ in accepted:
            metrics.LAG.observe(max(0, now_ms - record.ts) / 1000)
    changes: dict[str, Any] = {"hwm": new_hwm, "head_hash": head, "last_ingest_at": now_ms}
    if accepted:
        changes["ingest_lag_ms"] = max(0, now_ms - accepted[-1][0].ts)
    if problem is not None:
        metrics.CHAIN_BREAKS.inc()
        changes |= {
            "chain_ok": False,
            "chain_alerts": devices.c.chain_alerts + 1,
            "chain_detail": problem,
        }
    await conn.execute(update(devices).where(devices.c.id == device_id).values(**changes))
    if problem is not None:
        ack = JournalAck(hwm=new_hwm, head_hash=head, resend_from=new_hwm + 1, error=problem)
        return IngestOutcome(ack, len(accepted), duplicates, problem)
    return IngestOutcome(JournalAck(hwm=new_hwm, head_hash=head), len(accepted), duplicates)


async def _store(
    conn: AsyncConnection,
    *,
    device_id: str,
    tenant_id: str,
    store_id: str,
    accepted: list[tuple[JournalRecord, str]],
    now_ms: int,
) -> None:
    await conn.execute(
        journal.insert(),
        [
            {
                "device_id": device_id,
                "seq": record.seq,
                "kind": record.kind,
                "ts": record.ts,
                "prev_hash": record.prev_hash,
                "hash": record.hash,
                "body": body_text,
                "received_at": now_ms,
            }
            for record, body_text in accepted
        ],
    )
    sale_rows = [
        _sale_row(record, device_id=device_id, tenant_id=tenant_id, store_id=store_id)
        for record, _ in accepted
        if record.kind == SALE_COMPLETED
    ]
    if sale_rows:
        await conn.execute(sales.insert(), sale_rows)


def _sale_row(
    record: JournalRecord, *, device_id: str, tenant_id: str, store_id: str
) -> dict[str, Any]:
    body = record.body
    return {
        "device_id": device_id,
        "seq": record.seq,
        "sale_id": str(body.get("sale_id", f"seq-{record.seq}")),
        "tenant_id": tenant_id,
        "store_id": store_id,
        "receipt_no": int(body.get("receipt_no", 0)),
        "currency": str(body.get("currency", "")),
        "total_minor": int(body.get("total_minor", 0)),
        "ts": record.ts,
    }
