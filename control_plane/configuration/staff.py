"""A store's cashiers and managers: added, re-PINned and removed in the cloud, delivered to every
register of the store in the store layer's ``staff`` key.

How it works: a PIN arrives once (adding someone, resetting their PIN), is hashed with argon2id
here — at costs a register verifies in a fraction of a second (``PIN_*_COST``, inside the
schema's bounds) — and only the hash is kept. After every change the store layer's ``staff``
setting is rebuilt from the table (members sorted by name, then id) and the tenant recomputed, in
the same transaction as the row and its audit entry. No answer, log line or audit entry holds a
PIN; the API and console show no hash either.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.configuration.errors import StaffNotFound
from control_plane.configuration.layers import Layer
from control_plane.configuration.resolution import layer_tenant, lock_tenant
from control_plane.configuration.service import audited, now_ms, write_setting
from control_plane.configuration.tables import store_staff
from control_plane.operators.audit import Actor
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.store_config import Lockout

StaffRole = Literal["cashier", "manager"]
ACTION = "staff:write"

#: argon2id costs of a PIN hash: OWASP's minimum for argon2id (19 MiB, 2 passes), which a
#: register's CPU verifies in well under a second; within protocols.store_config's bounds.
PIN_TIME_COST, PIN_MEMORY_KIB, PIN_PARALLELISM = 2, 19 * 1024, 1
_HASHER = PasswordHasher(
    time_cost=PIN_TIME_COST, memory_cost=PIN_MEMORY_KIB, parallelism=PIN_PARALLELISM
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffView:
    """A staff member as the API shows them: never the PIN, never its hash."""

    id: str
    store_id: str
    name: str
    role: StaffRole
    created_at: int
    updated_at: int
    updated_by: str


def _view(row: Any) -> StaffView:
    return StaffView(
        id=row.id,
        store_id=row.store_id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


async def hash_pin(pin: str) -> str:
    """The PIN's argon2id hash, made off the event loop."""
    return await asyncio.to_thread(_HASHER.hash, pin)


async def _deliver(
    conn: AsyncConnection, *, tenant_id: str, store_id: str, actor: Actor, now: int
) -> None:
    """Rebuild the store layer's ``staff`` key from the table and recompute the tenant."""
    rows = await conn.execute(
        select(store_staff)
        .where(store_staff.c.store_id == store_id)
        .order_by(store_staff.c.name, store_staff.c.id)
    )
    members = [
        {"id": row.id, "name": row.name, "role": row.role, "pin_hash": row.pin_hash} for row in rows
    ]
    await write_setting(
        conn,
        tenant_id=tenant_id,
        layer=Layer.STORE,
        target=store_id,
        key="staff",
        value={"members": members, "lockout": Lockout().model_dump(mode="json")},
        actor=actor,
        action=ACTION,
        now=now,
    )


async def list_staff(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, store_id: str
) -> list[StaffView]:
    """The store's staff by name."""
    async with engine.connect() as conn:
        await layer_tenant(conn, scope=scope, layer=Layer.STORE, target=store_id)
        rows = await conn.execute(
            select(store_staff)
            .where(store_staff.c.store_id == store_id)
            .order_by(store_staff.c.name, store_staff.c.id)
        )
        return [_view(row) for row in rows]


async def add_staff(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    store_id: str,
    name: str,
    role: StaffRole,
    pin: str,
    now: int | None = None,
) -> StaffView:
    """Add a cashier or manager; every register of the store lets them sign in."""
    pin_hash = await hash_pin(pin)
    at = now_ms() if now is None else now
    staff_id = "st-" + secrets.token_hex(6)
    async with engine.begin() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=Layer.STORE, target=store_id)
        await lock_tenant(conn, tenant_id)
        row = {
            "id": staff_id,
            "tenant_id": tenant_id,
            "store_id": store_id,
            "name": name,
            "role": role,
            "pin_hash": pin_hash,
            "created_at": at,
            "updated_at": at,
            "updated_by": actor.actor,
        }
        await conn.execute(insert(store_staff).values(**row))
        await audited(
            conn,
            actor=actor,
            action=ACTION,
            target=f"store/{store_id}/staff/{staff_id}",
            tenant_id=tenant_id,
            now=at,
            before=None,
            after={"name": name, "role": role, "pin": "set"},
        )
        await _deliver(conn, tenant_id=tenant_id, store_id=store_id, actor=actor, now=at)
        found = (await conn.execute(select(store_staff).where(store_staff.c.id == staff_id))).one()
    return _view(found)


async def _member(conn: AsyncConnection, store_id: str, staff_id: str) -> Any:
    row = (
        await conn.execute(
            select(store_staff).where(
                store_staff.c.id == staff_id, store_staff.c.store_id == store_id
            )
        )
    ).first()
    if row is None:
        raise StaffNotFound(staff_id)
    return row


async def reset_pin(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    store_id: str,
    staff_id: str,
    pin: str,
    now: int | None = None,
) -> StaffView:
    """Give a staff member a new PIN (the old one stops working at every register)."""
    pin_hash = await hash_pin(pin)
    at = now_ms() if now is None else now
    async with engine.begin() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=Layer.STORE, target=store_id)
        await lock_tenant(conn, tenant_id)
        held = await _member(conn, store_id, staff_id)
        await conn.execute(
            update(store_staff)
            .where(store_staff.c.id == staff_id)
            .values(pin_hash=pin_hash, updated_at=at, updated_by=actor.actor)
        )
        await audited(
            conn,
            actor=actor,
            action=ACTION,
            target=f"store/{store_id}/staff/{staff_id}/pin",
            tenant_id=tenant_id,
            now=at,
            before={"name": held.name, "pin": "set"},
            after={"name": held.name, "pin": "reset"},
        )
        await _deliver(conn, tenant_id=tenant_id, store_id=store_id, actor=actor, now=at)
        found = await _member(conn, store_id, staff_id)
    return _view(found)


async def remove_staff(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    store_id: str,
    staff_id: str,
    now: int | None = None,
) -> None:
    """Remove a staff member: no register of the store lets them sign in any more."""
    at = now_ms() if now is None else now
    async with engine.begin() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=Layer.STORE, target=store_id)
        await lock_tenant(conn, tenant_id)
        held = await _member(conn, store_id, staff_id)
        await conn.execute(delete(store_staff).where(store_staff.c.id == staff_id))
        await audited(
            conn,
            actor=actor,
            action=ACTION,
            target=f"store/{store_id}/staff/{staff_id}",
            tenant_id=tenant_id,
            now=at,
            before={"name": held.name, "role": held.role},
            after=None,
        )
        await _deliver(conn, tenant_id=tenant_id, store_id=store_id, actor=actor, now=at)
