"""Listing and acknowledging alerts, kept to the caller's tenant; a device's lag/backlog history.

Acknowledging says "someone is on it": it is written to the audit log in the same transaction,
and it does not clear the alert — only the condition ending does, so an acknowledged printer that
still has no paper stays listed (acknowledged) until it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Literal

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.tables import alerts, device_history
from control_plane.devices import service as registry
from control_plane.operators import audit
from control_plane.operators.principal import Principal
from control_plane.problems import DomainError
from control_plane.tenancy import TenantScope

AlertState = Literal["open", "cleared", "all"]


class AlertNotFound(DomainError):  # noqa: N818 - named for what was refused
    """No alert with that id in the caller's tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "alert_not_found"

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"alert {alert_id!r} does not exist")


async def list_alerts(
    engine: AsyncEngine,
    *,
    scope: TenantScope,
    state: AlertState = "open",
    device_id: str | None = None,
    limit: int = 200,
) -> Sequence[RowMapping]:
    """Alerts in scope, newest first (open ones by default)."""
    query = (
        select(alerts)
        .where(scope.where(alerts.c.tenant_id))
        .order_by(alerts.c.opened_at.desc(), alerts.c.id)
        .limit(limit)
    )
    if state == "open":
        query = query.where(alerts.c.cleared_at.is_(None))
    elif state == "cleared":
        query = query.where(alerts.c.cleared_at.is_not(None))
    if device_id is not None:
        query = query.where(alerts.c.device_id == device_id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def acknowledge(
    engine: AsyncEngine,
    *,
    scope: TenantScope,
    alert_id: str,
    principal: Principal,
    client: str,
    now_ms: int,
) -> RowMapping:
    """Mark the alert acknowledged by ``principal`` (audited); again: no change, no new entry."""
    async with engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(alerts).where(alerts.c.id == alert_id, scope.where(alerts.c.tenant_id))
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise AlertNotFound(alert_id)
        if row["acked_at"] is not None:
            return row
        await conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(acked_at=now_ms, acked_by=principal.email[:254])
        )
        await audit.record(
            conn,
            at=now_ms,
            actor=audit.Actor.of(principal),
            action="alerts:ack",
            outcome="ok",
            target=f"alert {alert_id} ({row['kind']} on {row['device_id']})",
            client=client,
            tenant_id=row["tenant_id"],
            before={"acked_at": None},
            after={"acked_at": now_ms, "acked_by": principal.email},
        )
        return (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).mappings().one()


async def history(
    engine: AsyncEngine, *, scope: TenantScope, device_id: str, limit: int = 720
) -> Sequence[RowMapping]:
    """The device's sampled backlog and lag, oldest first (404 when not in scope)."""
    await registry.get_device(engine, scope=scope, device_id=device_id)
    query = (
        select(device_history)
        .where(device_history.c.device_id == device_id)
        .order_by(device_history.c.at.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return list(reversed(rows))
