"""Loyalty over HTTP: balances and movements for operators, adjustments, a register's balance.

Reading needs ``customers:read``; a manual adjustment ``loyalty:adjust`` (tenant admins, audited,
with the session's CSRF token as every unsafe request). The register's route is a device route:
the appliance proves itself (``DeviceDep``) and reads its own tenant's customers only, the tenant
taken from its registry entry; another tenant's customer answers the 404 of a missing one.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices.device_auth import DEVICE_AUTH_REFUSALS, DeviceDep
from control_plane.loyalty import service
from control_plane.loyalty.service import AdjustmentEmpty, BalanceView, CustomerBalanceNotFound
from control_plane.operators.gatekeeper import client_address
from control_plane.operators.policy import CustomersRead, LoyaltyAdjust
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.customer_card import ID_LENGTH
from protocols.loyalty import MOVEMENT_MAX

router = APIRouter(tags=["loyalty"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
CustomerIdPath = Annotated[
    str,
    Path(
        min_length=ID_LENGTH,
        max_length=ID_LENGTH,
        pattern=r"^C[0-9A-Z]+$",
        description="the customer's pseudonymous id (C + 13 Crockford symbols)",
    ),
]
Signed = Annotated[int, Field(strict=True, ge=-MOVEMENT_MAX, le=MOVEMENT_MAX)]


class BalanceOut(BaseModel):
    """A customer's balance: points, store credit (minor units), tier and offline limits."""

    customer_id: str
    points: int
    lifetime_points: int
    store_credit_minor: int
    tier: str
    overdrawn: bool
    offline_redeem_limit_points: int
    offline_store_credit_limit_minor: int
    device_seq: int | None = Field(
        None, description="the register's route: its journal up to this seq is in the balance"
    )


class MovementOut(BaseModel):
    """One movement of the ledger; points and credit are signed (a burn is negative)."""

    kind: str
    points: int
    store_credit_minor: int
    at: int
    store_id: str | None
    device_id: str | None
    sale_id: str | None
    actor: str | None
    reason: str | None


class AdjustmentIn(BaseModel):
    """A manual change: signed points and/or store credit, with the reason it is made."""

    points: Signed = 0
    store_credit_minor: Signed = 0
    reason: Annotated[str, Field(min_length=3, max_length=200)]
    adjustment_id: Annotated[str | None, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None


def _out(view: BalanceView) -> BalanceOut:
    return BalanceOut(
        customer_id=view.customer_id,
        points=view.points,
        lifetime_points=view.lifetime_points,
        store_credit_minor=view.credit_minor,
        tier=view.tier,
        overdrawn=view.overdrawn,
        offline_redeem_limit_points=view.offline_redeem_limit_points,
        offline_store_credit_limit_minor=view.offline_store_credit_limit_minor,
        device_seq=view.device_seq,
    )


@router.get(
    "/api/loyalty/customers/{customer_id}",
    responses=problem_responses(CustomerBalanceNotFound),
)
async def get_balance(
    customer_id: CustomerIdPath, engine: Engine, principal: CustomersRead
) -> BalanceOut:
    """The customer's balance, tier and offline limits in your tenant."""
    view = await service.balance(engine, scope=TenantScope.of(principal), customer_id=customer_id)
    return _out(view)


@router.get(
    "/api/loyalty/customers/{customer_id}/movements",
    responses=problem_responses(CustomerBalanceNotFound),
)
async def get_movements(
    customer_id: CustomerIdPath, engine: Engine, principal: CustomersRead
) -> list[MovementOut]:
    """The customer's movements, newest first (the last 100)."""
    scope = TenantScope.of(principal)
    await service.balance(engine, scope=scope, customer_id=customer_id)
    rows = await service.movements(engine, scope=scope, customer_id=customer_id)
    return [
        MovementOut(
            kind=row["kind"],
            points=row["points"],
            store_credit_minor=row["credit_minor"],
            at=row["at"],
            store_id=row["store_id"],
            device_id=row["device_id"],
            sale_id=row["sale_id"],
            actor=row["actor"],
            reason=row["reason"],
        )
        for row in rows
    ]


@router.post(
    "/api/loyalty/customers/{customer_id}/adjustments",
    responses=problem_responses(CustomerBalanceNotFound, AdjustmentEmpty),
)
async def post_adjustment(
    customer_id: CustomerIdPath,
    body: AdjustmentIn,
    request: Request,
    engine: Engine,
    principal: LoyaltyAdjust,
) -> BalanceOut:
    """Add (or take away) points or store credit by hand; audited, booked once per id."""
    view = await service.adjust(
        engine,
        scope=TenantScope.of(principal),
        customer_id=customer_id,
        points=body.points,
        credit_minor=body.store_credit_minor,
        reason=body.reason,
        principal=principal,
        client=client_address(request),
        now_ms=time.time_ns() // 1_000_000,
        adjustment_id=body.adjustment_id,
    )
    return _out(view)


@router.get(
    "/api/loyalty/device/customers/{customer_id}",
    responses=problem_responses(CustomerBalanceNotFound, *DEVICE_AUTH_REFUSALS),
)
async def get_device_balance(
    customer_id: CustomerIdPath, engine: Engine, device: DeviceDep
) -> BalanceOut:
    """For a register: the balance it caches to redeem offline (its own tenant's customers)."""
    view = await service.device_balance(
        engine, tenant_id=device.tenant_id, device_id=device.device_id, customer_id=customer_id
    )
    return _out(view)
