"""Create, steer and read rollouts; every operator action is audited in its own transaction.

How it works: :func:`create_rollout` resolves the target to the tenant's devices (not
decommissioned) once, orders them (by store, then id) and assigns each its wave
(:func:`control_plane.rollouts.model.assign_waves`); all rows start ``pending`` and the rollout
``draft``. :func:`act` moves the rollout's status — start, pause, resume, abort, retry — with a
conditional update, so two operators clicking at once cannot both win, and records the action in
the operators' audit log in the same transaction. The driver
(:mod:`control_plane.rollouts.driver`) does the rest: notifying, deadlines, gates, rollback.

Where a device's maintenance window comes from, first that applies (:mod:`.windows`):

1. ``store_windows``: an explicit override an operator set for the store (``PUT
   /api/stores/{id}/maintenance-window``), a daily ``HH:MM-HH:MM`` in the store's time zone
   (its opening hours', else ``stores.timezone``), for a store whose quiet time is not just
   "closed";
2. the store's opening hours (the ``hours`` key of the device's effective configuration,
   issue 12): any time outside them, in their own IANA time zone, DST included;
3. the rollout's ``maintenance_window``, for devices with neither (no complete configuration);
4. any time.

A forced rollout ignores windows. Store tags live in ``store_tags`` (``db.tables``), set
through the store configuration (one table for both).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import RowMapping, and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.devices.errors import StoreNotFound
from control_plane.devices.tables import devices, store_tags, stores
from control_plane.operators import audit
from control_plane.releases.errors import ReleaseNotFound
from control_plane.releases.tables import releases
from control_plane.rollouts import model
from control_plane.rollouts.errors import NoDevicesTargeted, RolloutNotFound, RolloutStateRefused
from control_plane.rollouts.tables import (
    rollout_device_history,
    rollout_devices,
    rollouts,
    store_windows,
)
from control_plane.tenancy import EVERY_TENANT, TenantScope

Verb = Literal["start", "pause", "resume", "abort", "retry"]

#: Which statuses each action applies to, and the status it leaves.
TRANSITIONS: dict[Verb, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused", "halted"}), "running"),
    "abort": (frozenset({"draft", "running", "paused", "halted"}), "aborted"),
    "retry": (frozenset({"running", "paused", "halted", "completed"}), "running"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceView:
    """One device of a rollout."""

    device_id: str
    store_id: str
    wave: int
    state: str
    detail: str
    previous_release: str
    state_at: int
    deadline_at: int | None
    notified_at: int | None
    rolled_back_at: int | None
    attempts: int


@dataclass(frozen=True, kw_only=True, slots=True)
class WaveView:
    """One wave with its spec and its devices by state."""

    number: int
    spec: dict[str, Any]
    size: int
    counts: dict[str, int]


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutView:
    """A rollout as the API and console show it."""

    id: str
    tenant_id: str
    release: str
    name: str
    status: str
    reason: str
    current_wave: int
    target: dict[str, Any]
    rate_per_minute: int
    deadlines: dict[str, int]
    on_silence: str
    maintenance_window: str | None
    force: bool
    created_by: str
    created_at: int
    updated_at: int
    counts: dict[str, int]
    waves: list[WaveView] = field(default_factory=list)
    devices: list[DeviceView] = field(default_factory=list)


async def _targeted(
    conn: AsyncConnection, tenant_id: str, target: model.TargetIn
) -> list[RowMapping]:
    query = (
        select(devices.c.id, devices.c.store_id)
        .where(devices.c.tenant_id == tenant_id, devices.c.decommissioned_at.is_(None))
        .order_by(devices.c.store_id, devices.c.id)
    )
    if target.kind == "stores":
        query = query.where(devices.c.store_id.in_(target.values))
    elif target.kind == "devices":
        query = query.where(devices.c.id.in_(target.values))
    elif target.kind == "tags":
        tagged = select(store_tags.c.store_id).where(store_tags.c.tag.in_(target.values))
        query = query.where(devices.c.store_id.in_(tagged))
    return list((await conn.execute(query)).mappings().all())


async def create_rollout(
    engine: AsyncEngine,
    *,
    scope: TenantScope,
    spec: model.RolloutIn,
    actor: audit.Actor,
    client: str,
    now_ms: int,
) -> RolloutView:
    """Record a rollout (status ``draft``) with every targeted device in its wave."""
    requested = spec.tenant_id or scope.tenant_id
    if requested is None:
        raise NoDevicesTargeted("a platform admin names the rollout's tenant (tenant_id)")
    tenant_id = scope.claim(requested, action="rollouts:write")  # another tenant's: 403
    rollout_id = uuid.uuid4().hex
    async with engine.begin() as conn:
        release = (
            await conn.execute(select(releases.c.version).where(releases.c.version == spec.release))
        ).first()
        if release is None:
            raise ReleaseNotFound(spec.release)
        targeted = await _targeted(conn, tenant_id, spec.target)
        if not targeted:
            raise NoDevicesTargeted(
                f"the target {spec.target.kind} matches no device of {tenant_id!r}"
            )
        waves = model.assign_waves([row["id"] for row in targeted], spec.waves)
        row = {
            "id": rollout_id,
            "tenant_id": tenant_id,
            "release_version": spec.release,
            "name": spec.name,
            "target": json.dumps(spec.target.model_dump(mode="json"), sort_keys=True),
            "waves": json.dumps([w.model_dump(mode="json") for w in spec.waves]),
            "deadlines": json.dumps(spec.deadlines, sort_keys=True),
            "rate_per_minute": spec.rate_per_minute,
            "on_silence": spec.on_silence,
            "force": spec.force,
            "maintenance_window": spec.maintenance_window,
            "status": "draft",
            "current_wave": 0,
            "created_by": actor.actor,
            "created_at": now_ms,
            "updated_at": now_ms,
        }
        await conn.execute(insert(rollouts).values(row))
        await conn.execute(
            insert(rollout_devices),
            [
                {
                    "rollout_id": rollout_id,
                    "device_id": device["id"],
                    "store_id": device["store_id"],
                    "wave": wave,
                    "state": model.PENDING,
                    "state_at": now_ms,
                }
                for device, wave in zip(targeted, waves, strict=True)
            ],
        )
        await audit.record(
            conn,
            at=now_ms,
            actor=actor,
            action="rollouts:create",
            outcome="ok",
            target=rollout_id,
            client=client,
            tenant_id=tenant_id,
            after={k: v for k, v in row.items() if k not in {"waves", "deadlines"}}
            | {"devices": len(targeted), "force": spec.force},
        )
    return await get_rollout(engine, scope=scope, rollout_id=rollout_id)


async def act(
    engine: AsyncEngine,
    *,
    scope: TenantScope,
    rollout_id: str,
    verb: Verb,
    actor: audit.Actor,
    client: str,
    now_ms: int,
) -> RolloutView:
    """Start, pause, resume, abort or retry the failed devices of a rollout; audited."""
    allowed, leaves = TRANSITIONS[verb]
    async with engine.begin() as conn:
        row = await _row(conn, scope, rollout_id)
        if row["status"] not in allowed:
            raise RolloutStateRefused(
                f"cannot {verb} a rollout that is {row['status']} "
                f"(only when {' or '.join(sorted(allowed))})"
            )
        changed = await conn.execute(
            update(rollouts)
            .where(rollouts.c.id == rollout_id, rollouts.c.status == row["status"])
            .values(
                status=leaves,
                updated_at=now_ms,
                reason=f"{verb} by {actor.actor}" if verb in {"pause", "abort"} else "",
            )
        )
        if changed.rowcount != 1:
            raise RolloutStateRefused(f"rollout {rollout_id} changed meanwhile; reload it")
        retried = 0
        if verb == "retry":
            retried = await _reset(conn, rollout_id, now_ms, model.FAILURES, "retried")
        if verb in {"resume", "retry"} and row["status"] == "halted":
            # devices rolled back at the halt run the old release again: they are asked again
            retried += await _reset(conn, rollout_id, now_ms, None, "asked again after the halt")
        await audit.record(
            conn,
            at=now_ms,
            actor=actor,
            action=f"rollouts:{verb}",
            outcome="ok",
            target=rollout_id,
            client=client,
            tenant_id=row["tenant_id"],
            before={"status": row["status"]},
            after={"status": leaves, "devices_reset": retried},
        )
    return await get_rollout(engine, scope=scope, rollout_id=rollout_id)


async def _reset(
    conn: AsyncConnection,
    rollout_id: str,
    now_ms: int,
    states: frozenset[str] | None,
    why: str,
) -> int:
    """Put devices back to pending: those in ``states``, or (None) those rolled back."""
    condition = (
        rollout_devices.c.state.in_(states)
        if states is not None
        else rollout_devices.c.rolled_back_at.is_not(None)
    )
    where = and_(rollout_devices.c.rollout_id == rollout_id, condition)
    ids = [r[0] for r in (await conn.execute(select(rollout_devices.c.device_id).where(where)))]
    if not ids:
        return 0
    await conn.execute(
        update(rollout_devices)
        .where(where)
        .values(
            state=model.PENDING,
            detail=why,
            state_at=now_ms,
            deadline_at=None,
            notified_at=None,
            published_at=None,
            reported_succeeded=False,
            rolled_back_at=None,
            attempts=rollout_devices.c.attempts + 1,
        )
    )
    await conn.execute(
        insert(rollout_device_history),
        [
            {
                "rollout_id": rollout_id,
                "device_id": d,
                "state": model.PENDING,
                "detail": why,
                "at": now_ms,
            }
            for d in ids
        ],
    )
    return len(ids)


async def _row(conn: AsyncConnection, scope: TenantScope, rollout_id: str) -> RowMapping:
    row = (
        (
            await conn.execute(
                select(rollouts).where(
                    rollouts.c.id == rollout_id, scope.where(rollouts.c.tenant_id)
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise RolloutNotFound(rollout_id)
    return row


def _summary(row: RowMapping, counts: Mapping[str, int]) -> RolloutView:
    return RolloutView(
        id=row["id"],
        tenant_id=row["tenant_id"],
        release=row["release_version"],
        name=row["name"],
        status=row["status"],
        reason=row["reason"],
        current_wave=row["current_wave"],
        target=json.loads(row["target"]),
        rate_per_minute=row["rate_per_minute"],
        deadlines=model.DEFAULT_DEADLINES | json.loads(row["deadlines"]),
        on_silence=row["on_silence"],
        maintenance_window=row["maintenance_window"],
        force=bool(row["force"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        counts={state: counts.get(state, 0) for state in model.STATES},
    )


async def get_rollout(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, rollout_id: str
) -> RolloutView:
    """One rollout with its waves and devices (another tenant's: :class:`RolloutNotFound`)."""
    async with engine.connect() as conn:
        row = await _row(conn, scope, rollout_id)
        device_rows = (
            (
                await conn.execute(
                    select(rollout_devices)
                    .where(rollout_devices.c.rollout_id == rollout_id)
                    .order_by(rollout_devices.c.wave, rollout_devices.c.device_id)
                )
            )
            .mappings()
            .all()
        )
    counts: dict[str, int] = {}
    per_wave: dict[int, dict[str, int]] = {}
    for device in device_rows:
        counts[device["state"]] = counts.get(device["state"], 0) + 1
        wave = per_wave.setdefault(device["wave"], {})
        wave[device["state"]] = wave.get(device["state"], 0) + 1
    view = _summary(row, counts)
    specs = json.loads(row["waves"])
    view.waves.extend(
        WaveView(
            number=number,
            spec=spec,
            size=sum(per_wave.get(number, {}).values()),
            counts=per_wave.get(number, {}),
        )
        for number, spec in enumerate(specs)
    )
    view.devices.extend(
        DeviceView(
            device_id=d["device_id"],
            store_id=d["store_id"],
            wave=d["wave"],
            state=d["state"],
            detail=d["detail"],
            previous_release=d["previous_release"],
            state_at=d["state_at"],
            deadline_at=d["deadline_at"],
            notified_at=d["notified_at"],
            rolled_back_at=d["rolled_back_at"],
            attempts=d["attempts"],
        )
        for d in device_rows
    )
    return view


async def list_rollouts(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, limit: int = 100
) -> list[RolloutView]:
    """The scope's rollouts, newest first, with their devices counted by state."""
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(rollouts)
                    .where(scope.where(rollouts.c.tenant_id))
                    .order_by(rollouts.c.created_at.desc(), rollouts.c.id)
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
        ids = [row["id"] for row in rows]
        counted = await conn.execute(
            select(rollout_devices.c.rollout_id, rollout_devices.c.state, func.count())
            .where(rollout_devices.c.rollout_id.in_(ids))
            .group_by(rollout_devices.c.rollout_id, rollout_devices.c.state)
        )
        counts: dict[str, dict[str, int]] = {}
        for rollout_id, state, number in counted:
            counts.setdefault(rollout_id, {})[state] = int(number)
    return [_summary(row, counts.get(row["id"], {})) for row in rows]


async def set_maintenance_window(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str,
    maintenance_window: str | None,
    actor: audit.Actor,
    client: str,
    now_ms: int,
) -> None:
    """Set (or, None: clear) a store's daily maintenance window; audited."""
    async with engine.begin() as conn:
        found = (
            await conn.execute(
                select(stores.c.tenant_id).where(
                    stores.c.id == store_id, scope.where(stores.c.tenant_id)
                )
            )
        ).first()
        if found is None:
            raise StoreNotFound(store_id)
        before = (
            await conn.execute(
                select(store_windows.c.maintenance_window).where(
                    store_windows.c.store_id == store_id
                )
            )
        ).scalar()
        await conn.execute(delete(store_windows).where(store_windows.c.store_id == store_id))
        if maintenance_window is not None:
            await conn.execute(
                insert(store_windows).values(
                    store_id=store_id, maintenance_window=maintenance_window
                )
            )
        await audit.record(
            conn,
            at=now_ms,
            actor=actor,
            action="stores:maintenance_window",
            outcome="ok",
            target=store_id,
            client=client,
            tenant_id=found.tenant_id,
            before={"maintenance_window": before},
            after={"maintenance_window": maintenance_window},
        )
