"""REST endpoints of layered configuration. Refusals are domain errors (``errors.py``, registry's).

Layers: ``/api/config/{tenants|groups|stores|devices}/{id}/settings[/{key}]`` — GET to read the
keys a layer sets, PUT ``{"value": …}`` to set one, DELETE to fall back to the layer below.
Reading needs ``config:read``; the store and register layers ``config:write``; the tenant layer,
store groups and store tags ``tenant_config:write``; staff ``staff:write``. Another tenant's
layer, device or store is not found (404). A change wakes the configuration link, which
publishes the new documents retained on each device's ``config`` topic. Preview, history and
rollback of each layer, and a device's document versions: ``history_router.py``; a change
published through waves and gates: ``staged_router.py``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from control_plane.configuration import document, service, staff
from control_plane.configuration import drift as config_drift
from control_plane.configuration.drift import fleet_drift
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.errors import (
    InvalidConfiguration,
    KeyManagedElsewhere,
    SettingNotFound,
    StaffNotFound,
    SupportAccessRefused,
    UnknownKey,
)
from control_plane.configuration.history_router import router as history_router
from control_plane.configuration.layer_routes import (
    LAYER_ROUTES,
    Engine,
    Id,
    LayerRoute,
    Target,
    Writer,
    add_layer_route,
    guard_support_access,
    wake_publisher,
)
from control_plane.configuration.layers import Layer
from control_plane.configuration.schemas import (
    KEY_PATTERN,
    ChangeOut,
    DeviceConfigOut,
    DriftCountsOut,
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
from control_plane.configuration.staged_router import router as staged_router
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
    StaffWrite,
    TenantConfigWrite,
)
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope

router = APIRouter(prefix="/api/config", tags=["configuration"])
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="a top-level key of the document")]
StaffId = Annotated[str, Path(pattern=r"^st-[0-9a-f]{12}$", description="the staff member's id")]

_WRITE_REFUSALS = (UnknownKey, KeyManagedElsewhere, SupportAccessRefused, InvalidConfiguration)


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


def _settings_routes(route: LayerRoute) -> None:
    """Read, set and delete a key on ``route``'s layer."""
    layer = route.layer

    async def read(target: Target, engine: Engine, principal: ConfigRead) -> LayerOut:
        views = await service.layer_settings(
            engine, scope=TenantScope.of(principal), layer=layer, target=target
        )
        return _layer_out(layer, target, views)

    async def put(
        request: Request,
        target: Target,
        key: Key,
        body: SettingIn,
        engine: Engine,
        principal: Writer,
    ) -> ChangeOut:
        guard_support_access(principal, [key])
        change = await service.set_setting(
            engine,
            scope=TenantScope.of(principal),
            actor=Actor.of(principal),
            layer=layer,
            target=target,
            key=key,
            value=body.value,
        )
        wake_publisher(request)
        return _change_out(change)

    async def remove(
        request: Request, target: Target, key: Key, engine: Engine, principal: Writer
    ) -> ChangeOut:
        guard_support_access(principal, [key])
        change = await service.delete_setting(
            engine,
            scope=TenantScope.of(principal),
            actor=Actor.of(principal),
            layer=layer,
            target=target,
            key=key,
        )
        wake_publisher(request)
        return _change_out(change)

    add = functools.partial(add_layer_route, router, route)
    add(read, operation="read", method="GET", path="/settings", name=f"{route.name}_settings")
    add(
        put,
        operation="set",
        method="PUT",
        path="/settings/{key}",
        name=f"set_{route.name}_setting",
        refusals=_WRITE_REFUSALS,
    )
    add(
        remove,
        operation="delete",
        method="DELETE",
        path="/settings/{key}",
        name=f"delete_{route.name}_setting",
        refusals=(SettingNotFound, *_WRITE_REFUSALS),
    )


@router.get("/schema", responses=problem_responses(invalid=False))
async def config_schema(principal: ConfigRead) -> dict[str, Any]:
    """The JSON Schema of the store configuration document, with its size budget."""
    return document.json_schema()


# -- each layer's settings ------------------------------------------------------------------------

for _route in LAYER_ROUTES:
    _settings_routes(_route)


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
    wake_publisher(request)
    return GroupOut.model_validate(dataclasses.asdict(view))


# -- store layer and tags -------------------------------------------------------------------------


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
    wake_publisher(request)
    return TagsOut(store_id=store_id, tags=tags)


# -- register layer and the effective document ----------------------------------------------------


@router.get("/devices/{device_id}", responses=problem_responses(DeviceNotFound))
async def effective(
    device_id: DeviceIdPath, engine: Engine, principal: ConfigRead
) -> DeviceConfigOut:
    """The device's effective desired document key by key: value, provenance, drift."""
    view = await device_configuration(engine, scope=TenantScope.of(principal), device_id=device_id)
    return DeviceConfigOut.model_validate(dataclasses.asdict(view))


@router.get("/drift/counts", responses=problem_responses())
async def drift_counts(engine: Engine, principal: ConfigRead) -> DriftCountsOut:
    """The fleet's drift counted: registers, how many drift, on which keys, since when."""
    counted = await config_drift.drift_counts(engine, scope=TenantScope.of(principal))
    return DriftCountsOut.model_validate(dataclasses.asdict(counted))


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
    wake_publisher(request)
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
    wake_publisher(request)
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
    wake_publisher(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- preview, history, rollback (history_router.py); changes through waves (staged_router.py) -----

router.include_router(history_router)
router.include_router(staged_router)
