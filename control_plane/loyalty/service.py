"""Reading the loyalty ledger and adjusting it by hand: what the console, the API and registers ask.

The customer page (``control_plane.customers``) includes the loyalty section through
:func:`balance` and :func:`movements`; a register asks :func:`device_balance` for the balance it
caches for offline redemption. Every read is kept to a tenant (:class:`TenantScope` for
operators, the device's registry entry for registers): another tenant's customer is simply not
found. A manual adjustment is a movement like any other (kind ``adjust``, signed), booked with its
audit entry in one transaction; the same ``adjustment_id`` twice books once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.loyalty.ledger import Movement, MovementKind, book
from control_plane.loyalty.programme import programme_rules
from control_plane.loyalty.tables import loyalty_balances, loyalty_movements
from control_plane.operators import audit
from control_plane.operators.principal import Principal
from control_plane.problems import DomainError
from control_plane.tenancy import TenantScope
from protocols.loyalty import tier_for


@dataclass(eq=False)
class CustomerBalanceNotFound(DomainError):  # noqa: N818 - named for what was refused
    """No loyalty balance for that customer in the caller's tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "loyalty_customer_not_found"
    message = "customer {customer_id!r} has no loyalty balance here"
    advice = "check the customer id; a customer's first sale with a card opens the balance"
    customer_id: str


@dataclass(eq=False)
class AdjustmentEmpty(DomainError):  # noqa: N818 - named for what was refused
    """An adjustment that moves nothing."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "loyalty_adjustment_empty"
    message = "an adjustment must change points or store credit"
    advice = "give points or store_credit_minor, positive to add, negative to take away"


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceView:
    """A customer's balance as the console and registers see it."""

    tenant_id: str
    customer_id: str
    points: int
    lifetime_points: int
    credit_minor: int
    tier: str
    overdrawn: bool
    offline_redeem_limit_points: int
    offline_store_credit_limit_minor: int
    #: for a register: its own journal up to this seq is in the balance (read with it)
    device_seq: int | None = None


async def balance(
    engine: AsyncEngine, *, scope: TenantScope, customer_id: str, device_id: str | None = None
) -> BalanceView:
    """The customer's balance in scope; :class:`CustomerBalanceNotFound` when there is none.

    ``device_id``: also read that device's stored high-water mark in the same statement (one
    snapshot: the ingest moves balances and the mark in one transaction), so a register knows
    which of its own movements the balance holds already.
    """
    seq = (
        select(devices.c.hwm).where(devices.c.id == device_id).scalar_subquery()
        if device_id is not None
        else None
    )
    columns = [loyalty_balances] if seq is None else [loyalty_balances, seq.label("device_seq")]
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(*columns).where(
                        loyalty_balances.c.customer_id == customer_id,
                        scope.where(loyalty_balances.c.tenant_id),
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise CustomerBalanceNotFound(customer_id=customer_id)
        rules = await programme_rules(conn, str(row["tenant_id"]))
    tier = tier_for(rules, int(row["lifetime_points"]))
    return BalanceView(
        tenant_id=str(row["tenant_id"]),
        customer_id=customer_id,
        points=int(row["points"]),
        lifetime_points=int(row["lifetime_points"]),
        credit_minor=int(row["credit_minor"]),
        tier=tier.name,
        overdrawn=row["overdrawn_at"] is not None,
        offline_redeem_limit_points=tier.offline_redeem_limit_points,
        offline_store_credit_limit_minor=rules.offline_store_credit_limit_minor,
        device_seq=None if seq is None else int(row["device_seq"] or 0),
    )


async def device_balance(
    engine: AsyncEngine, *, tenant_id: str, device_id: str, customer_id: str
) -> BalanceView:
    """The balance a register of ``tenant_id`` caches (only its own tenant's customers)."""
    return await balance(
        engine, scope=TenantScope(tenant_id), customer_id=customer_id, device_id=device_id
    )


async def movements(
    engine: AsyncEngine, *, scope: TenantScope, customer_id: str, limit: int = 100
) -> Sequence[RowMapping]:
    """The customer's movements in scope, newest first."""
    query = (
        select(loyalty_movements)
        .where(
            loyalty_movements.c.customer_id == customer_id,
            scope.where(loyalty_movements.c.tenant_id),
        )
        .order_by(loyalty_movements.c.at.desc(), loyalty_movements.c.id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def adjust(
    engine: AsyncEngine,
    *,
    scope: TenantScope,
    customer_id: str,
    points: int,
    credit_minor: int,
    reason: str,
    principal: Principal,
    client: str,
    now_ms: int,
    adjustment_id: str | None = None,
) -> BalanceView:
    """Add ``points`` and ``credit_minor`` (signed) to an existing balance; audited."""
    if points == 0 and credit_minor == 0:
        raise AdjustmentEmpty()
    current = await balance(engine, scope=scope, customer_id=customer_id)
    key = adjustment_id or uuid.uuid4().hex
    source = f"adjust/{current.tenant_id}/{key}"
    async with engine.begin() as conn:
        seen = (
            await conn.execute(
                select(loyalty_movements.c.id).where(loyalty_movements.c.source == source)
            )
        ).first()
        if seen is None:
            await book(
                conn,
                [
                    Movement(
                        source=source,
                        tenant_id=current.tenant_id,
                        customer_id=customer_id,
                        kind=MovementKind.ADJUST,
                        points=points,
                        credit_minor=credit_minor,
                        at=now_ms,
                        actor=principal.email[:254],
                        reason=reason[:200],
                    )
                ],
            )
            await audit.record(
                conn,
                at=now_ms,
                actor=audit.Actor.of(principal),
                action="loyalty:adjust",
                outcome="ok",
                target=f"customer {customer_id}",
                reason=reason,
                client=client,
                tenant_id=current.tenant_id,
                before={"points": current.points, "credit_minor": current.credit_minor},
                after={
                    "points": current.points + points,
                    "credit_minor": current.credit_minor + credit_minor,
                },
            )
    return await balance(engine, scope=scope, customer_id=customer_id)
