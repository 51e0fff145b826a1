"""REST endpoints for replicated sales. Money is integer minor units plus a decimal string.

Reading needs ``sales:read``; an operator sees its own tenant's sales only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.inputs import IdentifierFilter, Limit
from control_plane.operators.policy import SalesRead
from control_plane.problems import problem_responses
from control_plane.sales import service
from control_plane.tenancy import TenantScope

router = APIRouter(prefix="/api/sales", tags=["sales"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def format_minor(minor: int, exponent: int = 2) -> str:
    """Minor units as a decimal string without passing through float."""
    return str(Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


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
    return [SaleOut(**dict(row), total=format_minor(row["total_minor"])) for row in rows]


@router.get("/totals")
async def totals(engine: Engine, principal: SalesRead) -> list[StoreTotal]:
    """Totals per store."""
    rows = await service.totals_by_store(engine, scope=TenantScope.of(principal))
    return [StoreTotal(**dict(row), total=format_minor(int(row["total_minor"]))) for row in rows]
