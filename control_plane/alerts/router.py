"""Alerts over HTTP and in the console: the list, acknowledging one, a device's history chart.

Reading needs ``alerts:read``, acknowledging ``alerts:ack`` (with the session's CSRF token, as
every unsafe request). Another tenant's alert or device answers the 404 of a missing one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts import service
from control_plane.alerts.rules import KINDS
from control_plane.alerts.service import AlertState
from control_plane.dependencies import get_engine
from control_plane.devices import service as registry
from control_plane.devices.errors import DeviceNotFound
from control_plane.inputs import DeviceIdPath, IdentifierFilter, RefPath
from control_plane.notifications.channels import list_channels as notification_channels
from control_plane.operators.gatekeeper import client_address
from control_plane.operators.policy import Action, AlertsAck, AlertsPage, AlertsRead, permits
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.problems import problem_responses
from control_plane.reports.charts import history_chart
from control_plane.reports.tables import table
from control_plane.tenancy import TenantScope

router = APIRouter(tags=["alerts"])
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")
Engine = Annotated[AsyncEngine, Depends(get_engine)]


class AlertOut(BaseModel):
    """An alert: open while ``cleared_at`` is null; ``acked_*`` once someone took it."""

    id: str
    tenant_id: str
    store_id: str
    device_id: str
    kind: str
    detail: str
    opened_at: int
    seen_at: int
    cleared_at: int | None
    acked_at: int | None
    acked_by: str | None


class HistoryPoint(BaseModel):
    """One sample of a device's replication: backlog in records, lags in milliseconds."""

    at: int
    backlog: int
    lag_ms: int | None
    ingest_lag_ms: int | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@router.get("/api/alerts", responses=problem_responses())
async def list_alerts(
    engine: Engine,
    principal: AlertsRead,
    state: AlertState = "open",
    device_id: IdentifierFilter = None,
) -> list[AlertOut]:
    """Alerts of the caller's tenant, newest first; ``state``: open (default), cleared or all."""
    rows = await service.list_alerts(
        engine, scope=TenantScope.of(principal), state=state, device_id=device_id
    )
    return [AlertOut.model_validate(dict(row)) for row in rows]


@router.get(
    "/api/alerts.csv",
    response_class=Response,
    responses=problem_responses() | {200: {"content": {"text/csv": {}}}},
)
async def alerts_csv(
    engine: Engine,
    principal: AlertsRead,
    state: AlertState = "open",
    device_id: IdentifierFilter = None,
) -> Response:
    """The same alerts as CSV (times in UTC), as every table of the console exports."""
    rows = await service.list_alerts(
        engine, scope=TenantScope.of(principal), state=state, device_id=device_id
    )
    out = table(
        "alerts",
        "Alerts",
        [
            ("id", "Id", "text"), ("kind", "Alert", "text"), ("device", "Device", "text"),
            ("store", "Store", "text"),
            ("detail", "What", "text"), ("opened", "Since", "text"), ("seen", "Seen", "text"),
            ("cleared", "Cleared", "text"), ("acked", "Acknowledged", "text"),
            ("acked_by", "Acknowledged by", "text"),
        ],
    )  # fmt: skip
    for row in rows:
        out.rows.append(
            (
                str(row["id"]), str(row["kind"]), str(row["device_id"]), str(row["store_id"]),
                str(row["detail"]),
                _when(row["opened_at"]), _when(row["seen_at"]), _when(row["cleared_at"]),
                _when(row["acked_at"]), row["acked_by"] or "",
            )
        )  # fmt: skip
    return Response(
        out.as_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="storefleet-alerts-{state}.csv"'},
    )


@router.post("/api/alerts/{alert_id}/ack", responses=problem_responses(service.AlertNotFound))
async def acknowledge(
    alert_id: RefPath,
    request: Request,
    engine: Engine,
    principal: AlertsAck,
) -> AlertOut:
    """Acknowledge an alert (audited); it stays listed until its condition ends."""
    row = await service.acknowledge(
        engine,
        scope=TenantScope.of(principal),
        alert_id=alert_id,
        principal=principal,
        client=client_address(request),
        now_ms=_now_ms(),
    )
    return AlertOut.model_validate(dict(row))


@router.get("/api/devices/{device_id}/history", responses=problem_responses(DeviceNotFound))
async def device_history(
    device_id: DeviceIdPath, engine: Engine, principal: AlertsRead
) -> list[HistoryPoint]:
    """The device's backlog and lag as the evaluator sampled them, oldest first (bounded)."""
    rows = await service.history(engine, scope=TenantScope.of(principal), device_id=device_id)
    return [HistoryPoint.model_validate(dict(row)) for row in rows]


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@router.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
async def alerts_page(
    request: Request,
    engine: Engine,
    principal: AlertsPage,
    state: AlertState = "open",
    device_id: IdentifierFilter = None,
) -> HTMLResponse:
    """Alerts with acknowledge buttons (when allowed), one device's lag and backlog chart, and
    (tenant admins) the notification channels."""
    scope = TenantScope.of(principal)
    rows = await service.list_alerts(engine, scope=scope, state=state)
    devices = await registry.list_devices(engine, scope=scope)
    chart, chosen = "", device_id
    if chosen is None and rows:
        chosen = str(rows[0]["device_id"])
    if chosen is not None:
        points = await service.history(engine, scope=scope, device_id=chosen)
        times = [_when(p["at"]).removesuffix(" UTC")[5:] for p in points]
        chart = history_chart(
            f"Replication of {chosen}: backlog (records) and lag (s)",
            times,
            {
                "backlog": [int(p["backlog"]) for p in points],
                "lag (s)": [None if p["lag_ms"] is None else p["lag_ms"] // 1000 for p in points],
                "cloud lag (s)": [
                    None if p["ingest_lag_ms"] is None else p["ingest_lag_ms"] // 1000
                    for p in points
                ],
            },
        )
    can_notify = permits(principal, Action.NOTIFICATIONS_MANAGE)
    channels = await notification_channels(engine, scope=scope) if can_notify else []
    secret = request.cookies.get(SESSION_COOKIE)
    context: dict[str, Any] = {
        "can_notify": can_notify,
        "channels": channels,
        "alert_kinds": KINDS,
        "principal": principal,
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
        "can_ack": permits(principal, Action.ALERTS_ACK),
        "alerts": rows,
        "state": state,
        "devices": devices,
        "chosen": chosen,
        "chart": chart,
        "when": _when,
    }
    return templates.TemplateResponse(request, "alerts.html", context)
