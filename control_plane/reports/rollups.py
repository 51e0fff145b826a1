"""Rollups: the summary's sums per device and 15 minutes, provably caught up with the journal.

Why: folding every sale's body on each request costs about a millisecond a sale on a busy
machine (``bench/reports.py``); the sales summary, the store comparison and the trends only need
sums. Every time zone's midnight falls on a quarter hour, so sums per 15-minute UTC bucket add up
to any store's local day exactly.

How it works: each device has a mark (``report_rollup_marks.upto_seq``): its rollups hold exactly
its journal records up to that seq, no more, no fewer. Before a report reads a device's rollups,
:func:`catch_up` folds the records between the mark and the device's high-water mark and moves
the mark, in one transaction holding the device row's lock (the ingest's own lock, ``FOR UPDATE``
on PostgreSQL; SQLite serialises writers), so a record is summed exactly once even with several
control-plane instances reading at once. The ingest is not touched: replication pays nothing for
the rollups, and a read pays only for the records that arrived since the last read. Records are
decoded exactly as the reports decode them (:mod:`~control_plane.reports.facts`), so a rollup is
the sum a report folds from the journal; :func:`verify` recomputes a device's rollups from its
journal and names every bucket that differs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    PrimaryKeyConstraint,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.db.tables import devices, journal, metadata
from control_plane.reports.facts import Facts, StoreInfo, Where, decode_into
from control_plane.reports.figures import Totals
from protocols.vocabulary import JournalKind

#: A quarter of an hour: every time zone's offset is a multiple of it.
BUCKET_MS = 900_000
K = JournalKind
KINDS = (K.SALE_COMPLETED, K.SALE_RETURNED, K.SALE_VOIDED, K.SHIFT_CASH_MOVED)
SUMS = (
    "sales_count", "sales_minor", "discounts_minor", "sales_tax_minor", "rounding_minor",
    "returns_count", "returns_minor", "returns_tax_minor", "voids_count", "voided_lines",
    "cash_in_minor", "cash_out_minor",
)  # fmt: skip

report_rollups = Table(
    "report_rollups",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    *[Column(name, BigInteger, nullable=False, server_default="0") for name in SUMS],
    PrimaryKeyConstraint("device_id", "bucket"),
)
report_tender_rollups = Table(
    "report_tender_rollups",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("tender", String(64), nullable=False),
    Column("count", BigInteger, nullable=False, server_default="0"),
    Column("amount_minor", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("device_id", "bucket", "tender"),
)
report_rollup_marks = Table(
    "report_rollup_marks",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("upto_seq", BigInteger, nullable=False),
)

_NOWHERE = StoreInfo("", "", "", "UTC", "")


def bucket_of(ts: int) -> int:
    return ts - ts % BUCKET_MS


def fold_records(records: Iterable[tuple[int, str, int, dict[str, Any]]]) -> dict[int, Totals]:
    """Totals per bucket of ``(seq, kind, ts, body)`` records, decoded as the reports do."""
    facts = Facts(stores={"": _NOWHERE})
    for seq, kind, ts, body in records:
        if kind in KINDS:
            decode_into(facts, kind, Where("", "", "", seq, ts), body)
    out: dict[int, Totals] = defaultdict(Totals)
    for sale in facts.sales:
        out[bucket_of(sale.at.ts)].add_sale(sale)
    for ret in facts.returns:
        out[bucket_of(ret.at.ts)].add_return(ret)
    for void in facts.voids:
        out[bucket_of(void.at.ts)].voids_count += 1
    for move in facts.cash_moves:
        totals = out[bucket_of(move.at.ts)]
        if move.direction == "in":
            totals.cash_in_minor += move.amount_minor
        else:
            totals.cash_out_minor += move.amount_minor
    return dict(out)


def sums(totals: Totals) -> dict[str, int]:
    return {name: int(getattr(totals, name)) for name in SUMS}


async def _add(conn: AsyncConnection, device_id: str, folded: dict[int, Totals]) -> None:
    """Add ``folded`` to the device's rollups (the caller holds the device's lock): new buckets
    inserted and existing ones incremented, each kind in one executemany."""
    if not folded:
        return
    low, high = min(folded), max(folded)
    r, t = report_rollups, report_tender_rollups
    have = set(
        (
            await conn.execute(
                select(r.c.bucket).where(
                    r.c.device_id == device_id, r.c.bucket >= low, r.c.bucket <= high
                )
            )
        ).scalars()
    )
    fresh = [
        {"device_id": device_id, "bucket": bucket, **sums(totals)}
        for bucket, totals in folded.items()
        if bucket not in have
    ]
    if fresh:
        await conn.execute(insert(r), fresh)
    grown = [
        {"d": device_id, "b": bucket, **{f"{k}_delta": v for k, v in sums(totals).items()}}
        for bucket, totals in folded.items()
        if bucket in have
    ]
    if grown:
        await conn.execute(
            update(r)
            .where(r.c.device_id == bindparam("d"), r.c.bucket == bindparam("b"))
            .values({name: r.c[name] + bindparam(f"{name}_delta") for name in SUMS}),
            grown,
        )
    known = {
        (row.bucket, row.tender)
        for row in await conn.execute(
            select(t.c.bucket, t.c.tender).where(
                t.c.device_id == device_id, t.c.bucket >= low, t.c.bucket <= high
            )
        )
    }
    tenders = [
        (bucket, tender, count, amount)
        for bucket, totals in folded.items()
        for tender, (count, amount) in totals.tenders.items()
    ]
    fresh_tenders = [
        {"device_id": device_id, "bucket": b, "tender": k, "count": c, "amount_minor": a}
        for b, k, c, a in tenders
        if (b, k) not in known
    ]
    if fresh_tenders:
        await conn.execute(insert(t), fresh_tenders)
    grown_tenders = [
        {"d": device_id, "b": b, "k": k, "c": c, "a": a}
        for b, k, c, a in tenders
        if (b, k) in known
    ]
    if grown_tenders:
        await conn.execute(
            update(t)
            .where(
                t.c.device_id == bindparam("d"),
                t.c.bucket == bindparam("b"),
                t.c.tender == bindparam("k"),
            )
            .values(
                count=t.c.count + bindparam("c"), amount_minor=t.c.amount_minor + bindparam("a")
            ),
            grown_tenders,
        )


async def _mark(conn: AsyncConnection, device_id: str) -> int | None:
    return (
        await conn.execute(
            select(report_rollup_marks.c.upto_seq).where(
                report_rollup_marks.c.device_id == device_id
            )
        )
    ).scalar_one_or_none()


async def _set_mark(conn: AsyncConnection, device_id: str, old: int | None, new: int) -> None:
    if old is None:
        await conn.execute(insert(report_rollup_marks).values(device_id=device_id, upto_seq=new))
    else:
        await conn.execute(
            update(report_rollup_marks)
            .where(report_rollup_marks.c.device_id == device_id)
            .values(upto_seq=new)
        )


async def catch_up(engine: AsyncEngine, device_ids: Iterable[str], *, page: int = 5000) -> int:
    """Fold each device's records beyond its mark; returns how many records were folded."""
    folded = 0
    for device_id in device_ids:
        while True:
            async with engine.begin() as conn:
                query = select(devices.c.hwm).where(devices.c.id == device_id)
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()  # the ingest's lock: no batch in between
                hwm = (await conn.execute(query)).scalar_one_or_none()
                mark = await _mark(conn, device_id)
                if hwm is None or (mark or 0) >= hwm:
                    break
                upto = min(int(hwm), (mark or 0) + page)
                rows = (
                    await conn.execute(
                        select(journal.c.seq, journal.c.kind, journal.c.ts, journal.c.body)
                        .where(
                            journal.c.device_id == device_id,
                            journal.c.seq > (mark or 0),
                            journal.c.seq <= upto,
                            journal.c.kind.in_([str(k) for k in KINDS]),
                        )
                        .order_by(journal.c.seq)
                    )
                ).all()
                await _add(conn, device_id, fold_records(_decoded(rows)))
                await _set_mark(conn, device_id, mark, upto)
                folded += len(rows)
    return folded


def _decoded(rows: Iterable[Any]) -> list[tuple[int, str, int, dict[str, Any]]]:
    out = []
    for seq, kind, ts, text in rows:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        out.append((int(seq), str(kind), int(ts), body if isinstance(body, dict) else {}))
    return out


async def verify(engine: AsyncEngine, device_id: str) -> list[str]:
    """Recompute the device's rollups from its journal up to the mark; every bucket that differs."""
    async with engine.connect() as conn:
        mark = await _mark(conn, device_id) or 0
        rows = (
            await conn.execute(
                select(journal.c.seq, journal.c.kind, journal.c.ts, journal.c.body).where(
                    journal.c.device_id == device_id,
                    journal.c.seq <= mark,
                    journal.c.kind.in_([str(k) for k in KINDS]),
                )
            )
        ).all()
        stored = {
            row.bucket: {name: int(row._mapping[name]) for name in SUMS}
            for row in await conn.execute(
                select(report_rollups).where(report_rollups.c.device_id == device_id)
            )
        }
        tenders: dict[tuple[int, str], tuple[int, int]] = {
            (row.bucket, row.tender): (int(row._mapping["count"]), int(row.amount_minor))
            for row in await conn.execute(
                select(report_tender_rollups).where(report_tender_rollups.c.device_id == device_id)
            )
        }
    expected = fold_records(_decoded(rows))
    problems = []
    for bucket in sorted(set(stored) | set(expected)):
        want = sums(expected.get(bucket, Totals()))
        if stored.get(bucket, dict.fromkeys(SUMS, 0)) != want:
            problems.append(f"bucket {bucket}: stored {stored.get(bucket)} != journal {want}")
    want_tenders = {
        (bucket, tender): (count, amount)
        for bucket, totals in expected.items()
        for tender, (count, amount) in totals.tenders.items()
    }
    if tenders != want_tenders:
        problems.append(f"tenders: stored {tenders} != journal {want_tenders}")
    return problems


async def read(
    engine: AsyncEngine,
    *,
    stores: dict[str, StoreInfo],
    bounds: dict[str, tuple[int, int]],
    device_id: str | None = None,
    by_bucket: bool = True,
) -> dict[str, dict[int, Totals]]:
    """Per store, Totals per bucket inside the store's bounds (caught up first); with
    ``by_bucket`` False the database sums the buckets and each store has one, keyed 0."""
    async with engine.connect() as conn:
        query = select(devices.c.id).where(devices.c.store_id.in_(list(stores)))
        if device_id is not None:
            query = query.where(devices.c.id == device_id)
        device_ids = list((await conn.execute(query)).scalars())
    await catch_up(engine, device_ids)
    out: dict[str, dict[int, Totals]] = {store_id: defaultdict(Totals) for store_id in stores}
    r, t = report_rollups, report_tender_rollups
    async with engine.connect() as conn:
        for store_id, (start, end) in bounds.items():
            base = [
                devices.c.store_id == store_id,
                devices.c.tenant_id == stores[store_id].tenant_id,
            ]
            if device_id is not None:
                base.append(devices.c.id == device_id)
            sums_query = select(*[func.sum(r.c[name]).label(name) for name in SUMS])
            if by_bucket:
                sums_query = sums_query.add_columns(r.c.bucket).group_by(r.c.bucket)
            rows = await conn.execute(
                sums_query.join(devices, devices.c.id == r.c.device_id).where(
                    *base, r.c.bucket >= start, r.c.bucket < end
                )
            )
            for row in rows:
                values = row._mapping
                if values["sales_count"] is None:  # no bucket at all: the sums are NULL
                    continue
                totals = out[store_id][int(values["bucket"]) if by_bucket else 0]
                for name in SUMS:
                    setattr(totals, name, getattr(totals, name) + int(values[name]))
            tender_query = select(
                t.c.tender,
                func.sum(t.c.count).label("n"),
                func.sum(t.c.amount_minor).label("amount"),
            ).group_by(t.c.tender)
            if by_bucket:
                tender_query = tender_query.add_columns(t.c.bucket).group_by(t.c.bucket)
            rows = await conn.execute(
                tender_query.join(devices, devices.c.id == t.c.device_id).where(
                    *base, t.c.bucket >= start, t.c.bucket < end
                )
            )
            for row in rows:
                values = row._mapping
                totals = out[store_id][int(values["bucket"]) if by_bucket else 0]
                bucket = totals.tenders.setdefault(values["tender"], [0, 0])
                bucket[0] += int(values["n"])
                bucket[1] += int(values["amount"])
    return out
