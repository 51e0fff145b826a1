"""REST endpoints of the catalog: snapshot and changes for registers, upserts for back office.

Refusals are domain errors: the registry's ``TenantNotFound`` and ``errors.VersionAhead``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog import service
from control_plane.catalog.errors import VersionAhead
from control_plane.catalog.schemas import ChangeSet, ItemsIn, Snapshot, VersionOut
from control_plane.dependencies import get_engine
from control_plane.devices.errors import TenantNotFound
from control_plane.inputs import Mark
from control_plane.problems import problem_responses
from protocols.topics import DEVICE_ID_PATTERN

router = APIRouter(prefix="/api/catalog", tags=["catalog"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
TenantId = Annotated[str, Query(pattern=DEVICE_ID_PATTERN.pattern)]


@router.get("/snapshot", responses=problem_responses(TenantNotFound))
async def get_snapshot(engine: Engine, tenant_id: TenantId) -> Snapshot:
    """The tenant's whole catalog (a register's first load, or after a conflict)."""
    return await service.snapshot(engine, tenant_id=tenant_id)


@router.get("/changes", responses=problem_responses(TenantNotFound, VersionAhead))
async def get_changes(engine: Engine, tenant_id: TenantId, since: Mark) -> ChangeSet:
    """Items changed after version ``since``; 410 when ``since`` is newer than the cloud."""
    return await service.changes(engine, tenant_id=tenant_id, since=since)


@router.post("/items", responses=problem_responses(TenantNotFound))
async def post_items(engine: Engine, body: ItemsIn) -> VersionOut:
    """Add or change items (and drop ``deletes``) as one new catalog version."""
    version = await service.upsert_items(
        engine, tenant_id=body.tenant_id, items=body.items, deletes=body.deletes
    )
    return VersionOut(version=version)
