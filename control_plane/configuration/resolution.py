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

The resolving and checking is :func:`plan_tenant`, which writes nothing: a change's preview
runs it over the settings the change would leave (``control_plane.configuration.preview``), so
the two can never disagree. Each new version is also kept in ``config_device_versions`` with the
change that made it (:class:`Cause`).

Versions only go up: a new version is the stored one plus one, under a lock on the tenant's
row on PostgreSQL (SQLite serialises writers itself), so two instances never hand out one
version twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.configuration import document, drift
from control_plane.configuration.drift import desired_hashes
from control_plane.configuration.errors import GroupNotFound, InvalidConfiguration, UnknownKey
from control_plane.configuration.layers import (
    Layer,
    LayerIndex,
    Placement,
    Provenance,
    Setting,
)
from control_plane.configuration.tables import (
    config_device_versions,
    config_effective,
    config_groups,
    config_settings,
)
from control_plane.db.write_lock import hold_write_lock
from control_plane.devices.errors import DeviceNotFound, StoreNotFound, TenantNotFound
from control_plane.devices.tables import devices, store_tags, stores, tenants
from control_plane.tenancy import TenantScope
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
    """Serialise configuration changes of one tenant (PostgreSQL: the tenant row's lock; SQLite:
    the database's write lock)."""
    await hold_write_lock(conn)
    await conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update())


async def placements(conn: AsyncConnection, tenant_id: str) -> list[Placement]:
    """Where each live device of the tenant sits: store and the groups of its store."""
    rows = await conn.execute(
        select(devices.c.id, devices.c.store_id)
        .where(devices.c.tenant_id == tenant_id, devices.c.decommissioned_at.is_(None))
        .order_by(devices.c.id)  # one order on every back end: a refusal names the same device
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


async def layer_tenant(
    conn: AsyncConnection, *, scope: TenantScope, layer: Layer, target: str
) -> str:
    """The tenant a layer belongs to; not found when it is not in ``scope``."""
    match layer:
        case Layer.TENANT:
            query = select(tenants.c.id.label("tenant_id")).where(tenants.c.id == target)
            missing: Exception = TenantNotFound(target)
            column = tenants.c.id
        case Layer.GROUP:
            query = select(config_groups.c.tenant_id).where(config_groups.c.id == target)
            missing, column = GroupNotFound(target), config_groups.c.tenant_id
        case Layer.STORE:
            query = select(stores.c.tenant_id).where(stores.c.id == target)
            missing, column = StoreNotFound(target), stores.c.tenant_id
        case Layer.REGISTER:
            query = select(devices.c.tenant_id).where(
                devices.c.id == target, devices.c.decommissioned_at.is_(None)
            )
            missing, column = DeviceNotFound(target), devices.c.tenant_id
        case Layer.PLATFORM:
            raise UnknownKey("platform")  # never reached: routes name editable layers only
    row = (await conn.execute(query.where(scope.where(column)))).first()
    if row is None:
        raise missing
    return str(row.tenant_id)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Cause:
    """The change that made new versions (kept with each device's version): which layer, the
    layer's version (None: a group or a store's tags changed), the audit entry and who."""

    layer: Layer
    target: str
    layer_version: int | None
    audit_id: int | None
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    """One device's document resolved from the layers, next to the one stored.

    ``checked`` is None when the resolved document is invalid (``violation`` says why).
    """

    device_id: str
    stored_version: int | None  # None: no document stored yet
    stored_digest: str | None
    stored_provenance: str | None
    stored_document: str | None
    checked: document.Checked | None
    violation: document.Violation | None
    digest: str = ""
    provenance: str = ""

    @property
    def changed(self) -> bool:
        """Whether the device gets a new version."""
        return self.checked is not None and self.digest != self.stored_digest


@dataclass(frozen=True, slots=True)
class Plan:
    """What a change to the layers would do to a tenant's devices, computed, nothing written.

    ``refused``: devices the change would make invalid (the change must not be stored);
    ``incomplete``: devices without a complete document that are not this change's fault.
    """

    devices: list[Planned] = field(default_factory=list)
    refused: list[tuple[str, document.Violation]] = field(default_factory=list)
    incomplete: dict[str, document.Violation] = field(default_factory=dict)

    def refusal(self, change: frozenset[str]) -> InvalidConfiguration | None:
        """The refusal the change gets (the API's 422), None when no device breaks."""
        if not self.refused:
            return None
        device_id, violation = self.refused[0]
        named = sorted(change & violation.keys)
        return InvalidConfiguration(
            key=named[0] if named else violation.key,
            path=violation.path,
            why=violation.reason,
            devices=len(self.refused),
            example=device_id,
        )


def changed_keys(
    before: str | None, checked: document.Checked, memo: dict[str, dict[str, str]] | None = None
) -> list[str] | None:
    """The keys whose value differs from the stored document's (None: there was none).

    ``memo`` keeps the stored documents' hashes across calls (a store's registers share one).
    """
    if before is None:
        return None
    old = None if memo is None else memo.get(before)
    if old is None:
        old = desired_hashes(before)
        if memo is not None:
            memo[before] = old
    return sorted(key for key, digest in checked.hashes.items() if old.get(key) != digest)


def _change_keys(change: str | Collection[str] | None) -> frozenset[str] | None:
    if change is None:
        return None
    if isinstance(change, str):
        return frozenset({change}) if change else frozenset()
    return frozenset(change)


def _planned(
    device_id: str,
    before: Any,
    *,
    checked: document.Checked | None = None,
    violation: document.Violation | None = None,
    digest: str = "",
    provenance: str = "",
) -> Planned:
    return Planned(
        device_id=device_id,
        stored_version=None if before is None else int(before.version),
        stored_digest=None if before is None else str(before.digest),
        stored_provenance=None if before is None else str(before.provenance),
        stored_document=None if before is None else str(before.document),
        checked=checked,
        violation=violation,
        digest=digest,
        provenance=provenance,
    )


async def plan_tenant(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    change: str | Collection[str] | None = None,
    only: tuple[Layer, str] | None = None,
    settings: Sequence[Setting] | None = None,
) -> Plan:
    """Resolve and check the documents of the tenant's devices against what is stored.

    ``settings`` replaces the tenant's stored settings (a preview of a change not made yet);
    ``change`` and ``only`` are :func:`recompute_tenant`'s. Reads only: the one resolution both
    a change and its preview run.
    """
    keys = _change_keys(change)
    placed = await placements(conn, tenant_id)
    if only is not None:
        layer, target = only
        wanted = set(affected(placed, layer, target))
        placed = [p for p in placed if p.device_id in wanted]
    if settings is None:
        settings = await tenant_settings(conn, tenant_id)
    index = LayerIndex(settings)
    stored = {
        row.device_id: row
        for row in await conn.execute(
            select(
                config_effective.c.device_id,
                config_effective.c.version,
                config_effective.c.digest,
                config_effective.c.provenance,
                config_effective.c.document,
            ).where(config_effective.c.tenant_id == tenant_id)
        )
    }
    defaults = document.platform_defaults()
    checked: dict[str, document.Checked | document.Violation] = {}
    digests: dict[int, str] = {}
    plan = Plan()
    for placement in placed:
        effective = index.resolve(placement, defaults)
        memo = json.dumps(effective.document, sort_keys=True)
        outcome = checked.get(memo)
        if outcome is None:
            outcome = checked[memo] = document.check(effective.document)
        before = stored.get(placement.device_id)
        if isinstance(outcome, document.Violation):
            if keys is not None and (before is not None or keys & outcome.keys):
                plan.refused.append((placement.device_id, outcome))
            else:
                plan.incomplete[placement.device_id] = outcome
            plan.devices.append(_planned(placement.device_id, before, violation=outcome))
            continue
        digest = digests.get(id(outcome))
        if digest is None:
            digest = digests[id(outcome)] = _digest(outcome.document)
        plan.devices.append(
            _planned(
                placement.device_id,
                before,
                checked=outcome,
                digest=digest,
                provenance=_provenance_text(effective.provenance),
            )
        )
    return plan


async def recompute_tenant(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    now: int,
    change: str | Collection[str] | None = None,
    only: tuple[Layer, str] | None = None,
    cause: Cause | None = None,
) -> Recomputed:
    """Bring the tenant's stored effective documents up to its layers.

    ``change`` names what the caller changed: a key (or several), or ``""`` for a group or a
    store's tags (any key may move). Then :class:`InvalidConfiguration` is raised when a
    device's document would become invalid and the caller's transaction must roll back. None is
    a sweep (new devices, the start): it refuses nothing, a device it cannot resolve keeps its
    last document. ``only`` limits the work to those devices (the ones the change's layer
    touches; a device outside it that is still incomplete is none of this change's business).
    Each new version is kept in the device's history with ``cause``.
    """
    plan = await plan_tenant(conn, tenant_id=tenant_id, change=change, only=only)
    refusal = plan.refusal(_change_keys(change) or frozenset())
    if refusal is not None:
        raise refusal
    result = Recomputed(incomplete=plan.incomplete)
    history: list[dict[str, Any]] = []
    hashed: dict[str, dict[str, str]] = {}
    for planned in plan.devices:
        if planned.checked is None:
            continue
        values = {
            "document": canonical_bytes(planned.checked.document).decode(),
            "provenance": planned.provenance,
            "digest": planned.digest,
            "computed_at": now,
        }
        if planned.stored_version is None:
            await conn.execute(
                insert(config_effective).values(
                    device_id=planned.device_id, tenant_id=tenant_id, version=1, **values
                )
            )
        elif planned.changed:
            await conn.execute(
                update(config_effective)
                .where(config_effective.c.device_id == planned.device_id)
                .values(version=planned.stored_version + 1, **values)
            )
        elif planned.stored_provenance != planned.provenance:  # same document, set elsewhere
            await conn.execute(
                update(config_effective)
                .where(config_effective.c.device_id == planned.device_id)
                .values(provenance=planned.provenance)
            )
            continue
        else:
            continue
        result.changed.append(planned.device_id)
        history.append(
            _device_version(planned, tenant_id=tenant_id, now=now, cause=cause, memo=hashed)
        )
    if history:
        await conn.execute(insert(config_device_versions), history)
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


def _device_version(
    planned: Planned,
    *,
    tenant_id: str,
    now: int,
    cause: Cause | None,
    memo: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """The history row of a device's new version."""
    if planned.checked is None:
        raise RuntimeError(f"{planned.device_id}: no valid document to keep a version of")
    keys = changed_keys(planned.stored_document, planned.checked, memo)
    return {
        "device_id": planned.device_id,
        "version": (planned.stored_version or 0) + 1,
        "tenant_id": tenant_id,
        "digest": planned.digest,
        "keys": None if keys is None else json.dumps(keys),
        "layer": None if cause is None else cause.layer.value,
        "target": None if cause is None else cause.target,
        "layer_version": None if cause is None else cause.layer_version,
        "actor": None if cause is None else cause.actor[:254],
        "audit_id": None if cause is None else cause.audit_id,
        "at": now,
    }
