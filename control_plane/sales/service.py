"""Queries over replicated sales, each kept to the caller's tenant scope."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, RowMapping, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import stores, tenants
from control_plane.reports import rollups
from control_plane.reports.rollup_tables import report_daily_rollups
from control_plane.sales.tables import sales
from control_plane.tenancy import EVERY_TENANT, TenantScope


async def recent_sales(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str | None = None,
    device_id: str | None = None,
    limit: int = 50,
) -> Sequence[RowMapping]:
    """The sales in scope, newest first."""
    query = (
        select(sales)
        .where(scope.where(sales.c.tenant_id))
        .order_by(sales.c.ts.desc(), sales.c.seq.desc())
        .limit(limit)
    )
    if store_id is not None:
        query = query.where(sales.c.store_id == store_id)
    if device_id is not None:
        query = query.where(sales.c.device_id == device_id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def totals_by_store(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT
) -> Sequence[RowMapping]:
    """Count and total of the sales per store and currency, of the stores in scope.

    Summed from the daily rollups, never the sales rows: the fleet overview shows it on every
    render, and grouping every sale ever stored took 11.5 s at 10 M sales (``bench/reports.py``)
    against one row per store and day. The total is the reports' *sales* (what the sales
    totalled, before cash rounding), so the overview agrees with the sales summary.
    """
    async with engine.connect() as conn:
        ids = list(
            (await conn.execute(select(stores.c.id).where(scope.where(stores.c.tenant_id))))
            .scalars()
            .all()
        )
    await rollups.catch_up_stores(engine, ids)
    daily = report_daily_rollups
    query = (
        select(
            daily.c.store_id,
            tenants.c.currency,
            cast(func.sum(daily.c.sales_count), BigInteger).label("sales"),
            cast(func.sum(daily.c.sales_minor), BigInteger).label("total_minor"),
        )
        .join(stores, stores.c.id == daily.c.store_id)
        .join(tenants, tenants.c.id == stores.c.tenant_id)
        .where(scope.where(stores.c.tenant_id))
        .group_by(daily.c.store_id, tenants.c.currency)
        .order_by(daily.c.store_id)
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def count_sales(engine: AsyncEngine, *, device_id: str | None = None) -> int:
    """How many sales are stored."""
    query = select(func.count()).select_from(sales)
    if device_id is not None:
        query = query.where(sales.c.device_id == device_id)
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())
