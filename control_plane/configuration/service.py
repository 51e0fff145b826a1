"""Edit the layers: set and delete a key, store groups and store tags. Keyword-only; domain errors.

How it works: each change is one transaction — find the layer's tenant (in the operator's scope:
another tenant's layer is not found), lock the tenant, write the change, append the audit entry
(whose id the setting keeps as its provenance) and recompute the tenant's effective documents
(:func:`control_plane.configuration.resolution.recompute_tenant`). If a device's document would
become invalid the recompute raises, the transaction rolls back, and the refusal alone is
audited. The devices whose document changed are returned; the caller wakes the publisher.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.configuration import document
from control_plane.configuration.errors import (
    InvalidConfiguration,
    KeyManagedElsewhere,
    SettingNotFound,
    UnknownKey,
)
from control_plane.configuration.history import Kind, layer_snapshot, record_layer_version
from control_plane.configuration.layers import Layer
from control_plane.configuration.resolution import (
    Cause,
    layer_tenant,
    lock_tenant,
    recompute_tenant,
)
from control_plane.configuration.tables import config_groups, config_settings
from control_plane.devices.errors import (
    AlreadyExists,
    TenantNotFound,
)
from control_plane.devices.tables import store_tags, stores, tenants
from control_plane.operators import audit
from control_plane.operators.audit import Actor
from control_plane.operators.tables import audit_log
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.canonical import canonical_bytes
from protocols.errors import NonCanonicalValue

#: The policy action each layer's edits are audited (and guarded) as.
EDIT_ACTION = {
    Layer.TENANT: "tenant_config:write",
    Layer.GROUP: "tenant_config:write",
    Layer.STORE: "config:write",
    Layer.REGISTER: "config:write",
}


def now_ms() -> int:
    """Wall-clock milliseconds, as every table keeps time."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A stored change: where, the audit entry, and the devices whose document changed."""

    layer: Layer
    target: str
    key: str
    audit_id: int
    devices: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingView:
    """One key set at a layer, as an operator sees it (staff PIN hashes redacted)."""

    key: str
    value: Any
    set_by: str
    set_at: int
    audit_id: int | None


async def audited(
    conn: AsyncConnection,
    *,
    actor: Actor,
    action: str,
    target: str,
    tenant_id: str,
    now: int,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> int:
    """Append an audit entry in the caller's transaction and return its id.

    Read back as the newest matching entry: rows other transactions have not committed are not
    visible here, and on SQLite writers are serialised, so the entry found is this one.
    """
    await audit.record(
        conn,
        at=now,
        actor=actor,
        action=action,
        outcome="ok",
        target=target,
        tenant_id=tenant_id,
        before=before,
        after=after,
    )
    found = await conn.scalar(
        select(func.max(audit_log.c.id)).where(
            audit_log.c.action == action[:64],
            audit_log.c.target == target[:200],
            audit_log.c.at == now,
        )
    )
    return int(found)


async def refused(
    engine: AsyncEngine, *, actor: Actor, action: str, target: str, reason: str, now: int
) -> None:
    """Audit a refused change (in its own transaction: nothing else was written)."""
    await audit.record_alone(
        engine,
        at=now,
        actor=actor,
        action=action,
        outcome="refused",
        target=target,
        reason=reason,
    )


_CANONICAL_AT = re.compile(r" at (\S+?):? ")


def canonical_value(key: str, value: Any) -> str:
    """``value`` as the canonical JSON a setting keeps; refused as invalid when it has none."""
    try:
        return canonical_bytes(value).decode()
    except NonCanonicalValue as err:
        where = _CANONICAL_AT.search(err.reason)
        path = key + (where[1] if where and where[1] != "$" else "")
        raise InvalidConfiguration(
            key=key, path=path, why=err.reason, devices=1, example="every device"
        ) from err


async def _stored(conn: AsyncConnection, layer: Layer, target: str, key: str) -> Any | None:
    text = await conn.scalar(select(config_settings.c.value).where(*_setting(layer, target, key)))
    return None if text is None else json.loads(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerEdit:
    """One change to a layer's keys as it is stored: values to set, keys to delete.

    ``sets`` holds each value as its canonical JSON text (:func:`canonical_value`); ``kind`` is
    how the layer's history names the change, ``restored`` the version a rollback brings back.
    """

    kind: Kind
    sets: Mapping[str, str] = field(default_factory=dict)
    deletes: frozenset[str] = frozenset()
    restored: int | None = None

    @property
    def keys(self) -> list[str]:
        """Every key the edit touches, in order."""
        return sorted({*self.sets, *self.deletes})


@dataclass(frozen=True, slots=True, kw_only=True)
class Edited:
    """An edit stored: the layer's new version and the devices whose document changed."""

    version: int
    devices: list[str]


async def apply_edit(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    layer: Layer,
    target: str,
    edit: LayerEdit,
    current: Mapping[str, Any],
    actor: Actor,
    audit_id: int,
    now: int,
) -> Edited:
    """Store ``edit`` on the layer as it is (``current``), keep it as the layer's next version and
    recompute the tenant.

    The one sequence every change of a layer's keys runs (set, delete, rollback, the staff
    key): each row keeps ``audit_id`` as its provenance, and a recompute that finds a device's
    document invalid raises :class:`InvalidConfiguration`, so the caller's transaction rolls back
    with nothing stored.
    """
    for key, text in edit.sets.items():
        row = {"value": text, "set_by": actor.actor, "set_at": now, "audit_id": audit_id}
        if key in current:
            await conn.execute(
                update(config_settings).where(*_setting(layer, target, key)).values(**row)
            )
        else:
            await conn.execute(
                insert(config_settings).values(
                    layer=layer.value, target=target, key=key, tenant_id=tenant_id, **row
                )
            )
    for key in sorted(edit.deletes):
        await conn.execute(delete(config_settings).where(*_setting(layer, target, key)))
    after = {key: value for key, value in current.items() if key not in edit.deletes}
    after |= {key: json.loads(text) for key, text in edit.sets.items()}
    version = await record_layer_version(
        conn,
        tenant_id=tenant_id,
        layer=layer,
        target=target,
        kind=edit.kind,
        before=current,
        after=after,
        actor=actor.actor,
        audit_id=audit_id,
        now=now,
        restored=edit.restored,
    )
    keys = edit.keys
    recomputed = await recompute_tenant(
        conn,
        tenant_id=tenant_id,
        now=now,
        change=keys[0] if len(keys) == 1 else keys,
        only=(layer, target),
        cause=Cause(
            layer=layer, target=target, layer_version=version, audit_id=audit_id, actor=actor.actor
        ),
    )
    return Edited(version=version, devices=recomputed.changed)


@contextlib.asynccontextmanager
async def layer_change(
    engine: AsyncEngine,
    *,
    scope: TenantScope,
    actor: Actor,
    layer: Layer,
    target: str,
    audited_as: str,
    now: int,
) -> AsyncIterator[tuple[AsyncConnection, str]]:
    """One change's transaction on a layer: its tenant found in ``scope`` and locked.

    Yields the connection and the tenant. A change that would make a device's document invalid
    is rolled back and its refusal alone is audited (as ``audited_as``), then raised.
    """
    try:
        async with engine.begin() as conn:
            tenant_id = await layer_tenant(conn, scope=scope, layer=layer, target=target)
            await lock_tenant(conn, tenant_id)
            yield conn, tenant_id
    except InvalidConfiguration:
        await refused(
            engine,
            actor=actor,
            action=EDIT_ACTION[layer],
            target=audited_as,
            reason="invalid_configuration",
            now=now,
        )
        raise


async def write_setting(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    layer: Layer,
    target: str,
    key: str,
    value: Any,
    actor: Actor,
    action: str,
    now: int,
) -> tuple[int, list[str]]:
    """Upsert one setting with its audit entry and recompute; (audit id, changed devices)."""
    text = canonical_value(key, value)
    before = await _stored(conn, layer, target, key)
    current = await layer_snapshot(conn, layer, target)
    audit_id = await audited(
        conn,
        actor=actor,
        action=action,
        target=f"{layer.value}/{target}/{key}",
        tenant_id=tenant_id,
        now=now,
        before=None if before is None else {"value": document.redacted(key, before)},
        after={"value": document.redacted(key, value)},
    )
    edit = LayerEdit(kind="set", sets={key: text})
    edited = await apply_edit(
        conn,
        tenant_id=tenant_id,
        layer=layer,
        target=target,
        edit=edit,
        current=current,
        actor=actor,
        audit_id=audit_id,
        now=now,
    )
    return audit_id, edited.devices


def editable_key(key: str) -> None:
    """Refuse a key no layer may set by hand (not a section, or ``staff``)."""
    if not document.is_key(key):
        raise UnknownKey(key)
    if key == "staff":
        raise KeyManagedElsewhere(key)


async def set_setting(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    key: str,
    value: Any,
    now: int | None = None,
) -> Change:
    """Set ``key`` to ``value`` at a layer; refused (nothing stored) if any device breaks."""
    editable_key(key)
    at = now_ms() if now is None else now
    where = f"{layer.value}/{target}/{key}"
    change = layer_change(
        engine, scope=scope, actor=actor, layer=layer, target=target, audited_as=where, now=at
    )
    async with change as (conn, tenant_id):
        audit_id, changed = await write_setting(
            conn,
            tenant_id=tenant_id,
            layer=layer,
            target=target,
            key=key,
            value=value,
            actor=actor,
            action=EDIT_ACTION[layer],
            now=at,
        )
    return Change(layer=layer, target=target, key=key, audit_id=audit_id, devices=changed)


async def delete_setting(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    key: str,
    now: int | None = None,
) -> Change:
    """Delete ``key`` at a layer: it falls back to the next layer down."""
    editable_key(key)
    at = now_ms() if now is None else now
    where = f"{layer.value}/{target}/{key}"
    change = layer_change(
        engine, scope=scope, actor=actor, layer=layer, target=target, audited_as=where, now=at
    )
    async with change as (conn, tenant_id):
        before = await _stored(conn, layer, target, key)
        if before is None:
            raise SettingNotFound(layer.value, target, key)
        audit_id = await audited(
            conn,
            actor=actor,
            action=EDIT_ACTION[layer],
            target=where,
            tenant_id=tenant_id,
            now=at,
            before={"value": document.redacted(key, before)},
            after=None,
        )
        edited = await apply_edit(
            conn,
            tenant_id=tenant_id,
            layer=layer,
            target=target,
            edit=LayerEdit(kind="delete", deletes=frozenset({key})),
            current=await layer_snapshot(conn, layer, target),
            actor=actor,
            audit_id=audit_id,
            now=at,
        )
    return Change(layer=layer, target=target, key=key, audit_id=audit_id, devices=edited.devices)


def _setting(layer: Layer, target: str, key: str) -> tuple[Any, ...]:
    """The ``WHERE`` of one setting row."""
    return (
        config_settings.c.layer == layer.value,
        config_settings.c.target == target,
        config_settings.c.key == key,
    )


async def layer_settings(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, layer: Layer, target: str
) -> list[SettingView]:
    """The keys set at one layer, in key order."""
    async with engine.connect() as conn:
        await layer_tenant(conn, scope=scope, layer=layer, target=target)
        rows = await conn.execute(
            select(config_settings)
            .where(config_settings.c.layer == layer.value, config_settings.c.target == target)
            .order_by(config_settings.c.key)
        )
        return [
            SettingView(
                key=row.key,
                value=document.redacted(row.key, json.loads(row.value)),
                set_by=row.set_by,
                set_at=row.set_at,
                audit_id=row.audit_id,
            )
            for row in rows
        ]


# -- store groups and tags ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupView:
    """A store group: every store of its tenant with ``tag``; higher ``priority`` wins."""

    id: str
    tenant_id: str
    tag: str
    priority: int
    stores: list[str] = field(default_factory=list)


async def list_groups(engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT) -> list[GroupView]:
    """The store groups in scope with their member stores, by tenant, priority (high first), id."""
    async with engine.connect() as conn:
        members: dict[tuple[str, str], list[str]] = {}
        for row in await conn.execute(
            select(stores.c.tenant_id, store_tags.c.tag, store_tags.c.store_id)
            .join(stores, stores.c.id == store_tags.c.store_id)
            .where(scope.where(stores.c.tenant_id))
            .order_by(store_tags.c.store_id)
        ):
            members.setdefault((row.tenant_id, row.tag), []).append(row.store_id)
        rows = await conn.execute(
            select(config_groups)
            .where(scope.where(config_groups.c.tenant_id))
            .order_by(
                config_groups.c.tenant_id, config_groups.c.priority.desc(), config_groups.c.id
            )
        )
        return [
            GroupView(
                id=row.id,
                tenant_id=row.tenant_id,
                tag=row.tag,
                priority=row.priority,
                stores=members.get((row.tenant_id, row.tag), []),
            )
            for row in rows
        ]


async def put_group(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    group_id: str,
    tenant_id: str,
    tag: str,
    priority: int,
    now: int | None = None,
) -> GroupView:
    """Create a store group or change its tag and priority; documents follow at once."""
    scope.claim(tenant_id, action="tenant_config:write")
    at = now_ms() if now is None else now
    async with engine.begin() as conn:
        if await conn.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id)) is None:
            raise TenantNotFound(tenant_id)
        await lock_tenant(conn, tenant_id)
        held = (
            await conn.execute(select(config_groups).where(config_groups.c.id == group_id))
        ).first()
        if held is not None and held.tenant_id != tenant_id:
            raise AlreadyExists("store group", group_id)
        after = {"tenant_id": tenant_id, "tag": tag, "priority": priority}
        audit_id = await audited(
            conn,
            actor=actor,
            action="tenant_config:write",
            target=f"group/{group_id}",
            tenant_id=tenant_id,
            now=at,
            before=None
            if held is None
            else {"tenant_id": held.tenant_id, "tag": held.tag, "priority": held.priority},
            after=after,
        )
        if held is None:
            await conn.execute(insert(config_groups).values(id=group_id, created_at=at, **after))
        else:
            await conn.execute(
                update(config_groups).where(config_groups.c.id == group_id).values(**after)
            )
        cause = Cause(
            layer=Layer.GROUP,
            target=group_id,
            layer_version=None,
            audit_id=audit_id,
            actor=actor.actor,
        )
        await recompute_tenant(conn, tenant_id=tenant_id, now=at, change="", cause=cause)
    views = await list_groups(engine, scope=scope)
    return next(view for view in views if view.id == group_id)


async def set_store_tags(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    store_id: str,
    tags: list[str],
    now: int | None = None,
) -> list[str]:
    """Replace a store's tags (so the groups it is in); documents follow at once."""
    at = now_ms() if now is None else now
    wanted = sorted(set(tags))
    async with engine.begin() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=Layer.STORE, target=store_id)
        await lock_tenant(conn, tenant_id)
        before = sorted(
            row.tag
            for row in await conn.execute(
                select(store_tags.c.tag).where(store_tags.c.store_id == store_id)
            )
        )
        audit_id = await audited(
            conn,
            actor=actor,
            action="tenant_config:write",
            target=f"store/{store_id}/tags",
            tenant_id=tenant_id,
            now=at,
            before={"tags": before},
            after={"tags": wanted},
        )
        await conn.execute(delete(store_tags).where(store_tags.c.store_id == store_id))
        if wanted:
            await conn.execute(
                insert(store_tags), [{"store_id": store_id, "tag": tag} for tag in wanted]
            )
        cause = Cause(
            layer=Layer.STORE,
            target=store_id,
            layer_version=None,
            audit_id=audit_id,
            actor=actor.actor,
        )
        await recompute_tenant(conn, tenant_id=tenant_id, now=at, change="", cause=cause)
    return wanted


async def tags_by_store(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT
) -> dict[str, list[str]]:
    """Every store's tags in scope."""
    async with engine.connect() as conn:
        found: dict[str, list[str]] = {}
        for row in await conn.execute(
            select(store_tags.c.store_id, store_tags.c.tag)
            .join(stores, stores.c.id == store_tags.c.store_id)
            .where(scope.where(stores.c.tenant_id))
            .order_by(store_tags.c.store_id, store_tags.c.tag)
        ):
            found.setdefault(row.store_id, []).append(row.tag)
        return found


async def sweep(engine: AsyncEngine, *, now: int | None = None) -> list[str]:
    """Recompute every tenant (new devices, the start); the devices whose document changed."""
    at = now_ms() if now is None else now
    async with engine.connect() as conn:
        tenant_ids = [row.id for row in await conn.execute(select(tenants.c.id))]
    changed: list[str] = []
    for tenant_id in tenant_ids:
        async with engine.begin() as conn:
            await lock_tenant(conn, tenant_id)
            changed += (await recompute_tenant(conn, tenant_id=tenant_id, now=at)).changed
    return changed
