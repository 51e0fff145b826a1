"""REST endpoints of the registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices import service, stock_counts
from control_plane.devices import state as device_state
from control_plane.devices.schemas import (
    DeviceIn,
    DeviceOut,
    DeviceStateOut,
    StockCountOut,
    StoreIn,
    StoreOut,
    TenantIn,
)

router = APIRouter(prefix="/api", tags=["registry"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def _http(err: service.RegistryError) -> HTTPException:
    code = (
        status.HTTP_404_NOT_FOUND if isinstance(err, service.NotFound) else status.HTTP_409_CONFLICT
    )
    return HTTPException(code, detail=str(err))


@router.post("/tenants", status_code=status.HTTP_201_CREATED)
async def create_tenant(body: TenantIn, engine: Engine) -> TenantIn:
    """Create a tenant."""
    try:
        await service.create_tenant(
            engine, tenant_id=body.id, name=body.name, currency=body.currency
        )
    except service.RegistryError as err:
        raise _http(err) from err
    return body


@router.post("/stores", status_code=status.HTTP_201_CREATED)
async def create_store(body: StoreIn, engine: Engine) -> StoreIn:
    """Create a store."""
    try:
        await service.create_store(
            engine,
            store_id=body.id,
            tenant_id=body.tenant_id,
            name=body.name,
            timezone=body.timezone,
        )
    except service.RegistryError as err:
        raise _http(err) from err
    return body


@router.get("/stores")
async def list_stores(engine: Engine) -> list[StoreOut]:
    """All stores."""
    return [StoreOut.model_validate(dict(row)) for row in await service.list_stores(engine)]


@router.post("/devices", status_code=status.HTTP_201_CREATED)
async def register_device(body: DeviceIn, engine: Engine) -> DeviceOut:
    """Register a device at a store."""
    try:
        await service.register_device(
            engine, device_id=body.id, store_id=body.store_id, register_name=body.register_name
        )
        return DeviceOut.model_validate(dict(await service.get_device(engine, device_id=body.id)))
    except service.RegistryError as err:
        raise _http(err) from err


@router.get("/devices")
async def list_devices(engine: Engine, store_id: str | None = None) -> list[DeviceOut]:
    """Devices with presence and replication health."""
    rows = await service.list_devices(engine, store_id=store_id)
    return [DeviceOut.model_validate(dict(row)) for row in rows]


@router.get("/devices/{device_id}")
async def get_device(device_id: str, engine: Engine) -> DeviceOut:
    """One device."""
    try:
        return DeviceOut.model_validate(dict(await service.get_device(engine, device_id=device_id)))
    except service.RegistryError as err:
        raise _http(err) from err


@router.get("/devices/{device_id}/state")
async def get_device_state(device_id: str, engine: Engine) -> DeviceStateOut:
    """What the device last reported it runs, and its peripherals' health."""
    try:
        await service.get_device(engine, device_id=device_id)
    except service.RegistryError as err:
        raise _http(err) from err
    reported = await device_state.get_state(engine, device_id=device_id)
    if reported is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"device {device_id!r} has not reported its state"
        )
    return DeviceStateOut.model_validate(
        reported | {"problems": device_state.problems(reported["peripherals"])}
    )


@router.get("/stock-counts", tags=["stock counts"])
async def list_stock_counts(
    engine: Engine, store_id: str | None = None, device_id: str | None = None, limit: int = 50
) -> list[StockCountOut]:
    """Committed stock counts with their variance reports, newest first, once replicated."""
    counts = await stock_counts.list_stock_counts(
        engine, store_id=store_id, device_id=device_id, limit=max(1, min(limit, 500))
    )
    return [StockCountOut.model_validate(count) for count in counts]
