"""REST endpoints of the catalog: snapshot and changes for registers, upserts for back office."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog import service
from control_plane.catalog.schemas import ChangeSet, ItemsIn, Snapshot, VersionOut
from control_plane.dependencies import get_engine

router = APIRouter(prefix="/api/catalog", tags=["catalog"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
TenantId = Annotated[str, Query(min_length=1, max_length=64)]


@router.get("/snapshot")
async def get_snapshot(engine: Engine, tenant_id: TenantId) -> Snapshot:
    """The tenant's whole catalog (a register's first load, or after a conflict)."""
    try:
        return await service.snapshot(engine, tenant_id=tenant_id)
    except service.UnknownTenant as err:
        raise HTTPException(404, str(err)) from err


@router.get("/changes")
async def get_changes(
    engine: Engine, tenant_id: TenantId, since: Annotated[int, Query(ge=0)]
) -> ChangeSet:
    """Items changed after version ``since``; 410 when ``since`` is newer than the cloud."""
    try:
        return await service.changes(engine, tenant_id=tenant_id, since=since)
    except service.UnknownTenant as err:
        raise HTTPException(404, str(err)) from err
    except service.VersionAhead as err:
        raise HTTPException(410, str(err)) from err


@router.post("/items")
async def post_items(engine: Engine, body: ItemsIn) -> VersionOut:
    """Add or change items (and drop ``deletes``) as one new catalog version."""
    try:
        version = await service.upsert_items(
            engine, tenant_id=body.tenant_id, items=body.items, deletes=body.deletes
        )
    except service.UnknownTenant as err:
        raise HTTPException(404, str(err)) from err
    return VersionOut(version=version)
