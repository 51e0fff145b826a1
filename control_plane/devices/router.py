"""REST endpoints of the registry. Refusals are the registry's domain errors (``errors.py``).

Each route names the policy action it performs (``policy.DevicesRead`` …) and hands the
principal's tenant scope to the service, which finds nothing of another tenant.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices import os_updates, service, stock_counts
from control_plane.devices import state as device_state
from control_plane.devices.errors import (
    AlreadyExists,
    DeviceNotFound,
    StateNotReported,
    StoreNotFound,
    TenantNotFound,
)
from control_plane.devices.schemas import (
    DeviceIn,
    DeviceOut,
    DeviceStateOut,
    OsUpdateOut,
    StockCountOut,
    StoreIn,
    StoreOut,
    TenantIn,
)
from control_plane.inputs import DeviceIdPath, IdentifierFilter, Limit
from control_plane.operators.policy import DevicesRead, DevicesWrite, StoresWrite, TenantsWrite
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope

router = APIRouter(prefix="/api", tags=["registry"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(AlreadyExists),
)
async def create_tenant(body: TenantIn, engine: Engine, principal: TenantsWrite) -> TenantIn:
    """Create a tenant (platform admins)."""
    del principal  # the policy allows it to platform admins only: tenants have no tenant
    await service.create_tenant(engine, tenant_id=body.id, name=body.name, currency=body.currency)
    return body


@router.post(
    "/stores",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(TenantNotFound, AlreadyExists),
)
async def create_store(body: StoreIn, engine: Engine, principal: StoresWrite) -> StoreIn:
    """Create a store of the caller's tenant."""
    await service.create_store(
        engine,
        scope=TenantScope.of(principal),
        store_id=body.id,
        tenant_id=body.tenant_id,
        name=body.name,
        timezone=body.timezone,
    )
    return body


@router.get("/stores")
async def list_stores(engine: Engine, principal: DevicesRead) -> list[StoreOut]:
    """The caller's tenant's stores (every tenant's for a platform admin)."""
    rows = await service.list_stores(engine, scope=TenantScope.of(principal))
    return [StoreOut.model_validate(dict(row)) for row in rows]


@router.post(
    "/devices",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(StoreNotFound, AlreadyExists),
)
async def register_device(body: DeviceIn, engine: Engine, principal: DevicesWrite) -> DeviceOut:
    """Register a device at a store of the caller's tenant."""
    scope = TenantScope.of(principal)
    await service.register_device(
        engine,
        scope=scope,
        device_id=body.id,
        store_id=body.store_id,
        register_name=body.register_name,
    )
    row = await service.get_device(engine, scope=scope, device_id=body.id)
    return DeviceOut.model_validate(dict(row))


@router.get("/devices", responses=problem_responses())
async def list_devices(
    engine: Engine, principal: DevicesRead, store_id: IdentifierFilter = None
) -> list[DeviceOut]:
    """Devices with presence and replication health."""
    rows = await service.list_devices(engine, scope=TenantScope.of(principal), store_id=store_id)
    return [DeviceOut.model_validate(dict(row)) for row in rows]


@router.get("/devices/{device_id}", responses=problem_responses(DeviceNotFound))
async def get_device(device_id: DeviceIdPath, engine: Engine, principal: DevicesRead) -> DeviceOut:
    """One device."""
    row = await service.get_device(engine, scope=TenantScope.of(principal), device_id=device_id)
    return DeviceOut.model_validate(dict(row))


@router.get(
    "/devices/{device_id}/state", responses=problem_responses(DeviceNotFound, StateNotReported)
)
async def get_device_state(
    device_id: DeviceIdPath, engine: Engine, principal: DevicesRead
) -> DeviceStateOut:
    """What the device last reported it runs, and its peripherals' health."""
    scope = TenantScope.of(principal)
    await service.get_device(engine, scope=scope, device_id=device_id)
    reported = await device_state.get_state(engine, scope=scope, device_id=device_id)
    if reported is None:
        raise StateNotReported(device_id)
    return DeviceStateOut.model_validate(
        reported | {"problems": device_state.problems(reported["peripherals"])}
    )


@router.get("/devices/{device_id}/os-updates", responses=problem_responses(DeviceNotFound))
async def list_os_updates(
    device_id: DeviceIdPath, engine: Engine, principal: DevicesRead, limit: Limit = 20
) -> list[OsUpdateOut]:
    """The device's OS update steps as its agent reported them, newest first (issue 15)."""
    scope = TenantScope.of(principal)
    await service.get_device(engine, scope=scope, device_id=device_id)
    found = await os_updates.list_os_updates(engine, scope=scope, device_id=device_id, limit=limit)
    return [OsUpdateOut.model_validate(update) for update in found]


@router.get("/stock-counts", tags=["stock counts"], responses=problem_responses())
async def list_stock_counts(
    engine: Engine,
    principal: DevicesRead,
    store_id: IdentifierFilter = None,
    device_id: IdentifierFilter = None,
    limit: Limit = 50,
) -> list[StockCountOut]:
    """Committed stock counts with their variance reports, newest first, once replicated."""
    counts = await stock_counts.list_stock_counts(
        engine,
        scope=TenantScope.of(principal),
        store_id=store_id,
        device_id=device_id,
        limit=limit,
    )
    return [StockCountOut.model_validate(count) for count in counts]
