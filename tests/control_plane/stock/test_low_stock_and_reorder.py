"""Low-stock alerts once per threshold crossing, days of cover and the reorder list, transfer
differences, and thresholds refused for another tenant — on SQLite and PostgreSQL, from journals
stored as the ingest stores them."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.evaluator import evaluate
from control_plane.alerts.tables import alerts
from control_plane.db.engine import make_engine
from control_plane.devices.errors import StoreNotFound
from control_plane.stock import projection, service
from control_plane.stock.errors import BadThreshold
from control_plane.stock.fold import DAY_MS
from control_plane.tenancy import TenantScope
from protocols.vocabulary import JournalKind as K
from tests.control_plane.stock.conftest import append, new_tenant

pytestmark = [pytest.mark.services]

MILK = "07610200000019"
NOW = 1_764_000_000_000 - 1_764_000_000_000 % DAY_MS + 12 * 3_600_000  # noon, UTC


def sale(units: int) -> tuple[str, dict[str, object]]:
    return K.SALE_COMPLETED, {"lines": [{"sku": MILK[1:], "quantity": str(units)}]}


def received(units: int) -> tuple[str, dict[str, object]]:
    return K.STOCK_RECEIVED, {"lines": [{"gtin": MILK, "quantity": units}]}


async def _low_alerts(engine: AsyncEngine, tenant: str) -> list[tuple[str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(alerts.c.detail, alerts.c.cleared_at)
            .where(alerts.c.tenant_id == tenant, alerts.c.kind == "low_stock")
            .order_by(alerts.c.opened_at, alerts.c.id)
        )
        return [(str(d), "cleared" if c else None) for d, c in rows]


def test_a_low_stock_alert_opens_once_per_crossing(database: str) -> None:
    async def check() -> None:
        engine = make_engine(database)
        try:
            tenant = await new_tenant(engine, ["main"])
            store = f"{tenant}-main"
            await append(engine, store, [received(10)], ts=NOW)
            await service.set_threshold(engine, store_id=store, gtin=MILK, low_at=3)
            assert await _low_alerts(engine, tenant) == []  # 10 on hand: not low
            seq = await append(engine, store, [sale(4), sale(3)], ts=NOW, first_seq=2)
            await projection.catch_up_devices_behind(engine)
            assert await _low_alerts(engine, tenant) == [
                (f"GTIN {MILK}: 3 on hand, threshold 3", None)
            ]
            seq = await append(engine, store, [sale(1), sale(1)], ts=NOW, first_seq=seq + 1)
            await projection.catch_up_devices_behind(engine)
            assert len(await _low_alerts(engine, tenant)) == 1  # still low: no second alert
            await evaluate(engine, now_ms=NOW)  # the fleet's rules leave it open
            assert (await _low_alerts(engine, tenant))[0][1] is None
            seq = await append(engine, store, [received(20)], ts=NOW, first_seq=seq + 1)
            await projection.catch_up_devices_behind(engine)
            assert [c for _, c in await _low_alerts(engine, tenant)] == ["cleared"]
            await append(engine, store, [sale(19)], ts=NOW, first_seq=seq + 1)
            await projection.catch_up_devices_behind(engine)
            assert [c for _, c in await _low_alerts(engine, tenant)] == ["cleared", None]
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_days_of_cover_and_the_reorder_list(database: str) -> None:
    async def check() -> None:
        engine = make_engine(database)
        try:
            tenant = await new_tenant(engine, ["main", "depot"])
            store, depot = f"{tenant}-main", f"{tenant}-depot"
            # 56 units sold over the last 28 days (2 a day), 20 on hand now
            history = [received(76)] + [sale(4) for _ in range(14)]
            seq = 0
            for day, record in enumerate(history):
                seq = await append(
                    engine, store, [record], ts=NOW - (27 - day) * DAY_MS, first_seq=seq + 1
                )
            # the depot sends 5 on their way to the store: counted as coming
            lines = [{"gtin": MILK, "quantity": 5}]
            sent = (K.STOCK_TRANSFER_SENT, {"transfer_id": "T1", "to_store": store, "lines": lines})
            await append(engine, depot, [received(50), sent], ts=NOW)
            (line,) = await service.reorder(
                engine, scope=TenantScope(tenant), store_id=store, now_ms=NOW
            )
            assert (line.on_hand, line.inbound, line.per_day) == (20, 5, Decimal("2.00"))
            assert line.days_of_cover == Decimal("12.5")  # (20 + 5) / 2
            assert line.order == 28 - 25  # up to 14 days of 2 a day
            assert line.item_id is None
            # with more than 14 days of cover nothing is suggested, unless under the threshold
            assert await service.reorder(engine, scope=TenantScope(tenant), store_id=depot,
                                         now_ms=NOW) == []  # fmt: skip
            await service.set_threshold(engine, store_id=depot, gtin=MILK, low_at=50)
            (depot_line,) = await service.reorder(
                engine, scope=TenantScope(tenant), store_id=depot, now_ms=NOW
            )
            assert (depot_line.on_hand, depot_line.days_of_cover, depot_line.order) == (45, None, 6)
            # every store of the tenant: the line sold in the window and the one under its
            # threshold (unsold), read through their own indexes; another tenant sees neither
            every = await service.reorder(engine, scope=TenantScope(tenant), now_ms=NOW)
            assert [(x.store_id, x.order) for x in every] == sorted([(depot, 6), (store, 3)])
            assert await service.reorder(engine, scope=TenantScope("nobody"), now_ms=NOW) == []
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_a_transfers_difference_is_recorded_and_transit_ends(database: str) -> None:
    async def check() -> None:
        engine = make_engine(database)
        try:
            tenant = await new_tenant(engine, ["a", "b"])
            a, b = f"{tenant}-a", f"{tenant}-b"
            arrived = {"transfer_id": "T9", "from_store": a,
                       "lines": [{"gtin": MILK, "quantity": 8}]}  # fmt: skip
            await append(engine, b, [(K.STOCK_TRANSFER_RECEIVED, arrived)], ts=NOW)
            scope = TenantScope(tenant)
            (early,) = await service.transfers(engine, scope=scope)
            assert early.state == "received_unsent"  # the sender is still offline
            sent = {"transfer_id": "T9", "to_store": b, "lines": [{"gtin": MILK, "quantity": 10}]}
            await append(engine, a, [received(10), (K.STOCK_TRANSFER_SENT, sent)], ts=NOW)
            (done,) = await service.transfers(engine, scope=scope)
            assert (done.state, done.from_store, done.received_store) == ("received", a, b)
            assert [(x.sent, x.received, x.difference) for x in done.lines] == [(10, 8, -2)]
            assert await service.in_transit(engine, scope=scope) == {}
            levels = await service.on_hand(engine, scope=scope)
            assert {x.store_id: x.on_hand for x in levels} == {a: 0, b: 8}
            # another tenant sees none of it
            assert await service.transfers(engine, scope=TenantScope("nobody")) == []
            assert await service.on_hand(engine, scope=TenantScope("nobody")) == []
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_thresholds_are_refused_for_another_tenant_and_below_zero(database: str) -> None:
    async def check() -> None:
        engine = make_engine(database)
        try:
            tenant = await new_tenant(engine, ["a"])
            other = await new_tenant(engine, ["a"])
            with pytest.raises(StoreNotFound):
                await service.set_threshold(
                    engine, scope=TenantScope(other), store_id=f"{tenant}-a", gtin=MILK, low_at=1
                )
            with pytest.raises(StoreNotFound):
                await service.on_hand(engine, scope=TenantScope(other), store_id=f"{tenant}-a")
            with pytest.raises(BadThreshold):
                await service.set_threshold(
                    engine, scope=TenantScope(tenant), store_id=f"{tenant}-a", gtin=MILK, low_at=-1
                )
            assert await service.on_hand(engine, scope=TenantScope(tenant)) == []
        finally:
            await engine.dispose()

    asyncio.run(check())
