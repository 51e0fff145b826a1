"""REST endpoints for replicated sales. Money is integer minor units plus a decimal string.

The decimal string has the digits of the row's currency (ISO 4217: JPY 0, EUR 2, KWD 3), from
:mod:`protocols.currency`; a total is per currency, so each row is formatted with its own.

Reading needs ``sales:read``; an operator sees its own tenant's sales only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.inputs import IdentifierFilter, Limit
from control_plane.operators.policy import SalesRead
from control_plane.problems import problem_responses
from control_plane.sales import service
from control_plane.tenancy import TenantScope
from protocols.currency import format_minor

router = APIRouter(prefix="/api/sales", tags=["sales"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


class SaleOut(BaseModel):
    """A replicated sale."""

    device_id: str
    seq: int
    sale_id: str
    store_id: str
    receipt_no: int
    currency: str
    total_minor: int
    total: str
    ts: int


class StoreTotal(BaseModel):
    """Sales per store and currency."""

    store_id: str
    currency: str
    sales: int
    total_minor: int
    total: str


def sale_out(row: Mapping[str, Any]) -> SaleOut:
    """A stored sale as the API shows it, its total in its currency's digits."""
    return SaleOut(**row, total=format_minor(int(row["total_minor"]), row["currency"]))


def store_total_out(row: Mapping[str, Any]) -> StoreTotal:
    """A store's total in one currency, in that currency's digits."""
    minor = int(row["total_minor"])  # SUM may come back as Decimal on PostgreSQL
    return StoreTotal(**{**row, "total_minor": minor}, total=format_minor(minor, row["currency"]))


@router.get("", responses=problem_responses())
async def list_sales(
    engine: Engine,
    principal: SalesRead,
    store_id: IdentifierFilter = None,
    device_id: IdentifierFilter = None,
    limit: Limit = 50,
) -> list[SaleOut]:
    """Recent sales, newest first."""
    rows = await service.recent_sales(
        engine,
        scope=TenantScope.of(principal),
        store_id=store_id,
        device_id=device_id,
        limit=limit,
    )
    return [sale_out(dict(row)) for row in rows]


@router.get("/totals")
async def totals(engine: Engine, principal: SalesRead) -> list[StoreTotal]:
    """Totals per store."""
    rows = await service.totals_by_store(engine, scope=TenantScope.of(principal))
    return [store_total_out(dict(row)) for row in rows]
