"""The cloud's stock figures, provably caught up with the replicated journal.

How it works (the reports' rollups do the same, :mod:`control_plane.reports.rollups`): each
device has a mark (``stock_marks.upto_seq``): the stock tables hold exactly its journal records
up to that seq. :func:`catch_up` folds the records between a device's mark and its high-water
mark (:mod:`control_plane.stock.fold`) and moves the mark, in one transaction holding the
device row's lock — the ingest's own lock (``FOR UPDATE`` on PostgreSQL; SQLite serialises
writers) — so a record is applied exactly once however many control-plane instances catch up at
once, and the ingest is not touched: replication pays nothing for stock. Every read catches its
stores up first (:func:`catch_up_devices_behind`, one query finds who is behind) and the
supervised loop :func:`run_catch_up` does it every few seconds, so low-stock alerts
(:mod:`control_plane.stock.low_stock`, raised in the same transaction) do not wait for a reader.

Per run: the figures it touches are read (locked on PostgreSQL) before, written after — a count
as an absolute figure, every other run as an increment, so two registers of one store folding
at once both count — and their threshold crossings raise or clear alerts. Each half of a
transfer is recorded against the transfer, whichever arrives first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.catalog.tables import catalog_items
from control_plane.db.write_lock import hold_write_lock
from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.stock.fold import MOVING_KINDS, Effects, Record, fold, item_codes
from control_plane.stock.low_stock import Crossing, apply_crossings
from control_plane.stock.tables import (
    stock_daily_sales,
    stock_marks,
    stock_on_hand,
    stock_transfer_lines,
    stock_transfers,
)
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.stock_transfer import as_gtin14

log = logging.getLogger(__name__)
T = TypeVar("T")

SKIPPED = Counter(
    "storefleet_stock_lines_skipped",
    "Journal lines the stock projection could not place, by reason",
    ["reason"],
)
FOLDED = Counter("storefleet_stock_records_folded", "Journal records folded into stock figures")
#: Records per transaction; parameters per statement stay well inside both stores' limits.
PAGE = 2000
CHUNK = 500


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def catch_up(engine: AsyncEngine, device_ids: Iterable[str], *, page: int = PAGE) -> int:
    """Fold each device's records beyond its mark; returns how many records were folded."""
    folded = 0
    for device_id in device_ids:
        while True:
            async with engine.begin() as conn:
                done = await _catch_up_page(conn, device_id, page)
            if done is None:
                break
            folded += done
    FOLDED.inc(folded)
    return folded


async def catch_up_devices_behind(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, store_ids: Sequence[str] = ()
) -> int:
    """Catch up every device in scope (or of ``store_ids``) whose mark is behind its journal."""
    query = (
        select(devices.c.id)
        .outerjoin(stock_marks, stock_marks.c.device_id == devices.c.id)
        .where(
            scope.where(devices.c.tenant_id),
            devices.c.hwm > func.coalesce(stock_marks.c.upto_seq, 0),
        )
        .order_by(devices.c.id)
    )
    if store_ids:
        query = query.where(devices.c.store_id.in_(list(store_ids)))
    async with engine.connect() as conn:
        behind = list((await conn.execute(query)).scalars())
    return await catch_up(engine, behind) if behind else 0


async def run_catch_up(engine: AsyncEngine, *, interval_s: float = 5.0) -> None:
    """Catch every device up every ``interval_s`` until cancelled; a failed tick is retried."""
    while True:
        try:
            await catch_up_devices_behind(engine)
        except Exception:
            log.exception("stock: catching up failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)


async def _catch_up_page(conn: AsyncConnection, device_id: str, page: int) -> int | None:
    """One transaction: fold up to ``page`` seqs past the mark; None when caught up."""
    await hold_write_lock(conn)  # SQLite: two catch-ups would both fold the seqs past one mark
    query = select(devices.c.hwm, devices.c.tenant_id, devices.c.store_id).where(
        devices.c.id == device_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # the ingest's lock: no batch in between
    device = (await conn.execute(query)).first()
    marked = (
        await conn.execute(
            select(stock_marks.c.upto_seq).where(stock_marks.c.device_id == device_id)
        )
    ).scalar_one_or_none()
    mark = int(marked or 0)
    if device is None or mark >= int(device.hwm):
        return None
    upto = min(int(device.hwm), mark + page)
    rows = await conn.execute(
        select(journal.c.kind, journal.c.ts, journal.c.body)
        .where(
            journal.c.device_id == device_id,
            journal.c.seq > mark,
            journal.c.seq <= upto,
            journal.c.kind.in_([str(k) for k in MOVING_KINDS]),
        )
        .order_by(journal.c.seq)
    )
    records: list[Record] = [(str(k), int(ts), json.loads(body)) for k, ts, body in rows]
    if records:
        gtin_of = await catalog_gtins(conn, tenant_id=device.tenant_id, codes=item_codes(records))
        effects = fold(records, gtin_of=gtin_of)
        await apply_effects(
            conn,
            tenant_id=device.tenant_id,
            store_id=device.store_id,
            device_id=device_id,
            effects=effects,
            now_ms=_now_ms(),
        )
    if marked is None:
        await conn.execute(stock_marks.insert().values(device_id=device_id, upto_seq=upto))
    else:
        await conn.execute(
            update(stock_marks).where(stock_marks.c.device_id == device_id).values(upto_seq=upto)
        )
    return len(records)


async def catalog_gtins(
    conn: AsyncConnection, *, tenant_id: str, codes: Iterable[str]
) -> dict[str, str]:
    """Item id → its first GTIN-14 in the tenant's catalog (as the register maps its sales)."""
    out: dict[str, str] = {}
    for chunk in _chunks(sorted(codes)):
        rows = await conn.execute(
            select(catalog_items.c.item_id, catalog_items.c.body).where(
                catalog_items.c.tenant_id == tenant_id, catalog_items.c.item_id.in_(chunk)
            )
        )
        for item_id, body in rows:
            gtins = json.loads(body).get("gtins") or []
            gtin = next((g for c in gtins if (g := as_gtin14(str(c))) is not None), None)
            if gtin is not None:
                out[str(item_id)] = gtin
    return out


async def apply_effects(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    store_id: str,
    device_id: str,
    effects: Effects,
    now_ms: int,
) -> None:
    """Write a run's effects on the store's figures, transfers and daily sales."""
    for reason, count in effects.skipped.items():
        SKIPPED.labels(reason).inc(count)
    if effects.skipped:
        log.info(
            "stock: %s journaled lines no figure takes (%s): a not_a_gtin line names an item the"
            " catalog lacks; put every item sold in the catalog (storefleet catalog import)",
            device_id,
            ", ".join(f"{n} {reason}" for reason, n in sorted(effects.skipped.items())),
        )
    before = await _locked_levels(conn, store_id, sorted(effects.levels))
    counted, moved = [], []
    crossings = []
    for gtin, level in sorted(effects.levels.items()):
        had, low_at, item_id = before.get(gtin, (0, None, None))
        after = level.apply(had)
        item_id = effects.item_ids.get(gtin, item_id)
        row = {
            "tenant_id": tenant_id,
            "store_id": store_id,
            "gtin": gtin,
            "item_id": item_id,
            "updated_at": now_ms,
        }
        if level.set_to is None:
            moved.append(row | {"on_hand": level.delta})
        else:
            counted.append(row | {"on_hand": after})
        crossings.append(Crossing(gtin, had, after, low_at, item_id))
    t = stock_on_hand
    await _upsert(conn, t, moved, keys=("store_id", "gtin"), add=("on_hand",))
    await _upsert(conn, t, counted, keys=("store_id", "gtin"), put=("on_hand",))
    await apply_crossings(
        conn,
        tenant_id=tenant_id,
        store_id=store_id,
        device_id=device_id,
        changes=crossings,
        now_ms=now_ms,
    )
    sold = [
        {"store_id": store_id, "gtin": gtin, "day": day, "units": units}
        for (gtin, day), units in sorted(effects.sold.items())
    ]
    await _upsert(conn, stock_daily_sales, sold, keys=("store_id", "gtin", "day"), add=("units",))
    await _transfers(conn, tenant_id, store_id, effects)


async def _locked_levels(
    conn: AsyncConnection, store_id: str, gtins: Sequence[str]
) -> dict[str, tuple[int, int | None, str | None]]:
    """The figures before the run: GTIN → (on hand, threshold, item id); locked on PostgreSQL."""
    out: dict[str, tuple[int, int | None, str | None]] = {}
    t = stock_on_hand
    for chunk in _chunks(gtins):
        query = select(t.c.gtin, t.c.on_hand, t.c.low_at, t.c.item_id).where(
            t.c.store_id == store_id, t.c.gtin.in_(chunk)
        )
        if conn.dialect.name == "postgresql":
            query = query.order_by(t.c.gtin).with_for_update()
        for gtin, on_hand, low_at, item_id in await conn.execute(query):
            out[str(gtin)] = (int(on_hand), None if low_at is None else int(low_at), item_id)
    return out


async def _transfers(
    conn: AsyncConnection, tenant_id: str, store_id: str, effects: Effects
) -> None:
    """Record each half against its transfer; lines add up (a half journaled twice counts twice,
    as it did on the shelf)."""
    heads: list[dict[str, Any]] = []
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for half in effects.sent:
        heads.append(
            {"tenant_id": tenant_id, "transfer_id": half.transfer_id, "from_store": store_id}
            | {"to_store": half.store, "sent_at": half.ts}
        )
        for gtin, units in half.units.items():
            line = lines.setdefault(
                (half.transfer_id, gtin), _line(tenant_id, half.transfer_id, gtin)
            )
            line["sent"] += units
    for half in effects.received:
        heads.append(
            {"tenant_id": tenant_id, "transfer_id": half.transfer_id}
            | {"received_store": store_id, "received_at": half.ts}
        )
        for gtin, units in half.units.items():
            line = lines.setdefault(
                (half.transfer_id, gtin), _line(tenant_id, half.transfer_id, gtin)
            )
            line["received"] += units
    for head in heads:
        await _upsert(
            conn,
            stock_transfers,
            [head],
            keys=("tenant_id", "transfer_id"),
            put=tuple(k for k in head if k not in ("tenant_id", "transfer_id")),
        )
    await _upsert(
        conn,
        stock_transfer_lines,
        list(lines.values()),
        keys=("tenant_id", "transfer_id", "gtin"),
        add=("sent", "received"),
    )


def _line(tenant_id: str, transfer_id: str, gtin: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "transfer_id": transfer_id,
        "gtin": gtin,
        "sent": 0,
        "received": 0,
    }


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: tuple[str, ...],
    add: tuple[str, ...] = (),
    put: tuple[str, ...] = (),
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE: ``add`` columns are incremented, ``put`` replaced
    (and ``item_id``/``updated_at`` kept current where the table has them)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for chunk in _chunks(rows):
        statement = dialect.insert(table)
        excluded = statement.excluded
        values: dict[str, Any] = {name: table.c[name] + excluded[name] for name in add}
        values |= {name: excluded[name] for name in put}
        if "updated_at" in table.c:
            values["updated_at"] = excluded.updated_at
        if "item_id" in table.c:
            values["item_id"] = func.coalesce(excluded.item_id, table.c.item_id)
        await conn.execute(
            statement.on_conflict_do_update(index_elements=list(keys), set_=values), list(chunk)
        )
