"""Reading stock across stores, and setting thresholds. Keyword-only; refusals are domain errors.

Every read first catches the stores it reads up with the journal
(:func:`~control_plane.stock.projection.catch_up_devices_behind`), so a figure is never older
than the records the cloud has stored. Every query keeps to the caller's tenant
(:class:`~control_plane.tenancy.TenantScope`): another tenant's store is not found, its rows are
not listed.

* On-hand: per store and GTIN, as projected.
* In transit: per GTIN, the units of every transfer sent and not yet received — in no store.
* Days of cover: on-hand ÷ the moving average of units sold per day over ``window_days``
  (days without sales count as 0, so a slow item's average is low, not missing).
* Reorder suggestions: items whose on-hand plus what is on its way to the store (in transit to
  it) covers fewer than ``cover_days`` days, or is at or under its threshold; the suggestion
  brings it to ``cover_days`` of the average (at least up past the threshold).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.write_lock import hold_write_lock
from control_plane.devices.errors import StoreNotFound
from control_plane.devices.tables import devices, stores
from control_plane.stock.errors import BadThreshold
from control_plane.stock.fold import DAY_MS
from control_plane.stock.low_stock import Crossing, apply_crossings
from control_plane.stock.projection import catch_up_devices_behind
from control_plane.stock.tables import (
    stock_daily_sales,
    stock_on_hand,
    stock_transfer_lines,
    stock_transfers,
)
from control_plane.tenancy import EVERY_TENANT, TenantScope


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Level:
    """One store's figure for one GTIN."""

    store_id: str
    gtin: str
    item_id: str | None
    on_hand: int
    low_at: int | None


@dataclass(frozen=True, slots=True)
class TransferLine:
    gtin: str
    sent: int
    received: int

    @property
    def difference(self) -> int:
        """Received − sent once both halves are in: < 0 lost on the way, > 0 more arrived."""
        return self.received - self.sent


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: str
    from_store: str | None
    to_store: str | None
    received_store: str | None
    sent_at: int | None
    received_at: int | None
    lines: tuple[TransferLine, ...]

    @property
    def state(self) -> str:
        """sent → in transit → received; ``received_unsent`` while the sender's half is missing."""
        if self.received_at is None:
            return "in_transit"
        return "received" if self.sent_at is not None else "received_unsent"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A reorder line: the figures it was made from and the units to order."""

    store_id: str
    gtin: str
    item_id: str | None
    on_hand: int
    inbound: int
    low_at: int | None
    per_day: Decimal
    days_of_cover: Decimal | None
    order: int


async def require_store(engine: AsyncEngine, *, scope: TenantScope, store_id: str) -> str:
    """The store's tenant; another tenant's store is not found, exactly like a missing one."""
    async with engine.connect() as conn:
        tenant = (
            await conn.execute(
                select(stores.c.tenant_id).where(
                    stores.c.id == store_id, scope.where(stores.c.tenant_id)
                )
            )
        ).scalar_one_or_none()
    if tenant is None:
        raise StoreNotFound(store_id)
    return str(tenant)


async def on_hand(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str | None = None,
    gtin: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 200,
) -> list[Level]:
    """Figures in scope ordered by store and GTIN; ``after``: the last (store, GTIN) seen."""
    if store_id is not None:
        await require_store(engine, scope=scope, store_id=store_id)
    await catch_up_devices_behind(engine, scope=scope, store_ids=[store_id] if store_id else ())
    t = stock_on_hand
    query = (
        select(t.c.store_id, t.c.gtin, t.c.item_id, t.c.on_hand, t.c.low_at)
        .where(scope.where(t.c.tenant_id))
        .order_by(t.c.store_id, t.c.gtin)
        .limit(limit)
    )
    if store_id is not None:
        query = query.where(t.c.store_id == store_id)
    if gtin is not None:
        query = query.where(t.c.gtin == gtin)
    if after is not None:
        query = query.where(
            (t.c.store_id > after[0]) | and_(t.c.store_id == after[0], t.c.gtin > after[1])
        )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [Level(r.store_id, r.gtin, r.item_id, int(r.on_hand), r.low_at) for r in rows]


async def in_transit(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, to_store: str | None = None
) -> dict[str, int]:
    """GTIN → units sent and not yet received (to ``to_store``, or to anywhere)."""
    await catch_up_devices_behind(engine, scope=scope)
    t, lines = stock_transfers, stock_transfer_lines
    query = (
        select(lines.c.gtin, func.sum(lines.c.sent))
        .join(t, and_(t.c.tenant_id == lines.c.tenant_id, t.c.transfer_id == lines.c.transfer_id))
        .where(scope.where(t.c.tenant_id), t.c.sent_at.is_not(None), t.c.received_at.is_(None))
        .group_by(lines.c.gtin)
    )
    if to_store is not None:
        query = query.where(t.c.to_store == to_store)
    async with engine.connect() as conn:
        return {str(g): int(n) for g, n in await conn.execute(query) if n}


async def transfers(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str | None = None,
    limit: int = 100,
) -> list[Transfer]:
    """Transfers in scope, newest first, each with its lines and their differences."""
    if store_id is not None:
        await require_store(engine, scope=scope, store_id=store_id)
    await catch_up_devices_behind(engine, scope=scope)
    t, lines = stock_transfers, stock_transfer_lines
    query = (
        select(t)
        .where(scope.where(t.c.tenant_id))
        .order_by(func.coalesce(t.c.sent_at, t.c.received_at).desc(), t.c.transfer_id)
        .limit(limit)
    )
    if store_id is not None:
        query = query.where(
            (t.c.from_store == store_id)
            | (t.c.to_store == store_id)
            | (t.c.received_store == store_id)
        )
    async with engine.connect() as conn:
        heads = (await conn.execute(query)).mappings().all()
        by_id: dict[tuple[str, str], list[TransferLine]] = defaultdict(list)
        if heads:
            found = await conn.execute(
                select(lines)
                .where(
                    lines.c.tenant_id.in_({h["tenant_id"] for h in heads}),
                    lines.c.transfer_id.in_([h["transfer_id"] for h in heads]),
                )
                .order_by(lines.c.gtin)
            )
            for line in found.mappings():
                key = (line["tenant_id"], line["transfer_id"])
                by_id[key].append(TransferLine(line["gtin"], line["sent"], line["received"]))
    return [
        Transfer(
            h["transfer_id"],
            h["from_store"],
            h["to_store"],
            h["received_store"],
            h["sent_at"],
            h["received_at"],
            tuple(by_id[h["tenant_id"], h["transfer_id"]]),
        )
        for h in heads
    ]


async def set_threshold(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str,
    gtin: str,
    low_at: int | None,
    now_ms: int | None = None,
) -> Level:
    """Set (or remove, None) a figure's low-stock threshold; a figure already under it alerts."""
    if low_at is not None and low_at < 0:
        raise BadThreshold(low_at=low_at)
    now = _now_ms() if now_ms is None else now_ms
    await catch_up_devices_behind(engine, scope=scope, store_ids=[store_id])
    async with engine.begin() as conn:
        store = (
            await conn.execute(
                select(stores.c.tenant_id).where(
                    stores.c.id == store_id, scope.where(stores.c.tenant_id)
                )
            )
        ).first()
        if store is None:
            raise StoreNotFound(store_id)
        t = stock_on_hand
        await hold_write_lock(conn)  # SQLite's stand-in for the FOR UPDATE below
        query = select(t.c.on_hand, t.c.low_at, t.c.item_id).where(
            t.c.store_id == store_id, t.c.gtin == gtin
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            await conn.execute(
                t.insert().values(
                    tenant_id=store.tenant_id, store_id=store_id, gtin=gtin, on_hand=0,
                    low_at=low_at, updated_at=now,
                )
            )  # fmt: skip
            figure, item_id = 0, None
        else:
            await conn.execute(
                update(t).where(t.c.store_id == store_id, t.c.gtin == gtin).values(low_at=low_at)
            )
            figure, item_id = int(row.on_hand), row.item_id
        device = (
            await conn.execute(select(func.min(devices.c.id)).where(devices.c.store_id == store_id))
        ).scalar_one_or_none()
        if device is not None:
            await apply_crossings(
                conn,
                tenant_id=store.tenant_id,
                store_id=store_id,
                device_id=device,
                changes=[_threshold_change(gtin, figure, low_at, item_id)],
                now_ms=now,
            )
    return Level(store_id, gtin, item_id, figure, low_at)


def _threshold_change(gtin: str, figure: int, low_at: int | None, item_id: str | None) -> Crossing:
    """A new threshold as a crossing: a figure at or under it opens the alert (once: an open one
    stays), one above it clears an open one, and no threshold clears it."""
    if low_at is None:
        return Crossing(gtin, 0, 1, 0, item_id)
    before = low_at + 1 if figure <= low_at else low_at
    return Crossing(gtin, before, figure, low_at, item_id)


async def reorder(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str | None = None,
    window_days: int = 28,
    cover_days: int = 14,
    now_ms: int | None = None,
    limit: int = 500,
) -> list[Suggestion]:
    """What to order, per store and GTIN; see the module's docstring for the rule."""
    if store_id is not None:
        await require_store(engine, scope=scope, store_id=store_id)
    now = _now_ms() if now_ms is None else now_ms
    today = now // DAY_MS
    await catch_up_devices_behind(engine, scope=scope)  # transfers to the store come from others
    t, daily = stock_on_hand, stock_daily_sales
    # Only figures that can need an order are read: those sold in the window and those with a
    # threshold (a partial index, migration 0026). Reading every figure and filtering took 24 s
    # for a tenant's every store at 1,000 stores x 100,000 items (docs/stock.md).
    if store_id is not None:
        in_scope: Any = daily.c.store_id == store_id
        figure_in_scope: Any = t.c.store_id == store_id
    else:
        tenant_stores = select(stores.c.id).where(scope.where(stores.c.tenant_id))
        in_scope = daily.c.store_id.in_(tenant_stores)
        figure_in_scope = scope.where(t.c.tenant_id)
    sold = (
        select(daily.c.store_id, daily.c.gtin, func.sum(daily.c.units).label("units"))
        .where(in_scope, daily.c.day > today - window_days, daily.c.day <= today)
        .group_by(daily.c.store_id, daily.c.gtin)
        .cte("sold")
    )
    wanted = (
        select(sold.c.store_id, sold.c.gtin)
        .where(sold.c.units > 0)
        .union(select(t.c.store_id, t.c.gtin).where(figure_in_scope, t.c.low_at.is_not(None)))
        .subquery("wanted")
    )
    query = (
        select(t.c.store_id, t.c.gtin, t.c.item_id, t.c.on_hand, t.c.low_at, sold.c.units)
        .select_from(
            wanted.join(t, and_(t.c.store_id == wanted.c.store_id, t.c.gtin == wanted.c.gtin))
        )
        .outerjoin(sold, and_(sold.c.store_id == t.c.store_id, sold.c.gtin == t.c.gtin))
        .where(scope.where(t.c.tenant_id))
        .order_by(t.c.store_id, t.c.gtin)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    inbound = await _inbound(engine, scope)
    out: list[Suggestion] = []
    for row in rows:
        per_day = Decimal(int(row.units or 0)) / window_days
        coming = inbound.get((row.store_id, row.gtin), 0)
        have = int(row.on_hand) + coming
        cover = None if per_day == 0 else (Decimal(max(have, 0)) / per_day).quantize(Decimal("0.1"))
        want = math.ceil(per_day * cover_days)
        if row.low_at is not None:
            want = max(want, int(row.low_at) + 1)
        if have > (row.low_at if row.low_at is not None else -1) and (
            cover is None or cover >= cover_days
        ):
            continue
        order = max(0, want - have)
        if order == 0:
            continue
        out.append(
            Suggestion(
                row.store_id, row.gtin, row.item_id, int(row.on_hand), coming, row.low_at,
                per_day.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), cover, order,
            )
        )  # fmt: skip
        if len(out) == limit:
            break
    return out


async def _inbound(engine: AsyncEngine, scope: TenantScope) -> dict[tuple[str, str], int]:
    t, lines = stock_transfers, stock_transfer_lines
    query = (
        select(t.c.to_store, lines.c.gtin, func.sum(lines.c.sent))
        .join(
            lines, and_(t.c.tenant_id == lines.c.tenant_id, t.c.transfer_id == lines.c.transfer_id)
        )
        .where(scope.where(t.c.tenant_id), t.c.sent_at.is_not(None), t.c.received_at.is_(None))
        .group_by(t.c.to_store, lines.c.gtin)
    )
    async with engine.connect() as conn:
        return {(str(s), str(g)): int(n) for s, g, n in await conn.execute(query) if s}


def as_dict(level: Level) -> dict[str, Any]:
    """A figure as the API answers it."""
    return {
        "store_id": level.store_id,
        "gtin": level.gtin,
        "item_id": level.item_id,
        "on_hand": level.on_hand,
        "low_at": level.low_at,
    }
