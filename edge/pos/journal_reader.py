"""Reading the register's own records back from the ledger journal.

How it works: the ledger stores each record as wire JSON with the body inside. A
``sale.completed`` body is the ledger's summary with the checkout's full ``Sale`` under
``"checkout"``; every other checkout kind (returns, shift events, reports) is the record's own
body. ``decode`` turns one stored record into the domain record (or None for kinds and sales the
checkout did not write, such as the simulated register's). ``catch_up`` feeds ``pos.db``'s
index from where it stopped; ``open_shift`` replays the open shift from its ``shift.opened``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from edge.checkout.errors import JournalBodyError
from edge.checkout.journal_body import JournalRecord
from edge.checkout.records import decode_journal_body
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale, SaleVoided
from edge.checkout.shift import CashMoved, Shift, ShiftClosed, ShiftOpened
from edge.ledger import Ledger, StoredRecord
from edge.pos.register_db import IndexEntry, RegisterDb
from protocols.vocabulary import JournalKind

CHECKOUT_KINDS = frozenset(
    {
        JournalKind.SALE_COMPLETED,
        JournalKind.SALE_VOIDED,
        JournalKind.SALE_RETURNED,
        JournalKind.SHIFT_OPENED,
        JournalKind.SHIFT_CASH_MOVED,
        JournalKind.SHIFT_CLOSED,
        JournalKind.REPORT_X,
        JournalKind.REPORT_Z,
    }
)
BATCH = 1000


def _body(stored: StoredRecord) -> tuple[str, dict[str, Any]]:
    wire = json.loads(stored.record)
    return str(wire["kind"]), wire["body"]


def decode(stored: StoredRecord) -> JournalRecord | None:
    """The checkout record in a stored journal record, or None if it holds none."""
    kind, body = _body(stored)
    if kind not in CHECKOUT_KINDS:
        return None
    if kind == JournalKind.SALE_COMPLETED:
        detail = body.get("checkout")
        if not isinstance(detail, dict):
            return None  # a sale booked without the checkout (simulated register)
        body = detail
    try:
        return decode_journal_body(body)
    except (JournalBodyError, KeyError, TypeError, ValueError):
        return None


def index_entry(stored: StoredRecord) -> IndexEntry | None:
    """What ``pos.db`` indexes about one record."""
    kind, body = _body(stored)
    if kind == JournalKind.SALE_COMPLETED:
        return IndexEntry(stored.seq, receipt_no=int(body["receipt_no"]), kind=kind)
    if kind == JournalKind.SALE_RETURNED:
        original = body.get("original_sale_id")
        return IndexEntry(
            stored.seq,
            receipt_no=int(body["receipt_number"]),
            kind=kind,
            original_sale_id=None if original is None else str(original),
        )
    if kind in (JournalKind.REPORT_X, JournalKind.REPORT_Z) and "receipt_no" in body:
        return IndexEntry(stored.seq, receipt_no=int(body["receipt_no"]), kind=kind)
    if kind == JournalKind.SHIFT_OPENED:
        return IndexEntry(stored.seq, kind=kind, shift_opened=True)
    return None


async def records_from(ledger: Ledger, from_seq: int) -> AsyncIterator[StoredRecord]:
    """Every stored record from ``from_seq`` to the head, in batches."""
    seq = max(1, from_seq)
    while seq <= ledger.last_seq:
        batch = await ledger.read_records(seq, BATCH)
        if not batch:
            return
        for stored in batch:
            yield stored
        seq = batch[-1].seq + 1


async def catch_up(ledger: Ledger, db: RegisterDb) -> int:
    """Index what the ledger holds beyond ``indexed_seq``; returns how many records were read."""
    start = await db.state("indexed_seq") + 1
    entries: list[IndexEntry] = []
    read = 0
    async for stored in records_from(ledger, start):
        read += 1
        entry = index_entry(stored)
        if entry is not None:
            entries.append(entry)
        if len(entries) >= BATCH:
            await db.index(entries, upto_seq=stored.seq)
            entries = []
    await db.index(entries, upto_seq=ledger.last_seq)
    return read


async def record_at(ledger: Ledger, seq: int) -> JournalRecord | None:
    """The checkout record at ``seq``."""
    found = await ledger.read_records(seq, 1)
    return decode(found[0]) if found and found[0].seq == seq else None


async def open_shift(ledger: Ledger, db: RegisterDb) -> tuple[Shift | None, list[JournalRecord]]:
    """The shift opened last, replayed (``closed`` set if it was closed), and its records."""
    shift_seq = await db.state("shift_seq")
    if shift_seq == 0:
        return None, []
    records: list[JournalRecord] = []
    async for stored in records_from(ledger, shift_seq):
        record = decode(stored)
        if record is not None:
            records.append(record)
    if not records or not isinstance(records[0], ShiftOpened):
        return None, []
    shift_id = records[0].shift_id
    mine = [
        r
        for r in records
        if isinstance(r, (ShiftOpened, ShiftClosed, Sale, SaleReturn, SaleVoided, CashMoved))
        and r.shift_id == shift_id
    ]
    shift = Shift.replay(mine)
    return shift, records


async def sale_by_receipt(ledger: Ledger, db: RegisterDb, receipt_no: int) -> Sale | None:
    """The sale that printed ``receipt_no`` on this register."""
    found = await db.receipt_seq(receipt_no)
    if found is None or found[1] != JournalKind.SALE_COMPLETED:
        return None
    record = await record_at(ledger, found[0])
    return record if isinstance(record, Sale) else None


async def returns_of(ledger: Ledger, db: RegisterDb, sale: Sale) -> list[SaleReturn]:
    """Every return booked against ``sale``."""
    out: list[SaleReturn] = []
    for seq in await db.return_seqs(sale.sale_id):
        record = await record_at(ledger, seq)
        if isinstance(record, SaleReturn):
            out.append(record)
    return out
