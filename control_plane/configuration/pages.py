"""Console pages of configuration: the layer editor, a device's effective document, a store's staff.

Guarded like every console page (``policy.ConfigPage``: not logged in goes to ``/login``);
another tenant's device or store answers 404. Forms and buttons that change something are
rendered only when the operator may use them (``config:write`` for store and register layers,
``tenant_config:write`` for the tenant and group layers, ``staff:write``); their scripts call
the API with the session's CSRF token, so the API's guard decides in the end, and a refusal's
problem ``detail`` (the key, the JSON path, why) is shown next to the form.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import document, history, service, staff, staged
from control_plane.configuration.drift import drift_counts, fleet_drift
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import EDITABLE, Layer
from control_plane.configuration.tables import config_effective, config_reports
from control_plane.dependencies import get_engine
from control_plane.devices import service as registry
from control_plane.devices.tables import devices as devices_table
from control_plane.operators.policy import Action, ConfigPage, permits
from control_plane.operators.principal import Principal
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.tenancy import TenantScope
from protocols.topics import DEVICE_ID_PATTERN

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")
Engine = Annotated[AsyncEngine, Depends(get_engine)]
Id = Annotated[str, PathParam(pattern=DEVICE_ID_PATTERN.pattern)]
#: Where each layer's settings live in the API.
API_KIND = {
    Layer.TENANT: "tenants",
    Layer.GROUP: "groups",
    Layer.STORE: "stores",
    Layer.REGISTER: "devices",
}
LAYER_ACTION = {
    Layer.TENANT: Action.TENANT_CONFIG_WRITE,
    Layer.GROUP: Action.TENANT_CONFIG_WRITE,
    Layer.STORE: Action.CONFIG_WRITE,
    Layer.REGISTER: Action.CONFIG_WRITE,
}


def _ago(ms: int | None) -> str:
    if ms is None:
        return "–"
    seconds = max(0, (time.time_ns() // 1_000_000 - ms) // 1000)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


SHORT_CHARS = 80
CHANGES_SHOWN = 5  # the layer's newest changes through waves the editor follows live


def _short(value: Any) -> str:
    """A value in one line of JSON, cut to a few dozen characters (the history's cells)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= SHORT_CHARS else text[: SHORT_CHARS - 1] + "…"


templates.env.filters["age"] = _ago
templates.env.filters["pretty"] = _json
templates.env.filters["short"] = _short


def _operator(request: Request, principal: Principal) -> dict[str, Any]:
    secret = request.cookies.get(SESSION_COOKIE)
    return {
        "principal": principal,
        "can": {
            "edit": {layer.value: permits(principal, LAYER_ACTION[layer]) for layer in EDITABLE},
            "staff": permits(principal, Action.STAFF_WRITE),
        },
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
    }


async def _device_rows(engine: AsyncEngine, scope: TenantScope) -> list[dict[str, Any]]:
    """Every device in scope with its versions (desired, published, reported) and drift."""
    query = (
        select(
            devices_table.c.id,
            devices_table.c.store_id,
            devices_table.c.tenant_id,
            config_effective.c.version,
            config_effective.c.published_version,
            config_reports.c.version.label("reported"),
        )
        .outerjoin(config_effective, config_effective.c.device_id == devices_table.c.id)
        .outerjoin(config_reports, config_reports.c.device_id == devices_table.c.id)
        .where(scope.where(devices_table.c.tenant_id), devices_table.c.decommissioned_at.is_(None))
        .order_by(devices_table.c.store_id, devices_table.c.id)
    )
    async with engine.connect() as conn:
        rows = [dict(row) for row in (await conn.execute(query)).mappings()]
    drifting = await fleet_drift(engine, scope=scope)
    for row in rows:
        found = drifting.get(row["id"])
        row["drift_keys"] = found.keys if found else 0
        row["drift_since"] = found.since if found else None
    return rows


@router.get("/config", response_class=HTMLResponse)
async def config_page(
    request: Request,
    engine: Engine,
    principal: ConfigPage,
    layer: Layer = Layer.TENANT,
    target: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN.pattern)] = None,
) -> HTMLResponse:
    """The layer editor: the keys a layer sets, a form to preview and publish a change (at once
    or through waves), the layer's changes through waves with their progress (refreshed live
    from the API), the layer's history with a rollback to any version, and the fleet's drift."""
    scope = TenantScope.of(principal)
    stores = await registry.list_stores(engine, scope=scope)
    tenant_ids = sorted(
        {store.tenant_id for store in stores} | set(filter(None, [principal.tenant_id]))
    )
    if layer is Layer.PLATFORM:
        layer = Layer.TENANT
    if target is None and layer is Layer.TENANT and tenant_ids:
        target = tenant_ids[0]
    settings: list[service.SettingView] = []
    versions: list[history.LayerVersion] = []
    changes: list[staged.ChangeView] = []
    if target is not None:
        settings = await service.layer_settings(engine, scope=scope, layer=layer, target=target)
        versions = await history.layer_history(engine, scope=scope, layer=layer, target=target)
        changes = await staged.list_changes(
            engine, scope=scope, layer=layer, target=target, limit=CHANGES_SHOWN
        )
    context = _operator(request, principal) | {
        "layer": layer.value,
        "target": target,
        "api_path": None if target is None else f"/api/config/{API_KIND[layer]}/{target}/settings",
        "may_edit": permits(principal, LAYER_ACTION[layer]) and target is not None,
        "settings": settings,
        "history": versions,
        "changes": changes,
        "default_waves": json.dumps(
            [w.model_dump(exclude_none=True) for w in staged.DEFAULT_WAVES], indent=1
        ),
        "default_health_s": staged.DEFAULT_HEALTH_S,
        "sections": [key for key in document.sections() if key != "staff"],
        "tenants": tenant_ids,
        "groups": await service.list_groups(engine, scope=scope),
        "stores": stores,
        "tags": await service.tags_by_store(engine, scope=scope),
        "devices": await _device_rows(engine, scope),
        "drift": await drift_counts(engine, scope=scope),
    }
    return templates.TemplateResponse(request, "config.html", context)


@router.get("/config/devices/{device_id}", response_class=HTMLResponse)
async def device_config_page(
    request: Request, device_id: Id, engine: Engine, principal: ConfigPage
) -> HTMLResponse:
    """A device's effective document: each key's value, where it came from, its drift, and the
    document's versions with the change that made each."""
    scope = TenantScope.of(principal)
    view = await device_configuration(engine, scope=scope, device_id=device_id)
    versions = await history.device_versions(engine, scope=scope, device_id=device_id)
    context = _operator(request, principal) | {"view": view, "versions": versions}
    return templates.TemplateResponse(request, "config_device.html", context)


@router.get("/config/stores/{store_id}/staff", response_class=HTMLResponse)
async def staff_page(
    request: Request, store_id: Id, engine: Engine, principal: ConfigPage
) -> HTMLResponse:
    """A store's cashiers and managers: add one with a PIN, reset a PIN, remove one."""
    members = await staff.list_staff(engine, scope=TenantScope.of(principal), store_id=store_id)
    context = _operator(request, principal) | {"store_id": store_id, "members": members}
    return templates.TemplateResponse(request, "config_staff.html", context)
