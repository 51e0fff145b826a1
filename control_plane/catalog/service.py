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
from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.catalog.errors import VersionAhead
from control_plane.catalog.schemas import CatalogItem, ChangeSet, Snapshot
from control_plane.catalog.tables import catalog_items, catalog_versions
from control_plane.devices.errors import TenantNotFound
from control_plane.devices.tables import tenants
from control_plane.tenancy import EVERY_TENANT, TenantScope

T = TypeVar("T")


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
    scope: TenantScope = EVERY_TENANT,
    tenant_id: str,
    items: Sequence[CatalogItem],
    deletes: Sequence[str] = (),
) -> int:
    """Add or change ``items`` and drop ``deletes`` as one new version; returns it.

    ``tenant_id`` is the client's word: it must be in the caller's ``scope``.
    """
    scope.claim(tenant_id, action="catalog:write")
    for attempt in range(3):
        try:
            async with engine.begin() as conn:
                await _require_tenant(conn, tenant_id)
                version = await _next_version(conn, tenant_id)
                await _upsert(conn, tenant_id=tenant_id, version=version, items=items)
                await _delete(conn, tenant_id=tenant_id, version=version, item_ids=deletes)
                return version
        except IntegrityError:
            if attempt == 2:
                raise
            # two first-ever upserts raced to create the counter: the loser runs again
    raise AssertionError("unreachable")


#: Ids per ``IN (…)`` or per executemany batch: well inside both stores' bound-parameter limits.
CHUNK = 500


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def _upsert(
    conn: AsyncConnection, *, tenant_id: str, version: int, items: Sequence[CatalogItem]
) -> None:
    """Write ``items`` at ``version`` in a few statements, not two per item.

    An upsert may hold 10,000 items: one round trip each took longer than a client waits. The
    last of several items with one id wins, as it did when they were written one by one.
    """
    latest = {item.id: item for item in items}
    bodies = {
        item_id: item.model_copy(update={"version": version}).model_dump_json()
        for item_id, item in latest.items()
    }
    ids = list(bodies)
    existing: set[str] = set()
    for chunk in _chunks(ids):
        found = await conn.execute(
            select(catalog_items.c.item_id).where(
                catalog_items.c.tenant_id == tenant_id, catalog_items.c.item_id.in_(chunk)
            )
        )
        existing.update(str(row[0]) for row in found)
    changed: list[dict[str, object]] = [
        {"b_item_id": item_id, "b_body": bodies[item_id]} for item_id in ids if item_id in existing
    ]
    added: list[dict[str, object]] = [
        {"tenant_id": tenant_id, "item_id": i, "version": version, "deleted": False, "body": b}
        for i, b in bodies.items()
        if i not in existing
    ]
    statement = (
        update(catalog_items)
        .where(
            catalog_items.c.tenant_id == tenant_id,
            catalog_items.c.item_id == bindparam("b_item_id"),
        )
        .values(version=version, deleted=False, body=bindparam("b_body"))
    )
    for batch in _chunks(changed):
        await conn.execute(statement, list(batch))
    for batch in _chunks(added):
        await conn.execute(insert(catalog_items), list(batch))


async def _delete(
    conn: AsyncConnection, *, tenant_id: str, version: int, item_ids: Sequence[str]
) -> None:
    """Leave a tombstone at ``version`` for each of ``item_ids`` the tenant has."""
    for chunk in _chunks(sorted(set(item_ids))):
        await conn.execute(
            update(catalog_items)
            .where(catalog_items.c.tenant_id == tenant_id, catalog_items.c.item_id.in_(chunk))
            .values(version=version, deleted=True)
        )


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
