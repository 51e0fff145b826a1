"""Rollups: the reports' sums per device and 15 minutes, and per store and local day, provably
caught up with the journal.

Why: folding every sale's body on each request costs about a millisecond a sale on a busy
machine (``bench/reports.py``); every report but the shift close and the stock counts needs only
sums. Every time zone's midnight falls on a quarter hour, so sums per 15-minute UTC bucket add up
to any store's local day exactly; the daily rows are those sums already added up, which every
read over days, weeks or the fleet takes instead.

How it works: each device has a mark (``report_rollup_marks.upto_seq``): its rollups — every
table of :mod:`~control_plane.reports.rollup_tables`, both levels — hold exactly its journal
records up to that seq, no more, no fewer. :func:`fold_page` folds the records between the mark
and the device's high-water mark, a page at a time, and moves the mark over them. The ingest
does not fold (its acks would wait for it): the fold worker
(:mod:`~control_plane.reports.fold_worker`) folds what the ingest stored, in the background,
and every read catches up first — :func:`catch_up_stores` finds the devices whose mark is
behind (one query) and :func:`catch_up` folds them — so a report is exact, never a worker's
round behind.

Exactly once without a lock while folding: journal rows never change once committed, so a page
is read and folded with no lock held, then one short transaction claims its seqs by moving the
mark from where it was read (``UPDATE … WHERE upto_seq = <read>``, or the mark's first insert;
on PostgreSQL the mark row's lock, on SQLite the database's write lock) and adds the sums. Of
two folds of the same seqs (a read and a worker, two instances), the second finds the mark
moved and writes nothing; a fold cancelled or killed never committed, so the next one takes the
same seqs. The device row (the ingest's lock) is never locked by a fold. Records are decoded
and folded exactly as the reports fold the journal
(:func:`~control_plane.reports.rollup_fold.fold_facts`); :func:`verify` recomputes a device's
rollups from its journal and names every row that differs, :func:`verify_daily` a store's days
from their buckets.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.devices.tables import devices
from control_plane.devices.tables import stores as stores_table
from control_plane.ingest.tables import journal
from control_plane.reports.facts import Facts, StoreInfo, Where, decode_into
from control_plane.reports.period import Period
from control_plane.reports.rollup_fold import Folded, Row, fold_facts, merge_into
from control_plane.reports.rollup_tables import (
    SPECS,
    Spec,
    report_rollup_marks,
    report_rollups,
    report_tender_rollups,
)
from control_plane.reports.rollup_write import add_folded, daily_rows
from protocols.vocabulary import JournalKind

__all__ = ["report_rollup_marks", "report_rollups", "report_tender_rollups"]

#: How a read's rows are keyed first: by store, by currency or by time zone.
Per = Literal["store", "currency", "timezone"]
#: A quarter of an hour: every time zone's offset is a multiple of it.
BUCKET_MS = 900_000
K = JournalKind
KINDS = (K.SALE_COMPLETED, K.SALE_RETURNED, K.SALE_VOIDED, K.SHIFT_CASH_MOVED, K.DRAWER_OPENED)

#: Seqs a fold reads and writes in one go (one transaction), and records folded between two
#: turns of the event loop (about 5 ms of CPU each).
PAGE, CHUNK = 5000, 250

_NOWHERE = StoreInfo("", "", "", "UTC", "")


def bucket_of(ts: int) -> int:
    return ts - ts % BUCKET_MS


def _by_bucket(at: Where) -> tuple[object, ...]:
    return (bucket_of(at.ts),)


def fold_records(records: Iterable[tuple[int, str, int, dict[str, Any]]]) -> Folded:
    """Every rollup table's rows of ``(seq, kind, ts, body)`` records, keyed (bucket, *keys)."""
    facts = Facts(stores={"": _NOWHERE})
    for seq, kind, ts, body in records:
        if kind in KINDS:
            decode_into(facts, kind, Where("", "", "", seq, ts), body)
    return fold_facts(facts, _by_bucket)


def _zero(spec: Spec) -> Row:
    return dict.fromkeys(spec.sums, 0) | dict.fromkeys(spec.labels, "")


async def _mark(conn: AsyncConnection, device_id: str) -> int | None:
    return (
        await conn.execute(
            select(report_rollup_marks.c.upto_seq).where(
                report_rollup_marks.c.device_id == device_id
            )
        )
    ).scalar_one_or_none()


def _records_query(device_id: str, after: int, upto: int) -> Any:
    return (
        select(journal.c.seq, journal.c.kind, journal.c.ts, journal.c.body)
        .where(
            journal.c.device_id == device_id,
            journal.c.seq > after,
            journal.c.seq <= upto,
            journal.c.kind.in_([str(k) for k in KINDS]),
        )
        .order_by(journal.c.seq)
    )


async def catch_up(
    engine: AsyncEngine, device_ids: Iterable[str], *, page: int = PAGE, chunk: int = CHUNK
) -> int:
    """Fold each device's records beyond its mark into both levels; how many were folded."""
    folded = 0
    for device_id in device_ids:
        while (done := await fold_page(engine, device_id, page=page, chunk=chunk)) is not None:
            folded += done
    return folded


async def fold_page(
    engine: AsyncEngine, device_id: str, *, page: int = PAGE, chunk: int = CHUNK
) -> int | None:
    """Fold up to ``page`` seqs past the device's mark and move the mark over them: how many
    records were folded (0 when another fold claimed the same seqs first), None when the device
    is caught up.

    No lock is held while folding: the records are read and folded first (journal rows never
    change once committed, and a committed high-water mark covers only committed rows), then
    one short transaction claims the seqs by moving the mark from where it was read
    (:func:`_claim`) and adds the sums. A concurrent fold of the same seqs (a read, another
    instance's worker) finds the mark moved and writes nothing, so each record is summed
    exactly once, and the ingest never waits for a fold."""
    marks = report_rollup_marks
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                select(devices.c.hwm, devices.c.store_id, stores_table.c.timezone, marks.c.upto_seq)
                .join(stores_table, stores_table.c.id == devices.c.store_id)
                .outerjoin(marks, marks.c.device_id == devices.c.id)
                .where(devices.c.id == device_id)
            )
        ).first()
        if found is None:
            return None
        mark: int | None = None if found.upto_seq is None else int(found.upto_seq)
        after = mark or 0
        if after >= int(found.hwm):
            return None
        upto = min(int(found.hwm), after + page)
        rows = (await conn.execute(_records_query(device_id, after, upto))).all()
    folded = await fold_rows(rows, chunk=chunk)

    async def commit_page() -> bool:
        async with engine.begin() as conn:
            if not await _claim(conn, device_id, mark=mark, upto=upto):
                return False  # another fold took these seqs: its sums stand, ours go
            await add_folded(
                conn,
                device_id=device_id,
                store_id=found.store_id,
                timezone=found.timezone,
                folded=folded,
                upto=upto,
            )
        return True

    return len(rows) if await _to_the_end(commit_page()) else 0


async def _to_the_end(write: Coroutine[Any, Any, bool]) -> bool:
    """Run the page's write transaction to its commit or rollback even when the fold is
    cancelled meanwhile (a report's request gone, a worker stopped), then pass the cancel on.

    A cancel inside the transaction would leave its connection for the pool and the driver to
    unwind while it holds SQLite's write lock; the transaction is a few short statements, so the
    cancel waits for them instead. The read and the fold before it hold no lock and stay
    cancellable anywhere."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])  # a second cancel here leaves the task to end by itself
        raise


async def fold_rows(rows: Sequence[Any], *, chunk: int = CHUNK) -> Folded:
    """Journal rows ``(seq, kind, ts, body text)`` folded ``chunk`` at a time, the event loop
    let run between chunks (a page's fold is CPU work: in one piece it would hold up every
    ack of this process for its whole length)."""
    folded = fold_records(())
    for start in range(0, len(rows), chunk):
        merge_into(folded, fold_records(_decoded(rows[start : start + chunk])))
        await asyncio.sleep(0)
    return folded


async def _claim(conn: AsyncConnection, device_id: str, *, mark: int | None, upto: int) -> bool:
    """Move the device's mark from ``mark`` (None: no mark row yet) to ``upto``, only if it is
    still there: the first write of the fold's transaction, so on PostgreSQL it takes the mark
    row's lock (a concurrent claim waits, then finds the mark moved: 0 rows) and on SQLite the
    database's write lock (the next writer starts after this commit and sees it)."""
    marks = report_rollup_marks
    if mark is None:
        result = await conn.execute(_MARK_FIRST, {"device_id": device_id, "upto": upto})
    else:
        result = await conn.execute(
            update(marks)
            .where(marks.c.device_id == device_id, marks.c.upto_seq == mark)
            .values(upto_seq=upto)
        )
    return bool(result.rowcount == 1)


_MARK_FIRST = text(
    "INSERT INTO report_rollup_marks (device_id, upto_seq) VALUES (:device_id, :upto) "
    "ON CONFLICT (device_id) DO NOTHING"
)


async def catch_up_stores(
    engine: AsyncEngine, store_ids: Sequence[str], *, device_id: str | None = None
) -> int:
    """Catch up the stores' devices (or the one register) whose mark is behind their journal:
    one query finds them, so a read of caught-up rollups costs no transaction per device."""
    marks = report_rollup_marks
    query = (
        select(devices.c.id)
        .outerjoin(marks, marks.c.device_id == devices.c.id)
        .where(
            devices.c.store_id.in_(list(store_ids)),
            devices.c.hwm > func.coalesce(marks.c.upto_seq, 0),
        )
    )
    if device_id is not None:
        query = query.where(devices.c.id == device_id)
    async with engine.connect() as conn:
        behind = list((await conn.execute(query)).scalars())
    return await catch_up(engine, behind)


def _decoded(rows: Iterable[Any]) -> list[tuple[int, str, int, dict[str, Any]]]:
    out = []
    for seq, kind, ts, body_text in rows:
        try:
            body = orjson.loads(body_text)
        except orjson.JSONDecodeError:
            body = None
        out.append((int(seq), str(kind), int(ts), body if isinstance(body, dict) else {}))
    return out


async def verify(engine: AsyncEngine, device_id: str) -> list[str]:
    """Recompute the device's rollups from its journal up to the mark; every row that differs."""
    async with engine.connect() as conn:
        mark = await _mark(conn, device_id) or 0
        rows = (await conn.execute(_records_query(device_id, 0, mark))).all()
        stored: dict[str, dict[tuple[object, ...], Row]] = {}
        for spec in SPECS:
            t = spec.table
            stored[spec.name] = {
                (int(r.bucket), *(r._mapping[k] for k in spec.keys)): {
                    name: (str(r._mapping[name]) if name in spec.labels else int(r._mapping[name]))
                    for name in (*spec.sums, *spec.labels)
                }
                for r in await conn.execute(select(t).where(t.c.device_id == device_id))
            }
    expected = fold_records(_decoded(rows))
    problems = []
    for spec in SPECS:
        have, want = stored[spec.name], expected[spec.name]
        for key in sorted(set(have) | set(want), key=str):
            zero = _zero(spec)
            if have.get(key, zero) != want.get(key, zero):
                keys = f" {key[1:]}" if spec.keys else ""
                problems.append(
                    f"{spec.name} bucket {key[0]}{keys}: stored {have.get(key)}"
                    f" != journal {want.get(key)}"
                )
    return problems


async def verify_daily(engine: AsyncEngine, store_id: str) -> list[str]:
    """Every daily row of the store that is not the sum of its devices' 15-minute rows of that
    local day (in the store's time zone)."""
    async with engine.connect() as conn:
        timezone = (
            await conn.execute(select(stores_table.c.timezone).where(stores_table.c.id == store_id))
        ).scalar_one()
        problems = []
        for spec in SPECS:
            t, daily = spec.table, spec.daily.table
            buckets: dict[tuple[object, ...], Row] = {}
            query = (
                select(t)
                .join(devices, devices.c.id == t.c.device_id)
                .where(devices.c.store_id == store_id)
            )
            for r in await conn.execute(query):
                key = (int(r.bucket), *(r._mapping[k] for k in spec.keys))
                into = buckets.setdefault(key, _zero(spec))
                for name in spec.sums:
                    into[name] = int(into[name]) + int(r._mapping[name])
                for name in spec.labels:
                    into[name] = max(str(into[name]), str(r._mapping[name]))
            want = daily_rows(buckets, spec, timezone)
            have: dict[tuple[object, ...], Row] = {
                (r.day, *(r._mapping[k] for k in spec.keys)): {
                    name: (str(r._mapping[name]) if name in spec.labels else int(r._mapping[name]))
                    for name in (*spec.sums, *spec.labels)
                }
                for r in await conn.execute(select(daily).where(daily.c.store_id == store_id))
            }
            for key in sorted(set(have) | set(want), key=str):
                zero = _zero(spec)
                if have.get(key, zero) != want.get(key, zero):
                    problems.append(
                        f"{daily.name} {key}: stored {have.get(key)} != its buckets {want.get(key)}"
                    )
    return problems


async def read_sums(
    engine: AsyncEngine,
    spec: Spec,
    *,
    stores: dict[str, StoreInfo],
    bounds: dict[str, tuple[int, int]],
    device_id: str | None = None,
    by: tuple[str, ...] = (),
    by_bucket: bool = False,
    per: Per = "store",
    nonzero: tuple[str, ...] = (),
) -> dict[tuple[object, ...], Row]:
    """One rollup table summed inside each store's bounds, keyed ``(store id, currency or time
    zone as ``per`` says, [bucket], *by)``: the database adds up (one query per distinct bounds,
    currency and time zone, not per store); ``nonzero`` reads only rows where one of those sums
    is not 0. Call :func:`catch_up_stores` first."""
    groups: dict[tuple[tuple[int, int], str, str], list[str]] = defaultdict(list)
    for store_id, edges in bounds.items():
        info = stores[store_id]
        groups[(edges, info.currency, info.timezone)].append(store_id)
    t = spec.table
    keys: list[Any] = [devices.c.store_id] if per == "store" else []
    keys += [t.c.bucket] if by_bucket else []
    keys += [t.c[k] for k in by]
    out: dict[tuple[object, ...], Row] = {}
    async with engine.connect() as conn:
        for ((start, end), currency, timezone), ids in groups.items():
            where: list[ColumnElement[bool]] = [
                devices.c.store_id.in_(ids),
                devices.c.tenant_id.in_({stores[i].tenant_id for i in ids}),
                t.c.bucket >= start,
                t.c.bucket < end,
            ]
            if device_id is not None:
                where.append(devices.c.id == device_id)
            if nonzero:
                where.append(or_(*[t.c[name] != 0 for name in nonzero]))
            query = (
                select(
                    *keys,
                    *[func.sum(t.c[name]).label(name) for name in spec.sums],
                    *[func.max(t.c[name]).label(name) for name in spec.labels],
                )
                .join(devices, devices.c.id == t.c.device_id)
                .where(and_(*where))
            )
            if keys:
                query = query.group_by(*keys)
            for row in await conn.execute(query):
                values = row._mapping
                if values[spec.sums[0]] is None:  # no row at all: the sums are NULL
                    continue
                first = {"store": values.get("store_id"), "currency": currency}.get(per, timezone)
                key: tuple[object, ...] = (first,)
                key += (int(values["bucket"]),) if by_bucket else ()
                key += tuple(values[k] for k in by)
                into = out.setdefault(key, _zero(spec))
                for name in spec.sums:
                    into[name] = int(into[name]) + int(values[name])
                for name in spec.labels:
                    into[name] = max(str(into[name]), str(values[name]))
    return out


async def read_daily_sums(
    engine: AsyncEngine,
    spec: Spec,
    *,
    stores: dict[str, StoreInfo],
    period: Period,
    by: tuple[str, ...] = (),
    by_day: bool = False,
    per: Per = "store",
    nonzero: tuple[str, ...] = (),
) -> dict[tuple[object, ...], Row]:
    """``spec``'s daily rollup summed over the period's local dates (the same dates in every
    store's own time zone), keyed ``(store id, currency or time zone as ``per`` says, [day],
    *by)`` like :func:`read_sums`: one query per currency or time zone (one in all per store),
    however many stores. Call :func:`catch_up_stores` first."""
    groups: dict[str, list[str]] = defaultdict(list)
    for store_id, info in stores.items():
        groups[{"store": "", "currency": info.currency}.get(per, info.timezone)].append(store_id)
    t = spec.daily.table
    keys: list[Any] = [t.c.store_id] if per == "store" else []
    keys += [t.c.day] if by_day else []
    keys += [t.c[k] for k in by]
    out: dict[tuple[object, ...], Row] = {}
    async with engine.connect() as conn:
        for group, ids in groups.items():
            where: list[ColumnElement[bool]] = [
                t.c.store_id.in_(ids),
                stores_table.c.tenant_id.in_({stores[i].tenant_id for i in ids}),
                t.c.day >= period.first,
                t.c.day <= period.last,
            ]
            if nonzero:
                where.append(or_(*[t.c[name] != 0 for name in nonzero]))
            query = (
                select(
                    *keys,
                    *[func.sum(t.c[name]).label(name) for name in spec.sums],
                    *[func.max(t.c[name]).label(name) for name in spec.labels],
                )
                .join(stores_table, stores_table.c.id == t.c.store_id)
                .where(and_(*where))
            )
            if keys:
                query = query.group_by(*keys)
            for row in await conn.execute(query):
                values = row._mapping
                if values[spec.sums[0]] is None:  # no row at all: the sums are NULL
                    continue
                key: tuple[object, ...] = (values["store_id"] if per == "store" else group,)
                key += (values["day"],) if by_day else ()
                key += tuple(values[k] for k in by)
                out[key] = {name: int(values[name]) for name in spec.sums} | {
                    name: str(values[name]) for name in spec.labels
                }
    return out
