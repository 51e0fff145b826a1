"""Catalog operations. Keyword-only arguments; refusals are domain errors (``errors.py``).

How it works: each tenant has one version counter. An upsert takes the counter's row lock
(``UPDATE … RETURNING``) for its whole transaction, so versions are handed out and committed in
order, and stamps every item it touches with the new version (a delete leaves a tombstone).
``changes(since=V)`` is then simply the rows with ``version > V``. The version is read before
the rows, so a snapshot or change set may already contain a few items of a newer version;
applying an upsert twice is harmless, so the register converges on its next poll.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.catalog.errors import VersionAhead
from control_plane.catalog.schemas import CatalogItem, ChangeSet, Snapshot
from control_plane.catalog.tables import catalog_items, catalog_versions
from control_plane.db.tables import tenants
from control_plane.devices.errors import TenantNotFound


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _version(conn: AsyncConnection, tenant_id: str) -> int:
    found = await conn.execute(
        select(catalog_versions.c.version).where(catalog_versions.c.tenant_id == tenant_id)
    )
    return int(found.scalar_one_or_none() or 0)


async def _require_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    found = await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
    if found.first() is None:
        raise TenantNotFound(tenant_id)


async def _next_version(conn: AsyncConnection, tenant_id: str) -> int:
    """Bump and lock the tenant's counter until the transaction ends."""
    now = _now_ms()
    bumped = await conn.execute(
        update(catalog_versions)
        .where(catalog_versions.c.tenant_id == tenant_id)
        .values(version=catalog_versions.c.version + 1, updated_at=now)
        .returning(catalog_versions.c.version)
    )
    row = bumped.first()
    if row is not None:
        return int(row[0])
    await conn.execute(
        insert(catalog_versions).values(tenant_id=tenant_id, version=1, updated_at=now)
    )
    return 1


async def upsert_items(
    engine: AsyncEngine,
    *,
    tenant_id: str,
    items: Sequence[CatalogItem],
    deletes: Sequence[str] = (),
) -> int:
    """Add or change ``items`` and drop ``deletes`` as one new version; returns it."""
    for attempt in range(3):
        try:
            async with engine.begin() as conn:
                await _require_tenant(conn, tenant_id)
                version = await _next_version(conn, tenant_id)
                for item in items:
                    body = item.model_copy(update={"version": version}).model_dump_json()
                    changed = await conn.execute(
                        update(catalog_items)
                        .where(
                            catalog_items.c.tenant_id == tenant_id,
                            catalog_items.c.item_id == item.id,
                        )
                        .values(version=version, deleted=False, body=body)
                    )
                    if changed.rowcount == 0:
                        await conn.execute(
                            insert(catalog_items).values(
                                tenant_id=tenant_id,
                                item_id=item.id,
                                version=version,
                                deleted=False,
                                body=body,
                            )
                        )
                for item_id in deletes:
                    await conn.execute(
                        update(catalog_items)
                        .where(
                            catalog_items.c.tenant_id == tenant_id,
                            catalog_items.c.item_id == item_id,
                        )
                        .values(version=version, deleted=True)
                    )
                return version
        except IntegrityError:
            if attempt == 2:
                raise
            # two first-ever upserts raced to create the counter: the loser runs again
    raise AssertionError("unreachable")


def _item(body: str) -> CatalogItem:
    return CatalogItem.model_validate(json.loads(body))


async def snapshot(engine: AsyncEngine, *, tenant_id: str) -> Snapshot:
    """Every live item of the tenant and the version they are at (at least)."""
    async with engine.connect() as conn:
        await _require_tenant(conn, tenant_id)
        version = await _version(conn, tenant_id)
        rows = await conn.execute(
            select(catalog_items.c.body)
            .where(catalog_items.c.tenant_id == tenant_id, catalog_items.c.deleted.is_(False))
            .order_by(catalog_items.c.item_id)
        )
        return Snapshot(version=version, items=[_item(r[0]) for r in rows])


async def changes(engine: AsyncEngine, *, tenant_id: str, since: int) -> ChangeSet:
    """What changed after version ``since``."""
    async with engine.connect() as conn:
        await _require_tenant(conn, tenant_id)
        version = await _version(conn, tenant_id)
        if since > version:
            raise VersionAhead(since=since, version=version)
        rows = await conn.execute(
            select(catalog_items.c.item_id, catalog_items.c.deleted, catalog_items.c.body)
            .where(catalog_items.c.tenant_id == tenant_id, catalog_items.c.version > since)
            .order_by(catalog_items.c.version, catalog_items.c.item_id)
        )
        upserts: list[CatalogItem] = []
        deletes: list[str] = []
        for item_id, deleted, body in rows:
            if deleted:
                deletes.append(str(item_id))
            else:
                upserts.append(_item(body))
        return ChangeSet(base_version=since, version=version, upserts=upserts, deletes=deletes)
