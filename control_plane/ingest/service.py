"""Storing a journal batch: the cloud half of exactly-once replication.

How it works: the device row is the lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
serialises writers itself), so any number of ingest instances may receive batches of the same
device from a shared subscription and still advance its high-water mark one record at a time.
Only the run of records that continues the stored chain is accepted:

* seq ≤ hwm — a duplicate (QoS 1 redelivery, a resend): ignored, acked again;
* first new seq > hwm + 1 — a gap: nothing stored, ask to resend from hwm + 1;
* a record whose ``prev_hash`` is not the stored head, or whose ``hash`` does not match its
  content — the records before it are stored, it and everything after are refused, the device is
  flagged, and the ack carries ``error`` so the appliance pauses instead of hammering;
* a record the cloud cannot store — a ``sale.completed`` body that is not a
  :class:`~protocols.sale_body.SaleBody` (a missing total, a currency its column cannot hold,
  totals that do not add up) — is refused the same way, with the reason. Checking it against the
  contract's limits before the insert makes SQLite and PostgreSQL refuse exactly the same
  records: SQLite does not enforce ``VARCHAR`` lengths, PostgreSQL does.

The database stays the final guard (``UNIQUE(device_id, seq)``, ``UNIQUE(device_id, sale_id)``,
its types): if it refuses a batch anyway, the transaction rolls back and nothing is booked twice;
:func:`ingest_batch` then stores the batch in halves, each its own transaction, until the one
record the database refuses is found, and flags the device with the database's reason. Either
way the device never loops resending a record that can never be stored: its refusal is shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.customers import receipts
from control_plane.devices.tables import devices
from control_plane.ingest import metrics
from control_plane.ingest.journal_heads import (
    HEADS_REFUSED,
    HeadVerifier,
    SignedHead,
    store_head,
    verifier_for,
)
from control_plane.ingest.rows import Accepted, store_rows
from control_plane.reports import ingest_rollups
from protocols.canonical import canonical_text
from protocols.chain import envelope_bytes, hash_envelope
from protocols.journal_signing import HeadRefused
from protocols.limits import clip
from protocols.messages import JournalAck, JournalBatch, JournalRecord
from protocols.sale_body import InvalidSaleBody, SaleBody
from protocols.vocabulary import JournalKind

#: What a refused record means for the device, said where the reason is shown (ack, console, log).
WAITING = ". The records after it wait; have support repair the appliance's ledger (never wipe it)"
#: What the database itself may answer about a record: the values do not fit, or a key repeats.
_REFUSED_BY_DATABASE = (DataError, IntegrityError)


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
    *,
    engine: AsyncEngine,
    device_id: str,
    batch: JournalBatch,
    now_ms: int,
    heads: HeadVerifier | None = None,
    conn: AsyncConnection | None = None,
) -> IngestOutcome:
    """Store what continues ``device_id``'s chain and say what the appliance should do next.

    The batch's signed head is checked first (``journal_heads``), outside the transaction: a
    head that proves nothing refuses the whole batch and flags the device. ``conn`` is a
    connection the caller holds (outside a transaction) for its transactions; without one, each
    comes from the engine's pool.
    """
    heads = heads or verifier_for(engine)
    signed: SignedHead | None = None
    unsigned: HeadRefused | None = None
    try:
        signed = await heads.check(device_id, batch)
    except HeadRefused as err:
        HEADS_REFUSED.labels(err.reason).inc()
        unsigned = err
    known = signed is not None and signed.fingerprint in heads.stored_certificates
    try:
        async with _transaction(engine, conn) as tx:
            outcome = await _ingest(
                tx,
                device_id=device_id,
                batch=batch,
                now_ms=now_ms,
                signed=signed,
                head_refused=unsigned,
                known_certificate=known,
            )
    except _REFUSED_BY_DATABASE as err:
        refused = await _find_refused_record(
            engine,
            conn,
            device_id=device_id,
            batch=batch,
            now_ms=now_ms,
            err=err,
            signed=signed,
        )
        if refused.stored:
            ingest_rollups.records_stored(device_id)
        return refused
    if signed is not None and outcome.stored:
        heads.stored_certificates.add(signed.fingerprint)  # committed: no insert next time
    if outcome.stored:  # committed: the reports' fold worker folds them, off the ack path
        ingest_rollups.records_stored(device_id)
    return outcome


async def _find_refused_record(
    engine: AsyncEngine,
    conn: AsyncConnection | None,
    *,
    device_id: str,
    batch: JournalBatch,
    now_ms: int,
    err: DBAPIError,
    signed: SignedHead | None,
) -> IngestOutcome:
    """The database refused the batch: store it in halves to find the record it refuses.

    Each half is its own transaction, committed when it fits, so the records before the refused
    one are kept. If storing ``pending`` records fails, the culprit is among the first half of
    them, otherwise among the rest: about log2(batch) transactions, only on this rare path.
    """
    pending, stored, duplicates = len(batch.records), 0, 0
    while pending > 1:
        half = pending // 2
        try:
            async with _transaction(engine, conn) as tx:
                outcome = await _ingest(
                    tx, device_id=device_id, batch=batch, now_ms=now_ms, limit=half, signed=signed
                )
        except _REFUSED_BY_DATABASE as refusal:
            pending, err = half, refusal
            continue
        if outcome.problem is not None:  # refused before the database: nothing more to find
            return replace(outcome, stored=stored + outcome.stored)
        stored, duplicates = stored + outcome.stored, outcome.duplicates
        pending -= half
    reason = _database_reason(err)
    async with _transaction(engine, conn) as tx:
        outcome = await _ingest(
            tx, device_id=device_id, batch=batch, now_ms=now_ms, limit=0, refusal=reason
        )
    return replace(outcome, stored=stored + outcome.stored, duplicates=duplicates)


@asynccontextmanager
async def _transaction(
    engine: AsyncEngine, held: AsyncConnection | None
) -> AsyncIterator[AsyncConnection]:
    """One transaction, on the held connection if there is one, else on one from the pool."""
    if held is None:
        async with engine.begin() as conn:
            yield conn
    else:
        async with held.begin():
            yield held


def _database_reason(err: DBAPIError) -> str:
    """What kind of refusal (the same name on both stores) and the driver's own first line."""
    inner = err.orig if err.orig is not None else err
    lines = str(inner).strip().splitlines()
    first = lines[0] if lines else type(inner).__name__
    return f"the cloud's database refused it ({type(err).__name__}: {first})"


async def _ingest(
    conn: AsyncConnection,
    *,
    device_id: str,
    batch: JournalBatch,
    now_ms: int,
    limit: int | None = None,
    refusal: str | None = None,
    signed: SignedHead | None = None,
    head_refused: HeadRefused | None = None,
    known_certificate: bool = False,
) -> IngestOutcome:
    """Store the run of records that continues the chain.

    ``limit`` stores at most that many new records (the search for a record the database
    refuses); ``refusal`` refuses the record after them with that reason. ``signed`` is the
    verified head, stored with the batch's last record; ``head_refused`` refuses the whole
    batch (its signed head proves nothing) and flags the device.
    """
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
    if head_refused is not None:
        return await _refuse_head(conn, device_id=device_id, hwm=hwm, head=head, err=head_refused)

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

    accepted: list[Accepted] = []
    problem, why = None, ""
    for record in fresh:
        if limit is not None and len(accepted) == limit:
            if refusal is not None:
                problem, why = f"seq {record.seq}: {refusal}{WAITING}", "database"
            break
        if record.prev_hash != head:
            problem, why = (
                f"seq {record.seq}: prev_hash does not continue the stored chain",
                "chain",
            )
            break
        # decode() refused floats in journal bodies already, so the unchecked form is canonical
        body_text = canonical_text(record.body, checked=False)
        envelope = envelope_bytes(
            seq=record.seq, kind=record.kind, ts=record.ts, body_text=body_text
        )
        if hash_envelope(head, envelope) != record.hash:
            problem, why = f"seq {record.seq}: hash does not match the record's content", "chain"
            break
        try:
            sale = _sale(record)
        except InvalidSaleBody as err:
            problem = f"seq {record.seq}: the cloud cannot store it: {err.reason}{WAITING}"
            why = "invalid"
            break
        accepted.append(Accepted(record, body_text, sale))
        head = record.hash

    new_hwm = hwm + len(accepted)
    if accepted:
        if signed is not None and accepted[-1].record.seq == signed.seq:
            await store_head(
                conn,
                device_id=device_id,
                head=signed,
                now_ms=now_ms,
                known_certificate=known_certificate,
            )
        metrics.RECORDS_STORED.inc(len(accepted))
        for item in accepted:
            metrics.LAG.observe(max(0, now_ms - item.record.ts) / 1000)
    changes: dict[str, Any] = {"hwm": new_hwm, "head_hash": head, "last_ingest_at": now_ms}
    if accepted:
        changes["ingest_lag_ms"] = max(0, now_ms - accepted[-1].record.ts)
    if problem is not None:
        problem = clip(problem.replace("\x00", "\\0"))  # it travels in the ack's bounded error
        if why == "chain":
            metrics.CHAIN_BREAKS.inc()
        else:
            metrics.RECORDS_REFUSED.labels(why).inc()
        # the flag of a broken chain, reused: the console shows the device flagged, with why
        changes |= {
            "chain_ok": False,
            "chain_alerts": devices.c.chain_alerts + 1,
            "chain_detail": problem,
        }
    device_update = update(devices).where(devices.c.id == device_id).values(**changes)
    if accepted:
        await store_rows(
            conn,
            device_id=device_id,
            tenant_id=row.tenant_id,
            store_id=row.store_id,
            accepted=accepted,
            now_ms=now_ms,
            device_update=device_update,
        )
        # digital receipts owed for sales with a customer (control_plane/customers/receipts.py)
        await receipts.enqueue_receipts(
            conn, tenant_id=row.tenant_id, device_id=device_id, accepted=accepted, now_ms=now_ms
        )
    else:
        await conn.execute(device_update)
    if problem is not None:
        ack = JournalAck(hwm=new_hwm, head_hash=head, resend_from=new_hwm + 1, error=problem)
        return IngestOutcome(ack, len(accepted), duplicates, problem)
    return IngestOutcome(JournalAck(hwm=new_hwm, head_hash=head), len(accepted), duplicates)


async def _refuse_head(
    conn: AsyncConnection, *, device_id: str, hwm: int, head: str, err: HeadRefused
) -> IngestOutcome:
    """Nothing of the batch is stored; the device is flagged with why, the ack says it."""
    problem = clip(f"journal head refused ({err.reason}): {err.detail}".replace("\x00", "\\0"))
    await conn.execute(
        update(devices)
        .where(devices.c.id == device_id)
        .values(chain_ok=False, chain_alerts=devices.c.chain_alerts + 1, chain_detail=problem)
    )
    ack = JournalAck(hwm=hwm, head_hash=head, resend_from=hwm + 1, error=problem)
    return IngestOutcome(ack, 0, 0, problem)


def _sale(record: JournalRecord) -> SaleBody | None:
    """The record's sale, validated as the contract's :class:`SaleBody` (never defaulted)."""
    if record.kind != JournalKind.SALE_COMPLETED:
        return None
    return SaleBody.from_body(record.body)
