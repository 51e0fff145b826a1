"""REST endpoints of configuration history: preview a change, list a layer's versions, roll a
layer back, list a device's effective-document versions. Included by ``router.py`` under
``/api/config``, beside the layer they act on:

- ``POST …/{tenants|groups|stores|devices}/{id}/settings/preview`` — what a change (or a
  rollback) would do; nothing stored, no audit entry for the preview itself (it changes nothing;
  a refused one is still audited by the guard). The same action as editing that layer.
- ``GET …/settings/history`` — the layer's versions, newest first (``config:read``), a page at a
  time: ``?limit=`` (1–200, default 50) versions; when older ones remain the answer carries
  ``Link: <…?limit=50&before=N>; rel="next"``, N being the last version listed, and following it
  lists the versions older than N. The cursor is a version number, so a change made meanwhile
  (a newer version) never shifts or repeats a page.
- ``POST …/settings/rollback`` — restore a version as a new one: audited, validated and published
  like any change (the action of editing that layer).
- ``GET /api/config/devices/{device_id}/versions`` — the device's document versions, paged the
  same way.

Another tenant's layer or device is not found (404), as everywhere in the configuration API.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import history, preview, rollback
from control_plane.configuration.errors import (
    GroupNotFound,
    InvalidConfiguration,
    KeyManagedElsewhere,
    LayerVersionNotFound,
    NothingToRestore,
    SettingNotFound,
    UnknownKey,
)
from control_plane.configuration.layers import Layer
from control_plane.configuration.schemas import (
    DeviceVersionOut,
    LayerVersionOut,
    PreviewIn,
    PreviewOut,
    RestoredOut,
    RollbackIn,
)
from control_plane.dependencies import get_engine
from control_plane.devices.errors import DeviceNotFound, StoreNotFound, TenantNotFound
from control_plane.inputs import DeviceIdPath
from control_plane.operators import audit
from control_plane.operators.audit import Actor
from control_plane.operators.policy import ConfigRead, ConfigWrite, TenantConfigWrite
from control_plane.operators.principal import Principal
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.topics import DEVICE_ID_PATTERN

router = APIRouter(tags=["configuration"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
Id = Annotated[str, Path(pattern=DEVICE_ID_PATTERN.pattern, description="the layer's id")]
PAGE = 50  # versions per page unless the client asks for another number
Limit = Annotated[
    int, Query(ge=1, le=history.MAX_LISTED, description="versions per page (1-200, default 50)")
]
Before = Annotated[
    int | None,
    Query(
        ge=1,
        description="the cursor: only versions older than this one (the Link rel=next header "
        "of the previous page names it)",
    ),
]


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


def _page(request: Request, response: Response, found: list[V], limit: int) -> list[V]:
    """The first ``limit`` of ``found`` (asked for one more); a Link to the next page if any."""
    if len(found) <= limit:
        return found
    shown = found[:limit]
    following = request.url.include_query_params(limit=limit, before=shown[-1].version)
    response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return shown


_PREVIEW_REFUSALS = (
    UnknownKey,
    KeyManagedElsewhere,
    InvalidConfiguration,
    SettingNotFound,
    LayerVersionNotFound,
    NothingToRestore,
)
_ROLLBACK_REFUSALS = (LayerVersionNotFound, NothingToRestore, InvalidConfiguration)


def _poke(request: Request) -> None:
    link = getattr(request.app.state, "config_link", None)
    if link is not None:
        link.poke()


async def _preview(
    engine: AsyncEngine, principal: Principal, layer: Layer, target: str, body: PreviewIn
) -> PreviewOut:
    scope, actor = TenantScope.of(principal), Actor.of(principal)
    if body.restore is not None:
        found = await preview.preview_rollback(
            engine, scope=scope, actor=actor, layer=layer, target=target, version=body.restore
        )
    else:
        found = await preview.preview_change(
            engine,
            scope=scope,
            actor=actor,
            layer=layer,
            target=target,
            values=body.values,
            delete=body.delete,
        )
    audit.changed_nothing()
    return PreviewOut.model_validate(dataclasses.asdict(found))


async def _history(
    engine: AsyncEngine,
    principal: Principal,
    layer: Layer,
    target: str,
    page: tuple[Request, Response, int, int | None],
) -> list[LayerVersionOut]:
    request, response, limit, before = page
    versions = await history.layer_history(
        engine,
        scope=TenantScope.of(principal),
        layer=layer,
        target=target,
        limit=limit + 1,
        before=before,
    )
    shown = _page(request, response, versions, limit)
    return [LayerVersionOut.model_validate(dataclasses.asdict(v)) for v in shown]


async def _rollback(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    layer: Layer,
    target: str,
    body: RollbackIn,
) -> RestoredOut:
    done = await rollback.rollback_layer(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        layer=layer,
        target=target,
        version=body.version,
    )
    _poke(request)
    return RestoredOut.model_validate(dataclasses.asdict(done) | {"layer": done.layer.value})


# -- tenant layer ---------------------------------------------------------------------------------


@router.post(
    "/tenants/{tenant_id}/settings/preview",
    responses=problem_responses(TenantNotFound, *_PREVIEW_REFUSALS),
)
async def preview_tenant(
    tenant_id: Id, body: PreviewIn, engine: Engine, principal: TenantConfigWrite
) -> PreviewOut:
    """Which registers of the tenant a change would change and how, or break; nothing stored."""
    return await _preview(engine, principal, Layer.TENANT, tenant_id, body)


@router.get("/tenants/{tenant_id}/settings/history", responses=problem_responses(TenantNotFound))
async def tenant_history(
    tenant_id: Id,
    engine: Engine,
    principal: ConfigRead,
    request: Request,
    response: Response,
    limit: Limit = PAGE,
    before: Before = None,
) -> list[LayerVersionOut]:
    """The tenant layer's versions, newest first."""
    page = (request, response, limit, before)
    return await _history(engine, principal, Layer.TENANT, tenant_id, page)


@router.post(
    "/tenants/{tenant_id}/settings/rollback",
    responses=problem_responses(TenantNotFound, *_ROLLBACK_REFUSALS),
)
async def rollback_tenant(
    request: Request, tenant_id: Id, body: RollbackIn, engine: Engine, principal: TenantConfigWrite
) -> RestoredOut:
    """Restore the tenant layer to an earlier version, as a new version."""
    return await _rollback(request, engine, principal, Layer.TENANT, tenant_id, body)


# -- group layer ----------------------------------------------------------------------------------


@router.post(
    "/groups/{group_id}/settings/preview",
    responses=problem_responses(GroupNotFound, *_PREVIEW_REFUSALS),
)
async def preview_group(
    group_id: Id, body: PreviewIn, engine: Engine, principal: TenantConfigWrite
) -> PreviewOut:
    """Which registers of the group's stores a change would change and how; nothing stored."""
    return await _preview(engine, principal, Layer.GROUP, group_id, body)


@router.get("/groups/{group_id}/settings/history", responses=problem_responses(GroupNotFound))
async def group_history(
    group_id: Id,
    engine: Engine,
    principal: ConfigRead,
    request: Request,
    response: Response,
    limit: Limit = PAGE,
    before: Before = None,
) -> list[LayerVersionOut]:
    """The group layer's versions, newest first."""
    page = (request, response, limit, before)
    return await _history(engine, principal, Layer.GROUP, group_id, page)


@router.post(
    "/groups/{group_id}/settings/rollback",
    responses=problem_responses(GroupNotFound, *_ROLLBACK_REFUSALS),
)
async def rollback_group(
    request: Request, group_id: Id, body: RollbackIn, engine: Engine, principal: TenantConfigWrite
) -> RestoredOut:
    """Restore the group layer to an earlier version, as a new version."""
    return await _rollback(request, engine, principal, Layer.GROUP, group_id, body)


# -- store layer ----------------------------------------------------------------------------------


@router.post(
    "/stores/{store_id}/settings/preview",
    responses=problem_responses(StoreNotFound, *_PREVIEW_REFUSALS),
)
async def preview_store(
    store_id: Id, body: PreviewIn, engine: Engine, principal: ConfigWrite
) -> PreviewOut:
    """Which registers of the store a change would change and how; nothing stored."""
    return await _preview(engine, principal, Layer.STORE, store_id, body)


@router.get("/stores/{store_id}/settings/history", responses=problem_responses(StoreNotFound))
async def store_history(
    store_id: Id,
    engine: Engine,
    principal: ConfigRead,
    request: Request,
    response: Response,
    limit: Limit = PAGE,
    before: Before = None,
) -> list[LayerVersionOut]:
    """The store layer's versions, newest first (staff without PIN hashes), a page at a time
    (``Link: <…>; rel="next"`` while older ones remain)."""
    page = (request, response, limit, before)
    return await _history(engine, principal, Layer.STORE, store_id, page)


@router.post(
    "/stores/{store_id}/settings/rollback",
    responses=problem_responses(StoreNotFound, *_ROLLBACK_REFUSALS),
)
async def rollback_store(
    request: Request, store_id: Id, body: RollbackIn, engine: Engine, principal: ConfigWrite
) -> RestoredOut:
    """Restore the store layer to an earlier version, as a new version (its staff stays)."""
    return await _rollback(request, engine, principal, Layer.STORE, store_id, body)


# -- register layer and the device's document versions --------------------------------------------


@router.post(
    "/devices/{device_id}/settings/preview",
    responses=problem_responses(DeviceNotFound, *_PREVIEW_REFUSALS),
)
async def preview_register(
    device_id: DeviceIdPath, body: PreviewIn, engine: Engine, principal: ConfigWrite
) -> PreviewOut:
    """How a change to this register's layer would change its document; nothing stored."""
    return await _preview(engine, principal, Layer.REGISTER, device_id, body)


@router.get("/devices/{device_id}/settings/history", responses=problem_responses(DeviceNotFound))
async def register_history(
    device_id: DeviceIdPath,
    engine: Engine,
    principal: ConfigRead,
    request: Request,
    response: Response,
    limit: Limit = PAGE,
    before: Before = None,
) -> list[LayerVersionOut]:
    """The register layer's versions, newest first."""
    page = (request, response, limit, before)
    return await _history(engine, principal, Layer.REGISTER, device_id, page)


@router.post(
    "/devices/{device_id}/settings/rollback",
    responses=problem_responses(DeviceNotFound, *_ROLLBACK_REFUSALS),
)
async def rollback_register(
    request: Request,
    device_id: DeviceIdPath,
    body: RollbackIn,
    engine: Engine,
    principal: ConfigWrite,
) -> RestoredOut:
    """Restore the register layer to an earlier version, as a new version."""
    return await _rollback(request, engine, principal, Layer.REGISTER, device_id, body)


@router.get("/devices/{device_id}/versions", responses=problem_responses(DeviceNotFound))
async def device_versions(
    device_id: DeviceIdPath,
    engine: Engine,
    principal: ConfigRead,
    request: Request,
    response: Response,
    limit: Limit = PAGE,
    before: Before = None,
) -> list[DeviceVersionOut]:
    """The versions of the device's effective document, newest first, each with its cause;
    a page at a time (``Link: <…>; rel="next"`` while older ones remain)."""
    found = await history.device_versions(
        engine,
        scope=TenantScope.of(principal),
        device_id=device_id,
        limit=limit + 1,
        before=before,
    )
    shown = _page(request, response, found, limit)
    return [DeviceVersionOut.model_validate(dataclasses.asdict(v)) for v in shown]
