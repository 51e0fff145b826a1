"""Console pages: the fleet at a glance, one device with its hardware, commands and counts, and
the enrolments that bring new registers into the fleet.

Every page is guarded by its policy action (``policy.DevicesPage``, ``policy.EnrolmentsPage``):
a visitor who is not logged in is sent to ``/login``. A page shows only the operator's tenant
(the services are handed its scope), renders a button that changes something only when the
policy lets this operator do it (``can``; the API refuses it anyway), and puts the session's CSRF
token where the page's scripts and forms send it back (``X-CSRF-Token``, ``csrf_token``).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.commands import service as commands
from control_plane.dependencies import get_engine
from control_plane.devices import os_updates, stock_counts
from control_plane.devices import service as devices
from control_plane.devices import state as device_state
from control_plane.devices.schemas import StockCountOut
from control_plane.operators.policy import Action, DevicesPage, EnrolmentsPage, permits
from control_plane.operators.principal import Principal
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.provisioning import service as provisioning
from control_plane.provisioning.errors import CaUnavailable
from control_plane.provisioning.router import get_authority
from control_plane.sales import service as sales
from control_plane.tenancy import TenantScope
from protocols.currency import format_minor

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.filters["money"] = format_minor
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def _ago(ms: int | None) -> str:
    if ms is None:
        return "never"
    seconds = max(0, (time.time_ns() // 1_000_000 - ms) // 1000)
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _ago_s(seconds: float | None) -> str:
    """``ago`` for the appliance's wall-clock seconds (peripheral ``last_seen``)."""
    return _ago(None if seconds is None else round(seconds * 1000))


def _utc(moment: datetime | None) -> str:
    """A moment as operators read it on every page: minutes, in UTC."""
    return "–" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _from_now(moment: datetime) -> str:
    """How far a moment is from now: "in 3h 20m" or "2d ago"."""
    seconds = round((moment - datetime.now(UTC)).total_seconds())
    size = abs(seconds)
    if size < 3600:
        span = f"{size // 60}m"
    elif size < 2 * 86400:
        span = f"{size // 3600}h {size % 3600 // 60}m"
    else:
        span = f"{size // 86400}d"
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def _validity(hours: float) -> str:
    """A validity as the picker shows it: "8 h", "3 days"."""
    if hours >= 48 and hours % 24 == 0:
        return f"{hours // 24:g} days"
    return f"{hours:g} h"


templates.env.filters["ago"] = _ago
templates.env.filters["ago_s"] = _ago_s
templates.env.filters["utc"] = _utc
templates.env.filters["from_now"] = _from_now
templates.env.filters["validity"] = _validity

ENROLMENT_STATES: tuple[provisioning.EnrolmentState, ...] = (
    "pending",
    "used",
    "expired",
    "revoked",
)
VALIDITY_HOURS = (1, 8, 24, 72, 168, 720)  # the API's ceiling is 30 days


#: What a page may offer, by the policy action it needs: a button is rendered only when allowed.
OFFERS = {
    "send_commands": Action.COMMANDS_SEND,
    "write_enrolments": Action.ENROLMENTS_WRITE,
    "write_devices": Action.DEVICES_WRITE,
}


def _operator(request: Request, principal: Principal) -> dict[str, Any]:
    """What every page's header and scripts need: who is logged in, what they may do, CSRF."""
    secret = request.cookies.get(SESSION_COOKIE)
    return {
        "principal": principal,
        "can": {offer: permits(principal, action) for offer, action in OFFERS.items()},
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
    }


def _with_problems(reported: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored report with what needs an operator (``get_state`` already made it renderable)."""
    if reported is None:
        return None
    return reported | {"problems": device_state.problems(reported["peripherals"])}


@router.get("/", response_class=HTMLResponse)
async def fleet(request: Request, engine: Engine, principal: DevicesPage) -> HTMLResponse:
    """The fleet at a glance."""
    scope = TenantScope.of(principal)
    states = await device_state.states_by_device(engine, scope=scope)
    totals = await sales.totals_by_store(engine, scope=scope)
    fleet_devices = await devices.list_devices(engine, scope=scope)
    context = _operator(request, principal) | {
        "stores": await devices.list_stores(engine, scope=scope),
        "devices": fleet_devices,
        # counted once, not filtered per store in the template (1,000 stores x 1,000 devices)
        "device_counts": Counter(device["store_id"] for device in fleet_devices),
        "totals": {row["store_id"]: row for row in totals},
        "sales": await sales.recent_sales(engine, scope=scope, limit=25),
        "states": {device_id: _with_problems(reported) for device_id, reported in states.items()},
    }
    return templates.TemplateResponse(request, "fleet.html", context)


@router.get("/devices/{device_id}", response_class=HTMLResponse)
async def device(
    request: Request, device_id: str, engine: Engine, principal: DevicesPage
) -> HTMLResponse:
    """One device: presence, replication, its peripherals, commands to run, its stock counts."""
    scope = TenantScope.of(principal)
    row = await devices.get_device(engine, scope=scope, device_id=device_id)  # 404 if not yours
    reported = await device_state.get_state(engine, scope=scope, device_id=device_id)
    counts = await stock_counts.list_stock_counts(engine, scope=scope, device_id=device_id, limit=5)
    context = _operator(request, principal) | {
        "device": row,
        "state": _with_problems(reported),
        "commands": await commands.recent_commands(
            engine, scope=scope, device_id=device_id, limit=10
        ),
        "counts": [StockCountOut.model_validate(count) for count in counts],
        "os_updates": await os_updates.list_os_updates(
            engine, scope=scope, device_id=device_id, limit=1
        ),
        "allowed": sorted(commands.ALLOWED),
    }
    return templates.TemplateResponse(request, "device.html", context)


@router.get("/enrolments", response_class=HTMLResponse)
async def enrolments(
    request: Request,
    engine: Engine,
    principal: EnrolmentsPage,
    state: provisioning.EnrolmentState | None = None,
) -> HTMLResponse:
    """Enrolments: create one for a store (QR, typed code, sheet), follow it, revoke it."""
    # The same check the API makes before it issues anything, so the page can say what to set
    # instead of offering a form whose every submission answers 503.
    unconfigured: str | None = None
    default_hours = 24.0
    try:
        authority = await get_authority(request)
    except CaUnavailable as err:
        unconfigured = str(err)
    else:
        default_hours = authority.settings.enrolment_ttl_hours
    scope = TenantScope.of(principal)
    stores = await devices.list_stores(engine, scope=scope)
    context = _operator(request, principal) | {
        "stores": stores,
        "store_names": {store.id: store.name for store in stores},
        "enrolments": await provisioning.list_enrolments(engine=engine, scope=scope, state=state),
        "state": state,
        "states": ENROLMENT_STATES,
        "unconfigured": unconfigured,
        "validity": sorted({*VALIDITY_HOURS, default_hours}),
        "default_hours": default_hours,
    }
    return templates.TemplateResponse(request, "enrolments.html", context)
