"""A configuration change published through waves and gates, kept in the database (issue 12).

Why: a bad printer setting published to a whole tenant at once stops every register's receipts
at the same moment. Published through waves it reaches one canary first; when the canary's
printer is reported unhealthy the gate halts and the canary gets its previous document back.

This module starts, steers and reads such a change; :mod:`.staged_driver` moves it on.

- :func:`start_change` previews the change as the real one would be (:func:`.preview.
  preview_change`: refused the same way, nothing stored), orders the registers whose document it
  changes by id and gives each its wave by the rollouts' own rule (:func:`control_plane.rollouts.
  model.assign_waves`, the same :class:`~control_plane.rollouts.model.WaveIn`: a canary of 1,
  percentages, soak, success and failure thresholds). The change (``config_changes``) and its
  registers (``config_change_devices``, all ``pending``) are stored ``running`` with one audit
  entry, in one transaction.
- :func:`act` pauses (no register is notified until it resumes; those notified go on settling),
  resumes a paused change, or aborts a running or paused one (the driver then gives every
  register it reached its previous document back). A conditional update, so two operators
  clicking at once cannot both win; audited in the same transaction. A change meant for the
  tenant or a group layer is steered only by who may edit that layer.
- :func:`get_change` and :func:`list_changes` show a change with its waves counted by state and
  each register's state and reason.

Another tenant's change is not found (404), as everywhere in the configuration API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.configuration import document, preview
from control_plane.configuration.errors import (
    ChangeNotFound,
    ChangeStateRefused,
    InvalidConfiguration,
)
from control_plane.configuration.layers import Layer
from control_plane.configuration.resolution import layer_tenant
from control_plane.configuration.service import (
    EDIT_ACTION,
    audited,
    canonical_value,
    editable_key,
    now_ms,
)
from control_plane.configuration.tables import config_change_devices, config_changes
from control_plane.operators.audit import Actor
from control_plane.operators.errors import Forbidden
from control_plane.rollouts.model import WaveIn, assign_waves
from control_plane.tenancy import EVERY_TENANT, TenantScope

ChangeStatus = Literal["running", "paused", "halted", "aborted", "completed"]
Verb = Literal["pause", "resume", "abort"]
#: Where a register of a change stands, in the order it moves.
DEVICE_STATES: tuple[str, ...] = (
    "pending",
    "notified",
    "applied",
    "succeeded",
    "failed",
    "timed_out",
)
#: A register has settled; the rollouts' gates count ``failed`` and ``timed_out`` as failures.
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "timed_out"})

#: Which statuses each action applies to, and the status it leaves.
TRANSITIONS: dict[Verb, tuple[frozenset[str], ChangeStatus]] = {
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "abort": (frozenset({"running", "paused"}), "aborted"),
}
#: Without waves given: a canary that must stay healthy a minute, a quarter, then the rest.
DEFAULT_WAVES: tuple[WaveIn, ...] = (
    WaveIn(devices=1, soak_s=60),
    WaveIn(percent=25, soak_s=60),
    WaveIn(percent=100),
)
DEFAULT_HEALTH_S = 60  # a register stays healthy this long at the version to succeed
DEFAULT_DEADLINE_S = 900  # a register that has not reported the version by then timed out
#: Who the driver's own edits of the registers' layers are audited as (with the operator).
DRIVER_VIA = "config-change"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeDeviceView:
    """One register of a change: its wave, where it stands and why, and its versions."""

    device_id: str
    wave: int
    state: str
    detail: str
    version: int | None  # the version that carries the change to it
    state_at: int
    notified_at: int | None
    applied_at: int | None
    rolled_back_to: int | None  # the version that took the change away again
    rolled_back_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeWaveView:
    """One wave: its rules, size and registers by state."""

    number: int
    spec: dict[str, Any]
    size: int
    counts: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeView:
    """A change through waves as the API and the console show it."""

    id: str
    tenant_id: str
    layer: str
    target: str
    key: str
    value: Any
    status: str
    reason: str
    current_wave: int
    health_s: int
    deadline_s: int
    created_by: str
    created_at: int
    updated_at: int
    counts: dict[str, int]
    waves: list[ChangeWaveView] = field(default_factory=list)
    devices: list[ChangeDeviceView] = field(default_factory=list)


def driver_actor(created_by: str) -> Actor:
    """The actor the driver's edits of a change are audited as: the operator who started it."""
    return Actor(actor=created_by, via=DRIVER_VIA)


async def start_change(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    key: str,
    value: Any,
    waves: Sequence[WaveIn] = DEFAULT_WAVES,
    health_s: int = DEFAULT_HEALTH_S,
    deadline_s: int = DEFAULT_DEADLINE_S,
    now: int | None = None,
) -> ChangeView:
    """Store ``key`` = ``value`` on ``layer``/``target`` as a change through ``waves``
    (module docstring); refused before anything is stored as :func:`.service.set_setting`
    would refuse it."""
    editable_key(key)
    text = canonical_value(key, value)
    shown = await preview.preview_change(
        engine, scope=scope, actor=actor, layer=layer, target=target, values={key: value}
    )
    if shown.invalid:  # the real change would be refused: refuse it the same way
        broken = shown.invalid[0]
        raise InvalidConfiguration(
            key=broken.key,
            path=broken.path,
            why=broken.reason,
            devices=len(shown.invalid),
            example=broken.device_id,
        )
    at = now_ms() if now is None else now
    ids = sorted(d.device_id for d in shown.changed)
    numbers = assign_waves(ids, waves)
    change_id = uuid.uuid4().hex
    async with engine.begin() as conn:
        tenant_id = await layer_tenant(conn, scope=scope, layer=layer, target=target)
        await audited(
            conn,
            actor=actor,
            action=EDIT_ACTION[layer],
            target=f"{layer.value}/{target}/{key}",
            tenant_id=tenant_id,
            now=at,
            before=None,
            after={
                "value": document.redacted(key, value),
                "through_waves": change_id,
                "waves": [w.model_dump(exclude_none=True) for w in waves],
                "registers": len(ids),
            },
        )
        await conn.execute(
            insert(config_changes).values(
                id=change_id,
                tenant_id=tenant_id,
                layer=layer.value,
                target=target,
                key=key,
                value=text,
                waves=json.dumps([w.model_dump() for w in waves]),
                health_s=health_s,
                deadline_s=deadline_s,
                status="running",
                current_wave=0,
                reason="",
                created_by=actor.actor,
                created_at=at,
                updated_at=at,
            )
        )
        if ids:
            await conn.execute(
                insert(config_change_devices),
                [
                    {
                        "change_id": change_id,
                        "device_id": device_id,
                        "wave": wave,
                        "state": "pending",
                        "state_at": at,
                    }
                    for device_id, wave in zip(ids, numbers, strict=True)
                ],
            )
    return await get_change(engine, scope=scope, change_id=change_id)


async def act(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    change_id: str,
    verb: Verb,
    may_edit: Collection[Layer] = tuple(Layer),
    now: int | None = None,
) -> ChangeView:
    """Pause, resume or abort a change; ``may_edit`` are the layers the operator may edit (a
    change meant for another layer is refused as the layer's edit would be)."""
    at = now_ms() if now is None else now
    allowed, status = TRANSITIONS[verb]
    async with engine.begin() as conn:
        row = await _change_row(conn, scope, change_id)
        layer = Layer(row.layer)
        if layer not in may_edit:
            raise Forbidden(EDIT_ACTION[layer], f"a change of the {layer.value} layer")
        moved = await conn.execute(
            update(config_changes)
            .where(config_changes.c.id == change_id, config_changes.c.status.in_(allowed))
            .values(
                status=status,
                reason=f"{status} by {actor.actor}" if verb != "resume" else "",
                updated_at=at,
            )
        )
        if moved.rowcount != 1:
            raise ChangeStateRefused(change_id, verb, row.status)
        await audited(
            conn,
            actor=actor,
            action=EDIT_ACTION[layer],
            target=f"config-change/{change_id}",
            tenant_id=row.tenant_id,
            now=at,
            before={"status": row.status},
            after={"status": status, "verb": verb},
        )
    return await get_change(engine, scope=scope, change_id=change_id)


async def _change_row(conn: AsyncConnection, scope: TenantScope, change_id: str) -> Any:
    row = (
        await conn.execute(
            select(config_changes).where(
                config_changes.c.id == change_id, scope.where(config_changes.c.tenant_id)
            )
        )
    ).first()
    if row is None:
        raise ChangeNotFound(change_id)
    return row


def _view(row: Any, counts: dict[str, int], **more: Any) -> ChangeView:
    return ChangeView(
        id=row.id,
        tenant_id=row.tenant_id,
        layer=row.layer,
        target=row.target,
        key=row.key,
        value=document.redacted(row.key, json.loads(row.value)),
        status=row.status,
        reason=row.reason,
        current_wave=row.current_wave,
        health_s=row.health_s,
        deadline_s=row.deadline_s,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        counts=counts,
        **more,
    )


async def get_change(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, change_id: str
) -> ChangeView:
    """One change with its waves and every register's state and reason."""
    async with engine.connect() as conn:
        row = await _change_row(conn, scope, change_id)
        found = await conn.execute(
            select(config_change_devices)
            .where(config_change_devices.c.change_id == change_id)
            .order_by(config_change_devices.c.wave, config_change_devices.c.device_id)
        )
        devices = [
            ChangeDeviceView(
                device_id=d.device_id,
                wave=d.wave,
                state=d.state,
                detail=d.detail,
                version=d.version,
                state_at=d.state_at,
                notified_at=d.notified_at,
                applied_at=d.applied_at,
                rolled_back_to=d.rolled_back_to,
                rolled_back_at=d.rolled_back_at,
            )
            for d in found
        ]
    specs = json.loads(row.waves)
    waves = []
    for number, spec in enumerate(specs):
        mine = [d.state for d in devices if d.wave == number]
        waves.append(
            ChangeWaveView(
                number=number,
                spec={k: v for k, v in spec.items() if v is not None},
                size=len(mine),
                counts=_counted(mine),
            )
        )
    return _view(row, _counted([d.state for d in devices]), waves=waves, devices=devices)


def _counted(states: Sequence[str]) -> dict[str, int]:
    return {state: n for state in DEVICE_STATES if (n := states.count(state))}


async def list_changes(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    layer: Layer | None = None,
    target: str | None = None,
    limit: int = 50,
) -> list[ChangeView]:
    """The changes through waves in scope, newest first, counted by state (no register list)."""
    query = select(config_changes).where(scope.where(config_changes.c.tenant_id))
    if layer is not None:
        query = query.where(config_changes.c.layer == layer.value)
    if target is not None:
        query = query.where(config_changes.c.target == target)
    query = query.order_by(config_changes.c.created_at.desc(), config_changes.c.id).limit(limit)
    async with engine.connect() as conn:
        rows = list(await conn.execute(query))
        counts: dict[str, dict[str, int]] = {}
        if rows:
            for change_id, state, n in await conn.execute(
                select(
                    config_change_devices.c.change_id,
                    config_change_devices.c.state,
                    func.count(),
                )
                .where(config_change_devices.c.change_id.in_([r.id for r in rows]))
                .group_by(config_change_devices.c.change_id, config_change_devices.c.state)
            ):
                counts.setdefault(change_id, {})[state] = int(n)
    return [_view(row, counts.get(row.id, {})) for row in rows]
