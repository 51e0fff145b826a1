"""REST endpoints of the registry. Refusals are the registry's domain errors (``errors.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices import service, stock_counts
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
    StockCountOut,
    StoreIn,
    StoreOut,
    TenantIn,
)
from control_plane.inputs import DeviceIdPath, IdentifierFilter, Limit
from control_plane.problems import problem_responses

router = APIRouter(prefix="/api", tags=["registry"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(AlreadyExists),
)
async def create_tenant(body: TenantIn, engine: Engine) -> TenantIn:
    """Create a tenant."""
    await service.create_tenant(engine, tenant_id=body.id, name=body.name, currency=body.currency)
    return body


@router.post(
    "/stores",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(TenantNotFound, AlreadyExists),
)
async def create_store(body: StoreIn, engine: Engine) -> StoreIn:
    """Create a store."""
    await service.create_store(
        engine, store_id=body.id, tenant_id=body.tenant_id, name=body.name, timezone=body.timezone
    )
    return body


@router.get("/stores")
async def list_stores(engine: Engine) -> list[StoreOut]:
    """All stores."""
    return [StoreOut.model_validate(dict(row)) for row in await service.list_stores(engine)]


@router.post(
    "/devices",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(StoreNotFound, AlreadyExists),
)
async def register_device(body: DeviceIn, engine: Engine) -> DeviceOut:
    """Register a device at a store."""
    await service.register_device(
        engine, device_id=body.id, store_id=body.store_id, register_name=body.register_name
    )
    return DeviceOut.model_validate(dict(await service.get_device(engine, device_id=body.id)))


@router.get("/devices", responses=problem_responses())
async def list_devices(engine: Engine, store_id: IdentifierFilter = None) -> list[DeviceOut]:
    """Devices with presence and replication health."""
    rows = await service.list_devices(engine, store_id=store_id)
    return [DeviceOut.model_validate(dict(row)) for row in rows]


@router.get("/devices/{device_id}", responses=problem_responses(DeviceNotFound))
async def get_device(device_id: DeviceIdPath, engine: Engine) -> DeviceOut:
    """One device."""
    return DeviceOut.model_validate(dict(await service.get_device(engine, device_id=device_id)))


@router.get(
    "/devices/{device_id}/state", responses=problem_responses(DeviceNotFound, StateNotReported)
)
async def get_device_state(device_id: DeviceIdPath, engine: Engine) -> DeviceStateOut:
    """What the device last reported it runs, and its peripherals' health."""
    await service.get_device(engine, device_id=device_id)
    reported = await device_state.get_state(engine, device_id=device_id)
    if reported is None:
        raise StateNotReported(device_id)
    return DeviceStateOut.model_validate(
        reported | {"problems": device_state.problems(reported["peripherals"])}
    )


@router.get("/stock-counts", tags=["stock counts"], responses=problem_responses())
async def list_stock_counts(
    engine: Engine,
    store_id: IdentifierFilter = None,
    device_id: IdentifierFilter = None,
    limit: Limit = 50,
) -> list[StockCountOut]:
    """Committed stock counts with their variance reports, newest first, once replicated."""
    counts = await stock_counts.list_stock_counts(
        engine, store_id=store_id, device_id=device_id, limit=limit
    )
    return [StockCountOut.model_validate(count) for count in counts]
