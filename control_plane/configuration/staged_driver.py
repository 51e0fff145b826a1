"""The driver of configuration changes through waves: one instance at a time, from the database.

Every control-plane instance runs one (:func:`drive_changes`, supervised in the app). Each tick
it looks at the changes that still need driving (running ones, paused ones whose notified
registers go on settling, and halted or aborted ones with a register not yet given its document
back) and drives those whose lease it takes — the
rollouts' lease (:mod:`control_plane.rollouts.lease`, on ``config_change_leases``), with the
rollout driver's tick and lease time (``STOREFLEET_CP_ROLLOUT_TICK_S`` and ``_LEASE_S``). An
instance that dies stops renewing: another takes over when the lease expires and, as every step
below is read from the database and written back with a conditional update or checked before it
is made, continues where the dead one stopped — a register already notified is not notified
again, one already given its document back is not rolled back twice.

One tick of a running change (:meth:`StagedDriver.tick`):

1. Settle the notified registers from what they report (``device_state``, kept by the ingest
   from their retained ``state``): ``failed`` when it refused the version (a ``config.refused``
   event) or, once it reports the version, any peripheral is unhealthy (:func:`control_plane.
   devices.state.problems`; the register's own "not running" while the agent restarts it is not
   counted, its crash loop is); ``succeeded`` when it reported the version and stayed healthy
   for the change's ``health_s`` (a printer is probed after the register restarts: success
   needs a window, as a release's does); ``timed_out`` when it has not reported the version
   ``deadline_s`` after it was notified.
2. The current wave's gates are the rollouts' (:func:`~control_plane.rollouts.model.
   halt_reason`, :func:`~control_plane.rollouts.model.wave_passed`, then the wave's soak): halt,
   or advance to the next wave; past the last one, finish.
3. Notify the pending registers of the waves reached by setting the key on each register's own
   layer: an ordinary, audited, validated change that the configuration link publishes at once
   (registers not yet reached keep their document). Skipped when that layer already holds the
   value (a tick cut short after the edit): no second version.
4. Finish: the key is set on the layer the change was meant for and removed from the registers'
   layers, which changes no document (each already has the value): the change is where an
   operator would look for it, with its history and provenance. Then ``completed``.

Ending a change (halted by a gate, completed) is audited in the transaction that ends it, as
the operator who started it via the driver. A halted or aborted change is rolled back: the key
is deleted from the layer of every register it reached, so its document is what it was before
(a new version with the old content: an appliance never goes back in version), and the version
that did it is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.alerts.tables import device_events
from control_plane.configuration import service
from control_plane.configuration.layers import Layer
from control_plane.configuration.service import EDIT_ACTION
from control_plane.configuration.staged import FINAL, driver_actor
from control_plane.configuration.tables import (
    config_change_devices,
    config_change_leases,
    config_changes,
    config_effective,
    config_settings,
)
from control_plane.devices.state import problems
from control_plane.devices.tables import device_state
from control_plane.rollouts import lease
from control_plane.rollouts.model import WaveIn, halt_reason, tally, wave_passed
from protocols.vocabulary import EventKind

log = logging.getLogger(__name__)

HALTS = Counter(
    "storefleet_config_change_halts_total",
    "Configuration changes through waves halted by a wave's gate",
)
ROLLED_BACK = Counter(
    "storefleet_config_change_rollbacks_total",
    "Registers given their previous configuration back by a halted or aborted change",
)


@dataclass(frozen=True, kw_only=True)
class DriverSettings:
    """How often the driver looks and how long its lease on a change lasts."""

    tick_s: float = 1.0
    lease_s: float = 15.0


class StagedDriver:
    """Drives the changes whose lease this instance holds; ``owner`` names the instance and
    ``poke`` wakes the configuration link after the driver changed documents."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        poke: Callable[[], None] = lambda: None,
        settings: DriverSettings | None = None,
        owner: str | None = None,
        clock: Callable[[], int] = service.now_ms,
    ) -> None:
        self.engine = engine
        self.poke = poke
        self.settings = settings or DriverSettings()
        self.owner = owner or f"config-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.held: set[str] = set()

    async def run(self) -> None:
        """Drive forever, one :meth:`step` a tick."""
        while True:
            await self.step()
            await asyncio.sleep(self.settings.tick_s)

    async def stop(self) -> None:
        """Give up every lease held (a clean shutdown; a crash just lets them expire)."""
        for change_id in sorted(self.held):
            await lease.release(
                self.engine, rollout_id=change_id, owner=self.owner, table=config_change_leases
            )
        self.held.clear()

    async def step(self) -> list[str]:
        """One pass over every change that needs driving and whose lease this instance takes;
        the ones it drove."""
        cd = config_change_devices.c
        unreturned = select(cd.change_id).where(
            cd.notified_at.is_not(None), cd.rolled_back_at.is_(None)
        )
        async with self.engine.connect() as conn:
            live = [
                row[0]
                for row in await conn.execute(
                    select(config_changes.c.id)
                    .where(
                        or_(
                            config_changes.c.status.in_(("running", "paused")),
                            and_(
                                config_changes.c.status.in_(("halted", "aborted")),
                                config_changes.c.id.in_(unreturned),
                            ),
                        )
                    )
                    .order_by(config_changes.c.created_at)
                )
            ]
        driven = []
        for change_id in live:
            taken = await lease.acquire(
                self.engine,
                rollout_id=change_id,
                owner=self.owner,
                now_ms=self.clock(),
                ttl_ms=int(self.settings.lease_s * 1000),
                table=config_change_leases,
            )
            if not taken:
                self.held.discard(change_id)
                continue
            self.held.add(change_id)
            await self.tick(change_id)
            driven.append(change_id)
        return driven

    async def tick(self, change_id: str) -> None:
        """Settle, gate, notify or finish a running change (settle only, a paused one); roll back
        a halted or aborted one."""
        change = await self._change(change_id)
        if change.status == "paused":
            async with self.engine.begin() as conn:
                await _settle(conn, change, self.clock())
        elif change.status == "running":
            async with self.engine.begin() as conn:
                await _settle(conn, change, self.clock())
                status, wave = await _gate(conn, change, self.clock())
            if status == "running":
                await self._notify(change, wave)
            elif status == "finishing":
                await self._finish(change)
            change = await self._change(change_id)
        if change.status in ("halted", "aborted"):
            await self._roll_back(change)

    async def _change(self, change_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(select(config_changes).where(config_changes.c.id == change_id))
            ).one()

    async def _notify(self, change: Any, wave: int) -> None:
        """Step 3: the pending registers of the waves reached get the key on their own layer."""
        cd = config_change_devices.c
        async with self.engine.connect() as conn:
            pending = [
                row.device_id
                for row in await conn.execute(
                    select(cd.device_id)
                    .where(cd.change_id == change.id, cd.wave <= wave, cd.state == "pending")
                    .order_by(cd.wave, cd.device_id)
                )
            ]
        for device_id in pending:
            if await self._status(change.id) != "running":
                break  # paused or aborted meanwhile: no one else is notified
            if await self._holds(Layer.REGISTER, device_id, change.key) != change.value:
                await service.set_setting(
                    self.engine,
                    actor=driver_actor(change.created_by),
                    layer=Layer.REGISTER,
                    target=device_id,
                    key=change.key,
                    value=json.loads(change.value),
                )
            now = self.clock()
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(config_change_devices)
                    .where(cd.change_id == change.id, cd.device_id == device_id)
                    .where(cd.state == "pending")
                    .values(
                        state="notified",
                        detail="notified",
                        version=await _version(conn, device_id),
                        state_at=now,
                        notified_at=now,
                    )
                )
        if pending:
            self.poke()

    async def _finish(self, change: Any) -> None:
        """Step 4: the key on its own layer, off the registers' layers; then completed."""
        layer = Layer(change.layer)
        actor = driver_actor(change.created_by)
        if await self._holds(layer, change.target, change.key) != change.value:
            await service.set_setting(
                self.engine,
                actor=actor,
                layer=layer,
                target=change.target,
                key=change.key,
                value=json.loads(change.value),
            )
        for device_id in await self._reached(change.id):
            if (layer, change.target) == (Layer.REGISTER, device_id):
                continue  # the register is the layer the change was meant for
            if await self._holds(Layer.REGISTER, device_id, change.key) is not None:
                await service.delete_setting(
                    self.engine,
                    actor=actor,
                    layer=Layer.REGISTER,
                    target=device_id,
                    key=change.key,
                )
        async with self.engine.begin() as conn:
            now = self.clock()
            done = await conn.execute(
                update(config_changes)
                .where(config_changes.c.id == change.id, config_changes.c.status == "running")
                .values(status="completed", reason="every wave passed", updated_at=now)
            )
            if done.rowcount == 1:
                await _audit_end(conn, change, "completed", "every wave passed", now)
        self.poke()

    async def _roll_back(self, change: Any) -> None:
        """Every register reached gets its previous document back, once."""
        cd = config_change_devices.c
        reached = await self._reached(change.id, returned=False)
        for device_id in reached:
            if await self._holds(Layer.REGISTER, device_id, change.key) is not None:
                await service.delete_setting(
                    self.engine,
                    actor=driver_actor(change.created_by),
                    layer=Layer.REGISTER,
                    target=device_id,
                    key=change.key,
                )
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(config_change_devices)
                    .where(cd.change_id == change.id, cd.device_id == device_id)
                    .where(cd.rolled_back_at.is_(None))
                    .values(
                        rolled_back_to=await _version(conn, device_id), rolled_back_at=self.clock()
                    )
                )
            ROLLED_BACK.inc()
        if reached:
            log.warning(
                "configuration change %s %s: %d register(s) given their previous document back",
                change.id,
                change.status,
                len(reached),
            )
            self.poke()

    async def _status(self, change_id: str) -> str:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(config_changes.c.status).where(config_changes.c.id == change_id)
            )
        return str(found)

    async def _reached(self, change_id: str, *, returned: bool = True) -> list[str]:
        """The registers the change was set on (``returned``: also those rolled back)."""
        cd = config_change_devices.c
        query = select(cd.device_id).where(cd.change_id == change_id, cd.notified_at.is_not(None))
        if not returned:
            query = query.where(cd.rolled_back_at.is_(None))
        async with self.engine.connect() as conn:
            return [row.device_id for row in await conn.execute(query.order_by(cd.device_id))]

    async def _holds(self, layer: Layer, target: str, key: str) -> str | None:
        """The canonical value the layer sets ``key`` to, or None."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(config_settings.c.value).where(
                    config_settings.c.layer == layer.value,
                    config_settings.c.target == target,
                    config_settings.c.key == key,
                )
            )
        return None if found is None else str(found)


async def _version(conn: AsyncConnection, device_id: str) -> int:
    """The version of the register's effective document now."""
    version = await conn.scalar(
        select(config_effective.c.version).where(config_effective.c.device_id == device_id)
    )
    return int(version or 0)


async def _settle(conn: AsyncConnection, change: Any, now: int) -> None:
    """Step 1: move each notified register on from what it reported."""
    cd = config_change_devices.c
    waiting = {
        row.device_id: row
        for row in await conn.execute(
            select(config_change_devices).where(
                cd.change_id == change.id, cd.state.in_(("notified", "applied"))
            )
        )
    }
    if not waiting:
        return
    reported = {
        row.device_id: row
        for row in await conn.execute(
            select(device_state).where(device_state.c.device_id.in_(waiting))
        )
    }
    refused: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(
        select(device_events.c.device_id, device_events.c.body)
        .where(
            device_events.c.device_id.in_(waiting),
            device_events.c.kind == EventKind.CONFIG_REFUSED.value,
            device_events.c.received_at >= change.created_at,
        )
        .order_by(device_events.c.id)
    ):
        body = _body(row.body)
        if body.get("version") == waiting[row.device_id].version:
            refused[row.device_id] = body
    for device_id, device in waiting.items():
        moved = _moved(device, reported.get(device_id), refused.get(device_id), change, now)
        if moved is not None:
            await conn.execute(
                update(config_change_devices)
                .where(
                    cd.change_id == change.id,
                    cd.device_id == device_id,
                    cd.state == device.state,
                    cd.state_at == device.state_at,
                )
                .values(**moved)
            )


def _moved(
    device: Any, row: Any, refusal: dict[str, Any] | None, change: Any, now: int
) -> dict[str, Any] | None:
    """Where one register moves from what it reported (the values to store), or None."""
    if refusal is not None:
        return {
            "state": "failed",
            "detail": f"refused: {refusal.get('reason', '')}",
            "state_at": now,
        }
    at_version = (
        row is not None and device.version is not None and row.config_version >= device.version
    )
    if not at_version:
        if now - device.notified_at > change.deadline_s * 1000:
            why = f"did not report version {device.version} in {change.deadline_s} s"
            return {"state": "timed_out", "detail": why, "state_at": now}
        return None
    applied_at = device.applied_at if device.applied_at is not None else now
    unwell = problems(_judged(_body(row.peripherals)))
    if unwell:
        return {
            "state": "failed",
            "detail": "; ".join(unwell),
            "state_at": now,
            "applied_at": applied_at,
        }
    if now - applied_at >= change.health_s * 1000:
        why = f"healthy {change.health_s} s at version {device.version}"
        return {"state": "succeeded", "detail": why, "state_at": now, "applied_at": applied_at}
    if device.state == "notified":
        why = f"reports version {device.version}; healthy so far"
        return {"state": "applied", "detail": why, "state_at": now, "applied_at": applied_at}
    return None


def _judged(peripherals: dict[str, Any]) -> dict[str, Any]:
    """The peripherals a register is judged by: all but its own "not running" while the agent
    restarts it for a restart section (a crash loop still counts)."""
    register = peripherals.get("register")
    if isinstance(register, dict) and not str(register.get("error", "")).startswith("crash loop"):
        peripherals = {k: v for k, v in peripherals.items() if k != "register"}
    return {k: v for k, v in peripherals.items() if isinstance(v, dict)}


def _body(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


async def _gate(conn: AsyncConnection, change: Any, now: int) -> tuple[str, int]:
    """Step 2: halt, advance or finish on the current wave's counts; the status and the wave
    it leaves (``finishing``: every wave passed, step 4 next)."""
    cd = config_change_devices.c
    specs = [WaveIn.model_validate(w) for w in json.loads(change.waves)]
    wave, reached = change.current_wave, change.wave_reached_at
    status, reason = "running", change.reason
    while True:
        states = [
            state
            for state, n in await conn.execute(
                select(cd.state, func.count())
                .where(cd.change_id == change.id, cd.wave == wave)
                .group_by(cd.state)
            )
            for _ in range(int(n))
        ]
        counts = tally(states)
        why = halt_reason(specs[wave], counts)
        settled = all(s in FINAL for s in states)
        if why is None and states and settled and not wave_passed(specs[wave], counts):
            why = (
                f"{counts.succeeded} of {counts.size} registers succeeded, the wave needs "
                f"{specs[wave].success_percent} %"
            )
        if why is not None:
            status, reason = "halted", f"wave {wave + 1}: {why}"
            HALTS.inc()
            log.warning(
                "configuration change %s halted: %s; the registers reached get their previous "
                "document back (GET /api/config/changes/%s says which and why)",
                change.id,
                reason,
                change.id,
            )
            break
        if not settled:
            break  # registers still settling (a wave without any passes at once)
        if reached is None:
            reached = now
        if now < reached + specs[wave].soak_s * 1000:
            break
        if wave + 1 < len(specs):
            wave, reached = wave + 1, None
            continue
        status = "finishing"
        break
    values: dict[str, Any] = {"current_wave": wave, "wave_reached_at": reached, "updated_at": now}
    if status == "halted":
        values |= {"status": "halted", "reason": reason[:2000]}
    if (wave, reached, status) != (change.current_wave, change.wave_reached_at, "running"):
        moved = await conn.execute(
            update(config_changes)
            .where(config_changes.c.id == change.id, config_changes.c.status == "running")
            .values(**values)
        )
        if status == "halted" and moved.rowcount == 1:
            await _audit_end(conn, change, "halted", reason, now)
    return status, wave


async def _audit_end(
    conn: AsyncConnection, change: Any, status: str, reason: str, now: int
) -> None:
    """The audit entry of the driver ending a change (halted by a gate, or completed), in the
    transaction that ends it; the actor is the operator who started it, via the driver."""
    await service.audited(
        conn,
        actor=driver_actor(change.created_by),
        action=EDIT_ACTION[Layer(change.layer)],
        target=f"config-change/{change.id}",
        tenant_id=change.tenant_id,
        now=now,
        before={"status": "running"},
        after={"status": status, "reason": reason},
    )


async def drive_changes(app: FastAPI) -> None:
    """This instance's driver of changes through waves, until cancelled (``control_plane.app``);
    its leases are given up on the way out."""
    served = app.state.settings
    link = getattr(app.state, "config_link", None)
    driver = StagedDriver(
        engine=app.state.engine,
        poke=link.poke if link is not None else (lambda: None),
        settings=DriverSettings(tick_s=served.rollout_tick_s, lease_s=served.rollout_lease_s),
    )
    app.state.config_change_driver = driver
    try:
        await driver.run()
    finally:
        try:
            await driver.stop()
        except Exception:  # stopping anyway: the leases expire by themselves
            log.debug("configuration change leases left to expire", exc_info=True)
