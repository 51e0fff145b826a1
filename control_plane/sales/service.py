"""Queries over replicated sales, each kept to the caller's tenant scope."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

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
    """Count and total per store and currency, of the stores in scope."""
    query = (
        select(
            sales.c.store_id,
            sales.c.currency,
            func.count().label("sales"),
            func.coalesce(func.sum(sales.c.total_minor), 0).label("total_minor"),
        )
        .where(scope.where(sales.c.tenant_id))
        .group_by(sales.c.store_id, sales.c.currency)
        .order_by(sales.c.store_id)
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
