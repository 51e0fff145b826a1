"""REST endpoints of layered configuration. Refusals are domain errors (``errors.py``, registry's).

Layers: ``/api/config/{tenants|groups|stores|devices}/{id}/settings[/{key}]`` — GET to read the
keys a layer sets, PUT ``{"value": …}`` to set one, DELETE to fall back to the layer below.
Reading needs ``config:read``; the store and register layers ``config:write``; the tenant layer,
store groups and store tags ``tenant_config:write``; staff ``staff:write``. Another tenant's
layer, device or store is not found (404). A change wakes the configuration link, which
publishes the new documents retained on each device's ``config`` topic. Preview, history and
rollback of each layer, and a device's document versions: ``history_router.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import document, service, staff
from control_plane.configuration.drift import fleet_drift
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.errors import (
    GroupNotFound,
    InvalidConfiguration,
    KeyManagedElsewhere,
    SettingNotFound,
    StaffNotFound,
    UnknownKey,
)
from control_plane.configuration.history_router import router as history_router
from control_plane.configuration.layers import Layer
from control_plane.configuration.schemas import (
    KEY_PATTERN,
    ChangeOut,
    DeviceConfigOut,
    DriftOut,
    GroupIn,
    GroupOut,
    LayerOut,
    PinIn,
    SettingIn,
    SettingOut,
    StaffIn,
    StaffOut,
    TagsIn,
    TagsOut,
)
from control_plane.dependencies import get_engine
from control_plane.devices.errors import (
    AlreadyExists,
    DeviceNotFound,
    StoreNotFound,
    TenantNotFound,
)
from control_plane.inputs import DeviceIdPath
from control_plane.operators.audit import Actor
from control_plane.operators.errors import Forbidden
from control_plane.operators.policy import (
    ConfigRead,
    ConfigWrite,
    StaffWrite,
    TenantConfigWrite,
)
from control_plane.operators.principal import Principal
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.topics import DEVICE_ID_PATTERN

router = APIRouter(prefix="/api/config", tags=["configuration"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="a top-level key of the document")]
Id = Annotated[str, Path(pattern=DEVICE_ID_PATTERN.pattern, description="the layer's id")]
StaffId = Annotated[str, Path(pattern=r"^st-[0-9a-f]{12}$", description="the staff member's id")]

_WRITE_REFUSALS = (UnknownKey, KeyManagedElsewhere, InvalidConfiguration)


def _poke(request: Request) -> None:
    link = getattr(request.app.state, "config_link", None)
    if link is not None:
        link.poke()


def _layer_out(layer: Layer, target: str, views: list[service.SettingView]) -> LayerOut:
    return LayerOut(
        layer=layer.value,
        target=target,
        settings=[SettingOut.model_validate(dataclasses.asdict(v)) for v in views],
    )


def _change_out(change: service.Change) -> ChangeOut:
    return ChangeOut(
        layer=change.layer.value,
        target=change.target,
        key=change.key,
        audit_id=change.audit_id,
        devices=change.devices,
    )


async def _read(engine: AsyncEngine, principal: Principal, layer: Layer, target: str) -> LayerOut:
    views = await service.layer_settings(
        engine, scope=TenantScope.of(principal), layer=layer, target=target
    )
    return _layer_out(layer, target, views)


async def _set(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    *,
    layer: Layer,
    target: str,
    key: str,
    value: Any,
) -> ChangeOut:
    change = await service.set_setting(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        layer=layer,
        target=target,
        key=key,
        value=value,
    )
    _poke(request)
    return _change_out(change)


async def _delete(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    *,
    layer: Layer,
    target: str,
    key: str,
) -> ChangeOut:
    change = await service.delete_setting(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        layer=layer,
        target=target,
        key=key,
    )
    _poke(request)
    return _change_out(change)


@router.get("/schema", responses=problem_responses(invalid=False))
async def config_schema(principal: ConfigRead) -> dict[str, Any]:
    """The JSON Schema of the store configuration document, with its size budget."""
    return document.json_schema()


# -- tenant layer ---------------------------------------------------------------------------------


@router.get("/tenants/{tenant_id}/settings", responses=problem_responses(TenantNotFound))
async def tenant_settings(tenant_id: Id, engine: Engine, principal: ConfigRead) -> LayerOut:
    """The keys the tenant layer sets."""
    return await _read(engine, principal, Layer.TENANT, tenant_id)


@router.put(
    "/tenants/{tenant_id}/settings/{key}",
    responses=problem_responses(TenantNotFound, *_WRITE_REFUSALS),
)
async def set_tenant_setting(
    request: Request,
    tenant_id: Id,
    key: Key,
    body: SettingIn,
    engine: Engine,
    principal: TenantConfigWrite,
) -> ChangeOut:
    """Set a key for every store of the tenant (a group, store or register may override it)."""
    return await _set(
        request, engine, principal, layer=Layer.TENANT, target=tenant_id, key=key, value=body.value
    )


@router.delete(
    "/tenants/{tenant_id}/settings/{key}",
    responses=problem_responses(TenantNotFound, SettingNotFound, *_WRITE_REFUSALS),
)
async def delete_tenant_setting(
    request: Request, tenant_id: Id, key: Key, engine: Engine, principal: TenantConfigWrite
) -> ChangeOut:
    """Delete a tenant key: it falls back to the platform default."""
    return await _delete(request, engine, principal, layer=Layer.TENANT, target=tenant_id, key=key)


# -- store groups ---------------------------------------------------------------------------------


@router.get("/groups", responses=problem_responses())
async def list_groups(engine: Engine, principal: ConfigRead) -> list[GroupOut]:
    """The store groups, highest priority first, with their stores."""
    views = await service.list_groups(engine, scope=TenantScope.of(principal))
    return [GroupOut.model_validate(dataclasses.asdict(v)) for v in views]


@router.put(
    "/groups/{group_id}",
    responses=problem_responses(TenantNotFound, AlreadyExists, Forbidden, InvalidConfiguration),
)
async def put_group(
    request: Request, group_id: Id, body: GroupIn, engine: Engine, principal: TenantConfigWrite
) -> GroupOut:
    """Create a store group of every store tagged ``tag``, or change its tag or priority."""
    view = await service.put_group(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        group_id=group_id,
        tenant_id=body.tenant_id,
        tag=body.tag,
        priority=body.priority,
    )
    _poke(request)
    return GroupOut.model_validate(dataclasses.asdict(view))


@router.get("/groups/{group_id}/settings", responses=problem_responses(GroupNotFound))
async def group_settings(group_id: Id, engine: Engine, principal: ConfigRead) -> LayerOut:
    """The keys the group layer sets."""
    return await _read(engine, principal, Layer.GROUP, group_id)


@router.put(
    "/groups/{group_id}/settings/{key}",
    responses=problem_responses(GroupNotFound, *_WRITE_REFUSALS),
)
async def set_group_setting(
    request: Request,
    group_id: Id,
    key: Key,
    body: SettingIn,
    engine: Engine,
    principal: TenantConfigWrite,
) -> ChangeOut:
    """Set a key for every store of the group."""
    return await _set(
        request, engine, principal, layer=Layer.GROUP, target=group_id, key=key, value=body.value
    )


@router.delete(
    "/groups/{group_id}/settings/{key}",
    responses=problem_responses(GroupNotFound, SettingNotFound, *_WRITE_REFUSALS),
)
async def delete_group_setting(
    request: Request, group_id: Id, key: Key, engine: Engine, principal: TenantConfigWrite
) -> ChangeOut:
    """Delete a group key: it falls back to the tenant's."""
    return await _delete(request, engine, principal, layer=Layer.GROUP, target=group_id, key=key)


# -- store layer and tags -------------------------------------------------------------------------


@router.get("/stores/{store_id}/settings", responses=problem_responses(StoreNotFound))
async def store_settings(store_id: Id, engine: Engine, principal: ConfigRead) -> LayerOut:
    """The keys the store layer sets (``staff`` with its PIN hashes left out)."""
    return await _read(engine, principal, Layer.STORE, store_id)


@router.put(
    "/stores/{store_id}/settings/{key}",
    responses=problem_responses(StoreNotFound, *_WRITE_REFUSALS),
)
async def set_store_setting(
    request: Request,
    store_id: Id,
    key: Key,
    body: SettingIn,
    engine: Engine,
    principal: ConfigWrite,
) -> ChangeOut:
    """Set a key for every register of the store."""
    return await _set(
        request, engine, principal, layer=Layer.STORE, target=store_id, key=key, value=body.value
    )


@router.delete(
    "/stores/{store_id}/settings/{key}",
    responses=problem_responses(StoreNotFound, SettingNotFound, *_WRITE_REFUSALS),
)
async def delete_store_setting(
    request: Request, store_id: Id, key: Key, engine: Engine, principal: ConfigWrite
) -> ChangeOut:
    """Delete a store key: it falls back to its groups' or the tenant's."""
    return await _delete(request, engine, principal, layer=Layer.STORE, target=store_id, key=key)


@router.put(
    "/stores/{store_id}/tags", responses=problem_responses(StoreNotFound, InvalidConfiguration)
)
async def set_store_tags(
    request: Request, store_id: Id, body: TagsIn, engine: Engine, principal: TenantConfigWrite
) -> TagsOut:
    """Replace the store's tags, and so the groups it is in."""
    tags = await service.set_store_tags(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        store_id=store_id,
        tags=body.tags,
    )
    _poke(request)
    return TagsOut(store_id=store_id, tags=tags)


# -- register layer and the effective document ----------------------------------------------------


@router.get("/devices/{device_id}/settings", responses=problem_responses(DeviceNotFound))
async def register_settings(
    device_id: DeviceIdPath, engine: Engine, principal: ConfigRead
) -> LayerOut:
    """The keys the register layer sets."""
    return await _read(engine, principal, Layer.REGISTER, device_id)


@router.put(
    "/devices/{device_id}/settings/{key}",
    responses=problem_responses(DeviceNotFound, *_WRITE_REFUSALS),
)
async def set_register_setting(
    request: Request,
    device_id: DeviceIdPath,
    key: Key,
    body: SettingIn,
    engine: Engine,
    principal: ConfigWrite,
) -> ChangeOut:
    """Set a key for this register only."""
    return await _set(
        request,
        engine,
        principal,
        layer=Layer.REGISTER,
        target=device_id,
        key=key,
        value=body.value,
    )


@router.delete(
    "/devices/{device_id}/settings/{key}",
    responses=problem_responses(DeviceNotFound, SettingNotFound, *_WRITE_REFUSALS),
)
async def delete_register_setting(
    request: Request, device_id: DeviceIdPath, key: Key, engine: Engine, principal: ConfigWrite
) -> ChangeOut:
    """Delete a register key: it falls back to the store's."""
    return await _delete(
        request, engine, principal, layer=Layer.REGISTER, target=device_id, key=key
    )


@router.get("/devices/{device_id}", responses=problem_responses(DeviceNotFound))
async def effective(
    device_id: DeviceIdPath, engine: Engine, principal: ConfigRead
) -> DeviceConfigOut:
    """The device's effective desired document key by key: value, provenance, drift."""
    view = await device_configuration(engine, scope=TenantScope.of(principal), device_id=device_id)
    return DeviceConfigOut.model_validate(dataclasses.asdict(view))


@router.get("/drift", responses=problem_responses())
async def drift(engine: Engine, principal: ConfigRead) -> list[DriftOut]:
    """Every device whose reported configuration differs from desired, oldest drift first."""
    found = await fleet_drift(engine, scope=TenantScope.of(principal))
    ordered = sorted(found.values(), key=lambda d: (d.since, d.device_id))
    return [DriftOut.model_validate(dataclasses.asdict(d)) for d in ordered]


# -- staff ----------------------------------------------------------------------------------------


def _staff_out(view: staff.StaffView) -> StaffOut:
    return StaffOut.model_validate(dataclasses.asdict(view))


@router.get("/stores/{store_id}/staff", responses=problem_responses(StoreNotFound))
async def list_staff(store_id: Id, engine: Engine, principal: ConfigRead) -> list[StaffOut]:
    """The store's cashiers and managers (no PIN, no hash)."""
    views = await staff.list_staff(engine, scope=TenantScope.of(principal), store_id=store_id)
    return [_staff_out(v) for v in views]


@router.post(
    "/stores/{store_id}/staff",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(StoreNotFound, InvalidConfiguration),
)
async def add_staff(
    request: Request, store_id: Id, body: StaffIn, engine: Engine, principal: StaffWrite
) -> StaffOut:
    """Add a cashier or manager; every register of the store lets them sign in with the PIN."""
    view = await staff.add_staff(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        store_id=store_id,
        name=body.name,
        role=body.role,
        pin=body.pin,
    )
    _poke(request)
    return _staff_out(view)


@router.post(
    "/stores/{store_id}/staff/{staff_id}/pin",
    responses=problem_responses(StoreNotFound, StaffNotFound, InvalidConfiguration),
)
async def reset_pin(
    request: Request,
    store_id: Id,
    staff_id: StaffId,
    body: PinIn,
    engine: Engine,
    principal: StaffWrite,
) -> StaffOut:
    """Give a staff member a new PIN; the old one stops working at every register."""
    view = await staff.reset_pin(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        store_id=store_id,
        staff_id=staff_id,
        pin=body.pin,
    )
    _poke(request)
    return _staff_out(view)


@router.delete(
    "/stores/{store_id}/staff/{staff_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(StoreNotFound, StaffNotFound, InvalidConfiguration, invalid=True),
)
async def remove_staff(
    request: Request, store_id: Id, staff_id: StaffId, engine: Engine, principal: StaffWrite
) -> Response:
    """Remove a staff member from the store's registers."""
    await staff.remove_staff(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        store_id=store_id,
        staff_id=staff_id,
    )
    _poke(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- preview, history, rollback (history_router.py) -----------------------------------------------

router.include_router(history_router)
