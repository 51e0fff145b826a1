"""History of configuration: every change to a layer as a version of it, every version of a
device's effective document; read back for the API and the console.

How it works: each change to a layer (a key set or deleted, the staff rebuilt, a rollback) calls
:func:`record_layer_version` in the change's transaction, before the tenant is recomputed: the
layer's next version (its last plus one, under the tenant's lock like every change), who, when,
the audit entry, the keys it touched with their values before, and the whole layer after — what
a rollback restores. The recompute keeps each device's new version with the change that made it
(:func:`control_plane.configuration.resolution.recompute_tenant`). Nothing here is ever updated
or deleted: a rollback is a new version. Staff values are kept redacted, so no PIN hash is
stored twice (and a rollback never touches staff: the staff table is their truth).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.configuration import document
from control_plane.configuration.errors import LayerVersionNotFound
from control_plane.configuration.layers import Layer
from control_plane.configuration.resolution import layer_tenant
from control_plane.configuration.tables import (
    config_device_versions,
    config_layer_versions,
    config_settings,
)
from control_plane.devices import service as registry
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.limits import INT64_MAX

Kind = Literal["set", "delete", "rollback"]
MAX_LISTED = 200  # versions per answer, newest first (the API's largest page)


async def layer_snapshot(conn: AsyncConnection, layer: Layer, target: str) -> dict[str, Any]:
    """Every key the layer sets with its value (staff redacted), as this transaction sees it."""
    rows = await conn.execute(
        select(config_settings.c.key, config_settings.c.value).where(
            config_settings.c.layer == layer.value, config_settings.c.target == target
        )
    )
    return {row.key: document.redacted(row.key, json.loads(row.value)) for row in rows}


async def record_layer_version(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    layer: Layer,
    target: str,
    kind: Kind,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    actor: str,
    audit_id: int | None,
    now: int,
    restored: int | None = None,
) -> int:
    """Keep the layer's new version (``before``/``after``: the whole layer); its number."""
    last = await conn.scalar(
        select(func.max(config_layer_versions.c.version)).where(
            config_layer_versions.c.layer == layer.value,
            config_layer_versions.c.target == target,
        )
    )
    version = int(last or 0) + 1
    touched = sorted(
        key for key in set(before) | set(after) if before.get(key, _UNSET) != after.get(key, _UNSET)
    )
    await conn.execute(
        insert(config_layer_versions).values(
            layer=layer.value,
            target=target,
            version=version,
            tenant_id=tenant_id,
            kind=kind,
            keys=json.dumps(touched),
            before=_text({k: before[k] for k in touched if k in before}),
            settings=_text(after),
            restored=restored,
            actor=actor[:254],
            at=now,
            audit_id=audit_id,
        )
    )
    return version


_UNSET = object()


def _text(values: Mapping[str, Any]) -> str:
    return json.dumps(
        {key: document.redacted(key, value) for key, value in values.items()}, sort_keys=True
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyChange:
    """One key a layer version touched: its value before and after (None with ``set`` False:
    not set on that side)."""

    key: str
    before: Any
    after: Any
    was_set: bool
    is_set: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerVersion:
    """One version of a layer: who, when, the audit entry, the keys it changed, the whole layer."""

    layer: str
    target: str
    version: int
    kind: str
    restored: int | None
    actor: str
    at: int
    audit_id: int | None
    changes: list[KeyChange] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _version(row: Any) -> LayerVersion:
    before, after = json.loads(row.before), json.loads(row.settings)
    return LayerVersion(
        layer=row.layer,
        target=row.target,
        version=row.version,
        kind=row.kind,
        restored=row.restored,
        actor=row.actor,
        at=row.at,
        audit_id=row.audit_id,
        changes=[
            KeyChange(
                key=key,
                before=before.get(key),
                after=after.get(key),
                was_set=key in before,
                is_set=key in after,
            )
            for key in json.loads(row.keys)
        ],
        settings=after,
    )


async def layer_history(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    layer: Layer,
    target: str,
    limit: int = MAX_LISTED,
    before: int | None = None,
) -> list[LayerVersion]:
    """The layer's versions, newest first, at most ``limit`` of them and only those older than
    ``before`` when given (the cursor of the API's next page: the last version it listed);
    another tenant's layer is not found."""
    async with engine.connect() as conn:
        await layer_tenant(conn, scope=scope, layer=layer, target=target)
        query = select(config_layer_versions).where(
            config_layer_versions.c.layer == layer.value,
            config_layer_versions.c.target == target,
        )
        if before is not None and before <= INT64_MAX:  # past it: older than that is all
            query = query.where(config_layer_versions.c.version < before)
        rows = await conn.execute(
            query.order_by(config_layer_versions.c.version.desc()).limit(limit)
        )
        return [_version(row) for row in rows]


async def stored_layer_version(
    conn: AsyncConnection, *, layer: Layer, target: str, version: int
) -> dict[str, Any]:
    """The whole layer as it was at ``version`` (staff redacted); not found when there is none."""
    text = await conn.scalar(
        select(config_layer_versions.c.settings).where(
            config_layer_versions.c.layer == layer.value,
            config_layer_versions.c.target == target,
            config_layer_versions.c.version == version,
        )
    )
    if text is None:
        raise LayerVersionNotFound(layer.value, target, version)
    found: dict[str, Any] = json.loads(text)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceVersion:
    """One version of a device's effective document and the change that made it."""

    version: int
    digest: str
    keys: list[str] | None  # None: the device's first document
    layer: str | None  # None: a sweep (a new device, a change made before history was kept)
    target: str | None
    layer_version: int | None
    actor: str | None
    audit_id: int | None
    at: int


async def device_versions(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    limit: int = MAX_LISTED,
    before: int | None = None,
) -> list[DeviceVersion]:
    """The device's effective-document versions, newest first, at most ``limit`` and only those
    older than ``before`` when given (as :func:`layer_history`); not found outside ``scope``."""
    await registry.get_device(engine, scope=scope, device_id=device_id)
    async with engine.connect() as conn:
        query = select(config_device_versions).where(
            config_device_versions.c.device_id == device_id
        )
        if before is not None and before <= INT64_MAX:  # past it: older than that is all
            query = query.where(config_device_versions.c.version < before)
        rows = await conn.execute(
            query.order_by(config_device_versions.c.version.desc()).limit(limit)
        )
        return [
            DeviceVersion(
                version=row.version,
                digest=row.digest,
                keys=None if row.keys is None else list(json.loads(row.keys)),
                layer=row.layer,
                target=row.target,
                layer_version=row.layer_version,
                actor=row.actor,
                audit_id=row.audit_id,
                at=row.at,
            )
            for row in rows
        ]
