"""Queries over replicated sales."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.tables import sales


async def recent_sales(
    engine: AsyncEngine,
    *,
    store_id: str | None = None,
    device_id: str | None = None,
    limit: int = 50,
) -> Sequence[RowMapping]:
    """Newest first."""
    query = select(sales).order_by(sales.c.ts.desc(), sales.c.seq.desc()).limit(limit)
    if store_id is not None:
        query = query.where(sales.c.store_id == store_id)
    if device_id is not None:
        query = query.where(sales.c.device_id == device_id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def totals_by_store(engine: AsyncEngine) -> Sequence[RowMapping]:
    """Count and total per store and currency."""
    query = (
        select(
            sales.c.store_id,
            sales.c.currency,
            func.count().label("sales"),
            func.coalesce(func.sum(sales.c.total_minor), 0).label("total_minor"),
        )
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
