"""Recompute the effective documents of a tenant's devices, inside the caller's transaction.

How it works: every change to a layer (a key set or deleted, a group or a store's tags, the
staff) runs in one transaction that ends with :func:`recompute_tenant`. It reads the tenant's
devices, groups, store tags and settings once, resolves each device's document
(:mod:`control_plane.configuration.layers`), checks it against the schema and the size budget
(:mod:`control_plane.configuration.document`) and writes a new version only where the
normalised document changed. A device whose document the change would make invalid refuses the
whole change (:class:`InvalidConfiguration`): the caller's transaction rolls back and nothing is
stored. A device that never had a complete document (its store has no address yet) and whose
problem is not the key being changed stays *incomplete*: nothing is published to it, and the
change goes on for the others.

Versions only go up: a new version is the stored one plus one, under a lock on the tenant's
row on PostgreSQL (SQLite serialises writers itself), so two instances never hand out one
version twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.configuration import document, drift
from control_plane.configuration.errors import InvalidConfiguration
from control_plane.configuration.layers import (
    Layer,
    LayerIndex,
    Placement,
    Provenance,
    Setting,
)
from control_plane.configuration.tables import (
    config_effective,
    config_groups,
    config_settings,
)
from control_plane.db.tables import devices, store_tags, stores, tenants
from protocols.canonical import canonical_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recomputed:
    """What a recompute changed: devices with a new version, devices still incomplete."""

    changed: list[str] = field(default_factory=list)
    incomplete: dict[str, document.Violation] = field(default_factory=dict)


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def _provenance_text(provenance: dict[str, Provenance]) -> str:
    return json.dumps({k: p.as_json() for k, p in sorted(provenance.items())}, sort_keys=True)


async def lock_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    """Serialise configuration changes of one tenant (PostgreSQL row lock; SQLite: a no-op)."""
    await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())


async def placements(conn: AsyncConnection, tenant_id: str) -> list[Placement]:
    """Where each live device of the tenant sits: store and the groups of its store."""
    rows = await conn.execute(
        select(devices.c.id, devices.c.store_id).where(
            devices.c.tenant_id == tenant_id, devices.c.decommissioned_at.is_(None)
        )
    )
    groups_by_tag: dict[str, set[str]] = {}
    for group in await conn.execute(
        select(config_groups.c.id, config_groups.c.tag).where(
            config_groups.c.tenant_id == tenant_id
        )
    ):
        groups_by_tag.setdefault(group.tag, set()).add(group.id)
    groups_of_store: dict[str, set[str]] = {}
    for tag in await conn.execute(
        select(store_tags.c.store_id, store_tags.c.tag)
        .join(stores, stores.c.id == store_tags.c.store_id)
        .where(stores.c.tenant_id == tenant_id)
    ):
        groups_of_store.setdefault(tag.store_id, set()).update(groups_by_tag.get(tag.tag, ()))
    return [
        Placement(
            device_id=row.id,
            tenant_id=tenant_id,
            store_id=row.store_id,
            groups=frozenset(groups_of_store.get(row.store_id, ())),
        )
        for row in rows
    ]


def affected(placed: list[Placement], layer: Layer, target: str) -> list[str]:
    """The devices a change at ``layer``/``target`` can touch."""
    probe = Setting(layer=layer, target=target, key="", value=None, set_by="", set_at=0)
    return [p.device_id for p in placed if p.applies(probe)]


async def tenant_settings(conn: AsyncConnection, tenant_id: str) -> list[Setting]:
    """Every setting of the tenant's layers, groups with their priority."""
    priorities = {
        row.id: row.priority
        for row in await conn.execute(
            select(config_groups.c.id, config_groups.c.priority).where(
                config_groups.c.tenant_id == tenant_id
            )
        )
    }
    rows = await conn.execute(
        select(config_settings).where(config_settings.c.tenant_id == tenant_id)
    )
    return [
        Setting(
            layer=Layer(row.layer),
            target=row.target,
            key=row.key,
            value=json.loads(row.value),
            set_by=row.set_by,
            set_at=row.set_at,
            audit_id=row.audit_id,
            priority=priorities.get(row.target, 0) if row.layer == Layer.GROUP else 0,
        )
        for row in rows
    ]


async def recompute_tenant(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    now: int,
    change: str | None = None,
    only: tuple[Layer, str] | None = None,
) -> Recomputed:
    """Bring the tenant's stored effective documents up to its layers.

    ``change`` names what the caller changed: a key, or ``""`` for a group or a store's tags
    (any key may move). Then :class:`InvalidConfiguration` is raised when a device's document
    would become invalid and the caller's transaction must roll back. None is a sweep (new
    devices, the start): it refuses nothing, a device it cannot resolve keeps its last
    document. ``only`` limits the work to those devices (the ones the change's layer touches;
    a device outside it that is still incomplete is none of this change's business).
    """
    placed = await placements(conn, tenant_id)
    if only is not None:
        layer, target = only
        wanted = set(affected(placed, layer, target))
        placed = [p for p in placed if p.device_id in wanted]
    index = LayerIndex(await tenant_settings(conn, tenant_id))
    stored = {
        row.device_id: row
        for row in await conn.execute(
            select(
                config_effective.c.device_id,
                config_effective.c.version,
                config_effective.c.digest,
                config_effective.c.provenance,
            ).where(config_effective.c.tenant_id == tenant_id)
        )
    }
    defaults = document.platform_defaults()
    checked: dict[str, document.Checked | document.Violation] = {}
    result = Recomputed()
    refused: list[tuple[str, document.Violation]] = []
    for placement in placed:
        effective = index.resolve(placement, defaults)
        memo = json.dumps(effective.document, sort_keys=True)
        outcome = checked.get(memo)
        if outcome is None:
            outcome = checked[memo] = document.check(effective.document)
        before = stored.get(placement.device_id)
        if isinstance(outcome, document.Violation):
            if change is not None and (before is not None or change in outcome.keys):
                refused.append((placement.device_id, outcome))
            else:
                result.incomplete[placement.device_id] = outcome
            continue
        digest = _digest(outcome.document)
        provenance = _provenance_text(effective.provenance)
        values = {
            "document": canonical_bytes(outcome.document).decode(),
            "provenance": provenance,
            "digest": digest,
            "computed_at": now,
        }
        if before is None:
            await conn.execute(
                insert(config_effective).values(
                    device_id=placement.device_id, tenant_id=tenant_id, version=1, **values
                )
            )
            result.changed.append(placement.device_id)
        elif before.digest != digest:
            await conn.execute(
                update(config_effective)
                .where(config_effective.c.device_id == placement.device_id)
                .values(version=before.version + 1, **values)
            )
            result.changed.append(placement.device_id)
        elif before.provenance != provenance:  # same document, set again elsewhere: no version
            await conn.execute(
                update(config_effective)
                .where(config_effective.c.device_id == placement.device_id)
                .values(provenance=provenance)
            )
    if refused:
        device_id, violation = refused[0]
        key = change if change and change in violation.keys else violation.key
        raise InvalidConfiguration(
            key=key,
            path=violation.path,
            why=violation.reason,
            devices=len(refused),
            example=device_id,
        )
    if result.changed:
        await drift.refresh(conn, result.changed, now=now)
    if result.incomplete:
        sample = next(iter(result.incomplete.items()))
        log.log(
            logging.INFO if change is not None else logging.DEBUG,  # a sweep: every 30 s
            "configuration: %d device(s) of tenant %s have no complete document yet (e.g. %s: "
            "%s: %s); set the missing keys on the tenant or store layer",
            len(result.incomplete),
            tenant_id,
            sample[0],
            sample[1].path,
            sample[1].reason,
        )
    return result
