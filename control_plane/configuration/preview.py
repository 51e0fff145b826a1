"""Preview a change to a layer before it is made: which devices' documents change and how, and
which the change would break (the refusal the real change would answer). Nothing is written.

How it works: the proposal (keys to set, keys to delete, at one layer) is checked like the real
change — editable keys, canonical values, a deleted key must be set — then laid over the
tenant's stored settings in memory, and the tenant is planned by the same code a change runs
(:func:`control_plane.configuration.resolution.plan_tenant`): one resolution, one check, one
rule for which invalid document refuses the change. Each changed device is listed with its keys,
old and new value summarised (staff PIN hashes never shown). A rollback is previewed as the
proposal that restores the version (:func:`restoring`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.configuration import document
from control_plane.configuration.errors import NothingToRestore, SettingNotFound
from control_plane.configuration.history import layer_snapshot, stored_layer_version
from control_plane.configuration.layers import Layer, Setting
from control_plane.configuration.resolution import (
    Plan,
    changed_keys,
    layer_tenant,
    plan_tenant,
    tenant_settings,
)
from control_plane.configuration.service import canonical_value, editable_key, now_ms
from control_plane.configuration.tables import config_groups
from control_plane.operators.audit import Actor
from control_plane.tenancy import EVERY_TENANT, TenantScope

SUMMARY_CHARS = 80  # a value longer than this is shown cut, ending in "…"
NOT_SET = "(not set)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A change to one layer: keys to set with their values, keys to delete."""

    values: Mapping[str, Any] = field(default_factory=dict)
    delete: frozenset[str] = frozenset()

    @property
    def keys(self) -> frozenset[str]:
        """Every key the change touches."""
        return frozenset(self.values) | self.delete

    def __bool__(self) -> bool:
        return bool(self.values or self.delete)


def restoring(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Proposal:
    """The proposal that makes a layer set ``wanted`` again; ``staff`` is left as it is (the
    staff table is its truth: restoring it would bring back removed cashiers and old PINs)."""
    values = {
        key: value
        for key, value in wanted.items()
        if key != "staff" and (key not in current or current[key] != value)
    }
    gone = frozenset(key for key in current if key != "staff" and key not in wanted)
    return Proposal(values=values, delete=gone)


def summary(key: str, value: Any) -> str:
    """A value as one short line of JSON (staff PIN hashes redacted)."""
    text = json.dumps(document.redacted(key, value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyDiff:
    """One key of a device's document that would change: old → new, summarised."""

    key: str
    before: str
    after: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceDiff:
    """A device whose effective document would change; ``version`` None: its first one."""

    device_id: str
    version: int | None
    next_version: int
    keys: list[KeyDiff] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Broken:
    """A device whose document the change would make invalid: the key, JSON path and why."""

    device_id: str
    key: str
    path: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Preview:
    """What the change would do; ``refusal`` is the 422 detail the real change would answer."""

    layer: str
    target: str
    keys: list[str]
    changed: list[DeviceDiff] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    invalid: list[Broken] = field(default_factory=list)
    refusal: str | None = None


def _diff(plan: Plan) -> tuple[list[DeviceDiff], list[str]]:
    documents: dict[str, dict[str, Any]] = {}
    hashed: dict[str, dict[str, str]] = {}
    changed, unchanged = [], []
    for planned in plan.devices:
        if planned.checked is None:
            continue
        if not planned.changed:
            unchanged.append(planned.device_id)
            continue
        new = planned.checked.document
        before_text = planned.stored_document
        keys = changed_keys(before_text, planned.checked, hashed) or sorted(new)
        old: dict[str, Any] = {}
        if before_text is not None:
            old = documents.get(before_text) or documents.setdefault(
                before_text, json.loads(before_text)
            )
        changed.append(
            DeviceDiff(
                device_id=planned.device_id,
                version=planned.stored_version,
                next_version=(planned.stored_version or 0) + 1,
                keys=[
                    KeyDiff(
                        key=key,
                        before=summary(key, old[key]) if key in old else NOT_SET,
                        after=summary(key, new[key]),
                    )
                    for key in keys
                ],
            )
        )
    return changed, unchanged


def preview_of(layer: Layer, target: str, proposal: Proposal, plan: Plan) -> Preview:
    """The preview of ``proposal`` from the tenant's plan."""
    changed, unchanged = _diff(plan)
    refusal = plan.refusal(proposal.keys)
    return Preview(
        layer=layer.value,
        target=target,
        keys=sorted(proposal.keys),
        changed=sorted(changed, key=lambda d: d.device_id),
        unchanged=sorted(unchanged),
        invalid=[
            Broken(device_id=device_id, key=v.key, path=v.path, reason=v.reason)
            for device_id, v in sorted(plan.refused, key=lambda r: r[0])
        ],
        refusal=None if refusal is None else str(refusal),
    )


async def _group_priority(conn: AsyncConnection, layer: Layer, target: str) -> int:
    if layer is not Layer.GROUP:
        return 0
    found = await conn.scalar(select(config_groups.c.priority).where(config_groups.c.id == target))
    return int(found or 0)


async def plan_proposal(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    layer: Layer,
    target: str,
    proposal: Proposal,
    actor: Actor,
    now: int,
) -> Plan:
    """Plan the tenant as if ``proposal`` were stored (its values already canonical)."""
    settings = [
        s
        for s in await tenant_settings(conn, tenant_id)
        if not (s.layer is layer and s.target == target and s.key in proposal.keys)
    ]
    priority = await _group_priority(conn, layer, target)
    settings += [
        Setting(
            layer=layer,
            target=target,
            key=key,
            value=value,
            set_by=actor.actor,
            set_at=now,
            priority=priority,
        )
        for key, value in proposal.values.items()
    ]
    return await plan_tenant(
        conn,
        tenant_id=tenant_id,
        change=proposal.keys,
        only=(layer, target),
        settings=settings,
    )


async def preview_change(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    values: Mapping[str, Any],
    delete: Collection[str] = (),
    now: int | None = None,
) -> Preview:
    """Preview setting ``values`` and deleting ``delete`` at a layer; refused like the change
    itself for an unknown or staff key, a non-canonical value or a deleted key not set."""
    for key in [*values, *delete]:
        editable_key(key)
    canonical = {key: json.loads(canonical_value(key, value)) for key, value in values.items()}
    proposal = Proposal(values=canonical, delete=frozenset(delete) - set(canonical))
    at = now_ms() if now is None else now
    async with engine.connect() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=layer, target=target)
        current = await layer_snapshot(conn, layer, target)
        for key in sorted(proposal.delete):
            if key not in current:
                raise SettingNotFound(layer.value, target, key)
        plan = await plan_proposal(
            conn,
            tenant_id=tenant_id,
            layer=layer,
            target=target,
            proposal=proposal,
            actor=actor,
            now=at,
        )
    return preview_of(layer, target, proposal, plan)


async def preview_rollback(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    version: int,
    now: int | None = None,
) -> Preview:
    """Preview restoring the layer to ``version``: what :func:`rollback.rollback_layer` does."""
    at = now_ms() if now is None else now
    async with engine.connect() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=layer, target=target)
        wanted = await stored_layer_version(conn, layer=layer, target=target, version=version)
        proposal = restoring(await layer_snapshot(conn, layer, target), wanted)
        if not proposal:
            raise NothingToRestore(layer.value, target, version)
        plan = await plan_proposal(
            conn,
            tenant_id=tenant_id,
            layer=layer,
            target=target,
            proposal=proposal,
            actor=actor,
            now=at,
        )
    return preview_of(layer, target, proposal, plan)
