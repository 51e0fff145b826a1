"""Registry operations. Keyword-only arguments; errors are the registry's domain errors.

Every lookup takes the caller's :class:`~control_plane.tenancy.TenantScope`: a row of another
tenant is not found (the same 404 as a missing one), a tenant id the caller names must be its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import RowMapping, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.errors import (
    AlreadyExists,
    DeviceNotFound,
    StoreNotFound,
    TenantNotFound,
)
from control_plane.devices.tables import devices, stores, tenants
from control_plane.tenancy import EVERY_TENANT, TenantScope

# the registry's refusals are importable from here too, where callers already look for them
__all__ = [
    "AlreadyExists",
    "DeviceNotFound",
    "StoreNotFound",
    "TenantNotFound",
    "create_store",
    "create_tenant",
    "get_device",
    "list_devices",
    "list_stores",
    "register_device",
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def create_tenant(
    engine: AsyncEngine, *, tenant_id: str, name: str, currency: str = "EUR"
) -> None:
    """Add a tenant."""
    await _insert(
        engine, tenants, {"id": tenant_id, "name": name, "currency": currency}, kind="tenant"
    )


async def create_store(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str,
    tenant_id: str,
    name: str,
    timezone: str = "UTC",
) -> None:
    """Add a store to a tenant (the caller's own, unless it acts for every tenant)."""
    scope.claim(tenant_id, action="stores:write")
    async with engine.connect() as conn:
        if (
            await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
        ).first() is None:
            raise TenantNotFound(tenant_id)
    await _insert(
        engine,
        stores,
        {"id": store_id, "tenant_id": tenant_id, "name": name, "timezone": timezone},
        kind="store",
    )


async def register_device(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    store_id: str,
    register_name: str = "",
) -> None:
    """Add a device at a store; the tenant comes from the store, never from the caller."""
    async with engine.connect() as conn:
        store = (
            await conn.execute(
                select(stores.c.tenant_id).where(
                    stores.c.id == store_id, scope.where(stores.c.tenant_id)
                )
            )
        ).first()
    if store is None:
        raise StoreNotFound(store_id)
    await _insert(
        engine,
        devices,
        {
            "id": device_id,
            "store_id": store_id,
            "tenant_id": store.tenant_id,
            "register_name": register_name,
        },
        kind="device",
    )


async def _insert(
    engine: AsyncEngine, table: Table, values: dict[str, object], *, kind: str
) -> None:
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(created_at=_now_ms(), **values))
    except IntegrityError as err:
        raise AlreadyExists(kind, str(values["id"])) from err


async def list_devices(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, store_id: str | None = None
) -> Sequence[RowMapping]:
    """Devices in scope, optionally of one store, ordered by store then id."""
    query = (
        select(devices)
        .where(scope.where(devices.c.tenant_id))
        .order_by(devices.c.store_id, devices.c.id)
    )
    if store_id is not None:
        query = query.where(devices.c.store_id == store_id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def get_device(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, device_id: str
) -> RowMapping:
    """One device in scope, or :class:`DeviceNotFound` (also for another tenant's)."""
    query = select(devices).where(devices.c.id == device_id, scope.where(devices.c.tenant_id))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise DeviceNotFound(device_id)
    return row


async def list_stores(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT
) -> Sequence[RowMapping]:
    """The stores in scope."""
    query = select(stores).where(scope.where(stores.c.tenant_id)).order_by(stores.c.id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()
