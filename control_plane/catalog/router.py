"""REST endpoints of the catalog: snapshot and changes for registers, upserts for back office.

Snapshot and changes are device routes: the register proves itself with its assertion
(``DeviceDep``) and reads its own tenant's catalog, the tenant taken from its registry entry;
a ``tenant_id`` it still sends must be that one (any other answers 404, as an unknown tenant).
Refusals are domain errors: the registry's ``TenantNotFound``, ``errors.VersionAhead`` and the
device authentication's (``control_plane.devices.device_auth``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog import service
from control_plane.catalog.errors import VersionAhead
from control_plane.catalog.schemas import ChangeSet, ItemsIn, Snapshot, VersionOut
from control_plane.dependencies import get_engine
from control_plane.devices.device_auth import DEVICE_AUTH_REFUSALS, DeviceDep, DeviceEntry
from control_plane.devices.errors import TenantNotFound
from control_plane.inputs import Mark
from control_plane.operators.policy import CatalogWrite
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.topics import DEVICE_ID_PATTERN

router = APIRouter(prefix="/api/catalog", tags=["catalog"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
OwnTenant = Annotated[
    str | None,
    Query(
        pattern=DEVICE_ID_PATTERN.pattern,
        description="optional: the device's own tenant (any other answers 404)",
    ),
]


def _device_tenant(device: DeviceEntry, asked: str | None) -> str:
    """The calling device's tenant; a device naming another one learns nothing about it."""
    if asked is not None and asked != device.tenant_id:
        raise TenantNotFound(asked)
    return device.tenant_id


@router.get("/snapshot", responses=problem_responses(TenantNotFound, *DEVICE_AUTH_REFUSALS))
async def get_snapshot(engine: Engine, device: DeviceDep, tenant_id: OwnTenant = None) -> Snapshot:
    """The calling device's tenant's catalog (a register's first load, or after a conflict)."""
    return await service.snapshot(engine, tenant_id=_device_tenant(device, tenant_id))


@router.get(
    "/changes",
    responses=problem_responses(TenantNotFound, VersionAhead, *DEVICE_AUTH_REFUSALS),
)
async def get_changes(
    engine: Engine, device: DeviceDep, since: Mark, tenant_id: OwnTenant = None
) -> ChangeSet:
    """Items changed after version ``since``; 410 when ``since`` is newer than the cloud."""
    return await service.changes(engine, tenant_id=_device_tenant(device, tenant_id), since=since)


@router.post("/items", responses=problem_responses(TenantNotFound))
async def post_items(engine: Engine, body: ItemsIn, principal: CatalogWrite) -> VersionOut:
    """Add or change items (and drop ``deletes``) as one new catalog version of your tenant."""
    version = await service.upsert_items(
        engine,
        scope=TenantScope.of(principal),
        tenant_id=body.tenant_id,
        items=body.items,
        deletes=body.deletes,
    )
    return VersionOut(version=version)
