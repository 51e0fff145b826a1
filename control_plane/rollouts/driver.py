"""The rollout driver: one pass a tick over every live rollout this instance holds the lease of.

How it works, per rollout and tick (:meth:`RolloutDriver.tick`), all decided from the database:

1. Deadlines: a device in flight past its state's deadline is timed out (or, with the rollout's
   ``on_silence = wait``, left waiting); a ``notified`` device that was offline gets its deadline
   only once it is seen online again (AWS IoT device client #519: no deadline runs while it is
   away). A device that reported success is settled ``succeeded`` only when its retained State
   shows the new release — failed at the deadline if it never does (it fell back).
2. Gates of the current wave (:mod:`control_plane.rollouts.model`): halt, or advance after the
   soak; the last wave done and every device final completes the rollout.
3. Notify: pending devices of the waves reached, at most ``rate_per_minute`` in any minute,
   only inside their maintenance window unless the rollout is forced (outside, they wait as
   ``waiting_for_window`` without a deadline). The window is the store's override, else
   "outside opening hours" from the device's effective configuration, else the rollout's
   (:mod:`.windows` says why in that order). Notifying is a conditional UPDATE first
   (``pending`` → ``notified``: one instance wins it, nothing is notified twice), then the
   rollout's deployer (:mod:`.deployers`: its tenant's) delivers it and the device is marked
   published; a delivery lost to a crash or an outage is made at the next tick. The native
   deployer publishes the retained ``DesiredRelease`` on the device's ``release`` topic, so a
   device offline now gets it when it connects; balenaCloud's pins the device to the release.
   A device the deployer refuses (balena knows no such device) fails with its reason; a
   deployer refusing as configured (a bad token, no such release) pauses the rollout with it.
4. Progress: the native path's agents report by themselves (:mod:`.progress`); a deployer that
   must be asked (``observes``) is read each tick and its devices moved forward.
5. Rollback (halted or aborted rollouts): every device that was notified gets its previous
   release back through its deployer, once; a device whose previous release is not
   available is marked with why it could not be.

Cost: a tick reads what it may act on, not the whole rollout (issue 11: 10,000 devices in
flight): the devices due in 1. by index on (state, deadline_at), the gates' counts from the
finished devices of each wave looked at (its size counted once), pending devices a page at a
time while the rate allows, and each effective document's opening hours parsed once per
version (:class:`.windows.HoursCache`). Indexes: migration 0017_rollout_indexes.

:meth:`RolloutDriver.run` loops over :meth:`step`; it runs supervised in the app
(``control_plane.supervision``). Every instance runs one; the lease (:mod:`.lease`) makes one
of them drive each rollout, and another take over within ``lease_s`` when it dies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import RowMapping, Select, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.devices.tables import device_state, devices, stores
from control_plane.rollouts import lease, model, windows
from control_plane.rollouts.deployers import (
    DeployerRefused,
    Deployers,
    DeployerUnavailable,
    Observed,
)
from control_plane.rollouts.native import NativeDeployer, Publisher
from control_plane.rollouts.tables import (
    rollout_device_history,
    rollout_devices,
    rollouts,
    store_windows,
)

log = logging.getLogger(__name__)

NOTIFIED = Counter(
    "storefleet_rollout_notifications_total", "Devices told their desired release by a rollout"
)
ROLLED_BACK = Counter(
    "storefleet_rollout_rollbacks_total", "Devices given their previous release back by a rollout"
)
HALTS = Counter("storefleet_rollout_halts_total", "Rollouts halted by a wave's failure gate")
TICK_SECONDS = Histogram(
    "storefleet_rollout_tick_seconds", "Time of one driver tick of one rollout"
)


@dataclass(frozen=True, kw_only=True)
class DriverSettings:
    """How often the driver looks and how long its lease lasts."""

    tick_s: float = 1.0
    lease_s: float = 15.0


#: Devices notified in one UPDATE, and desired releases published at once.
CHUNK = 500


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_DEVICE_ROWS = (
    select(
        rollout_devices,
        devices.c.online,
        devices.c.last_seen_at,
        device_state.c.app_release,
        stores.c.timezone,
        store_windows.c.maintenance_window.label("store_window"),
    )
    .select_from(
        rollout_devices.join(devices, devices.c.id == rollout_devices.c.device_id)
        .outerjoin(device_state, device_state.c.device_id == rollout_devices.c.device_id)
        .outerjoin(stores, stores.c.id == rollout_devices.c.store_id)
        .outerjoin(store_windows, store_windows.c.store_id == rollout_devices.c.store_id)
    )
    .order_by(rollout_devices.c.wave, rollout_devices.c.device_id)
)


class RolloutDriver:
    """Drives the rollouts whose lease this instance holds; ``owner`` names the instance.

    ``deployers`` says who delivers each tenant's rollouts; without it, every rollout goes
    the native way through ``publisher`` with bundles served at ``base_url``.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        publisher: Publisher | None = None,
        base_url: str = "",
        deployers: Deployers | None = None,
        settings: DriverSettings | None = None,
        owner: str | None = None,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.engine = engine
        if deployers is None:
            if publisher is None:
                raise ValueError("a rollout driver needs a publisher or its deployers")
            deployers = Deployers(
                native=NativeDeployer(engine=engine, publisher=publisher, base_url=base_url)
            )
        self.deployers = deployers
        self.settings = settings or DriverSettings()
        self.owner = owner or f"driver-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.held: set[str] = set()
        self._hours = windows.HoursCache()
        self._wave_sizes: WaveSizes = {}

    async def run(self) -> None:
        """Drive forever, one :meth:`step` a tick."""
        while True:
            await self.step()
            await asyncio.sleep(self.settings.tick_s)

    async def stop(self) -> None:
        """Give up every lease held (a clean shutdown; a crash just lets them expire)."""
        for rollout_id in sorted(self.held):
            await lease.release(self.engine, rollout_id=rollout_id, owner=self.owner)
        self.held.clear()

    async def step(self) -> list[str]:
        """One pass: every live rollout whose lease this instance takes; the ones it drove."""
        async with self.engine.connect() as conn:
            live = [
                row[0]
                for row in await conn.execute(
                    select(rollouts.c.id)
                    .where(
                        or_(
                            rollouts.c.status.in_(("running", "paused")),
                            rollouts.c.id.in_(
                                select(rollout_devices.c.rollout_id).where(
                                    rollout_devices.c.notified_at.is_not(None),
                                    rollout_devices.c.rolled_back_at.is_(None),
                                )
                            )
                            & rollouts.c.status.in_(("halted", "aborted")),
                        )
                    )
                    .order_by(rollouts.c.created_at)
                )
            ]
        driven: list[str] = []
        for rollout_id in live:
            now = self.clock()
            ttl = int(self.settings.lease_s * 1000)
            if not await lease.acquire(
                self.engine, rollout_id=rollout_id, owner=self.owner, now_ms=now, ttl_ms=ttl
            ):
                self.held.discard(rollout_id)
                continue
            self.held.add(rollout_id)
            started = time.perf_counter()
            await self.tick(rollout_id)
            TICK_SECONDS.observe(time.perf_counter() - started)
            driven.append(rollout_id)
        return driven

    async def tick(self, rollout_id: str) -> None:
        """Deadlines, gates, notifications, publications and rollbacks of one rollout."""
        now = self.clock()
        async with self.engine.begin() as conn:
            rollout = (
                (await conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)))
                .mappings()
                .one()
            )
            unpublished = True  # not known: look
            if rollout["status"] == "running":
                await _settle(conn, rollout, now)
                status, wave = await _gate(conn, rollout, now, self._wave_sizes)
                if status == "running":
                    await _notify(conn, rollout, wave, now, self._hours)
                unpublished = await _unpublished(conn, rollout_id)
        status = await self._status(rollout_id)
        if status in {"running", "paused"}:
            if unpublished:
                await self._publish_desired(rollout_id)
            await self._observe(rollout_id, str(rollout["tenant_id"]))
        elif status in {"halted", "aborted"}:
            await self._roll_back(rollout_id)

    async def _status(self, rollout_id: str) -> str:
        async with self.engine.connect() as conn:
            return str(
                (
                    await conn.execute(select(rollouts.c.status).where(rollouts.c.id == rollout_id))
                ).scalar_one()
            )

    async def _pending_rows(
        self, rollout_id: str, *, rollback: bool, delivered: bool = False
    ) -> tuple[RowMapping, list[RowMapping]]:
        """The rollout and its notified devices not rolled back: all of them (``rollback``),
        those in flight its deployer took (``delivered``), else those it has yet to take."""
        where = [
            rollout_devices.c.rollout_id == rollout_id,
            rollout_devices.c.notified_at.is_not(None),
            rollout_devices.c.rolled_back_at.is_(None),
        ]
        if delivered:
            where.append(rollout_devices.c.published_at.is_not(None))
            where.append(rollout_devices.c.state.in_(model.IN_FLIGHT))
        elif not rollback:
            where.append(rollout_devices.c.published_at.is_(None))
        async with self.engine.connect() as conn:
            rollout = (
                (await conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)))
                .mappings()
                .one()
            )
            rows = list((await conn.execute(_DEVICE_ROWS.where(and_(*where)))).mappings().all())
        return rollout, rows

    async def _publish_desired(self, rollout_id: str) -> None:
        """Deliver the notified devices' release through the rollout's deployer, a chunk at a
        time, and mark those it took; the rest are delivered again at the next tick."""
        rollout, rows = await self._pending_rows(rollout_id, rollback=False)
        deployer = self.deployers.for_tenant(rollout["tenant_id"])
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            try:
                delivery = await deployer.deliver(rollout, chunk)
            except DeployerUnavailable as err:
                log.warning("rollout %s: %s; delivered again next tick", rollout_id, err)
                return
            except DeployerRefused as err:
                await self._pause_refused(rollout, err)
                return
            now = self.clock()
            async with self.engine.begin() as conn:
                if delivery.delivered:
                    await conn.execute(
                        update(rollout_devices)
                        .where(
                            rollout_devices.c.rollout_id == rollout_id,
                            rollout_devices.c.device_id.in_(delivery.delivered),
                            rollout_devices.c.notified_at.is_not(None),
                            rollout_devices.c.published_at.is_(None),
                        )
                        .values(published_at=now)
                    )
                for row in chunk:
                    why = delivery.refused.get(row["device_id"])
                    if why is not None:
                        await _move(
                            conn, dict(row), now, state="failed", detail=why, deadline_at=None,
                            published_at=now,
                        )  # fmt: skip
            NOTIFIED.inc(len(delivery.delivered))
            if len(delivery.delivered) + len(delivery.refused) < len(chunk):
                return  # the broker is away (or a release is missing): the next tick retries

    async def _pause_refused(self, rollout: RowMapping, err: DeployerRefused) -> None:
        """Pause a running rollout its deployer refuses, with why (an operator fixes it and
        resumes); logged once, when it pauses."""
        async with self.engine.begin() as conn:
            paused = await conn.execute(
                update(rollouts)
                .where(rollouts.c.id == rollout["id"], rollouts.c.status == "running")
                .values(status="paused", reason=f"deployer {err}"[:2000], updated_at=self.clock())
            )
        if paused.rowcount == 1:
            log.error(
                "rollout %s paused: deployer %s; fix it, then resume the rollout",
                rollout["id"],
                err,
            )

    async def _observe(self, rollout_id: str, tenant_id: str) -> None:
        """Move devices forward on what a polled deployer reads (never back, never out of a
        final state); a notified device its deployer sees gets its deadline from now."""
        deployer = self.deployers.for_tenant(tenant_id)
        if not deployer.observes:
            return  # its devices report by themselves: nothing to read
        rollout, rows = await self._pending_rows(rollout_id, rollback=False, delivered=True)
        if not rows:
            return
        try:
            observed = await deployer.observe(rollout, rows)
        except DeployerUnavailable as err:
            log.warning("rollout %s: %s; read again next tick", rollout_id, err)
            return
        except DeployerRefused as err:
            await self._pause_refused(rollout, err)
            return
        await _apply_observed(self.engine, rollout, rows, observed, self.clock())

    async def _roll_back(self, rollout_id: str) -> None:
        rollout, rows = await self._pending_rows(rollout_id, rollback=True)
        deployer = self.deployers.for_tenant(rollout["tenant_id"])
        for row in rows:
            try:
                detail = await deployer.roll_back(rollout, row)
            except DeployerUnavailable as err:
                log.warning("rollout %s: %s; rolled back next tick", rollout_id, err)
                return
            except DeployerRefused as err:
                detail = f"no rollback: {err}"
            if detail.startswith("no rollback"):
                log.warning("rollout %s: %s for %s", rollout_id, detail, row["device_id"])
            else:
                ROLLED_BACK.inc()
            now = self.clock()
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(rollout_devices)
                    .where(
                        rollout_devices.c.rollout_id == rollout_id,
                        rollout_devices.c.device_id == row["device_id"],
                        rollout_devices.c.rolled_back_at.is_(None),
                    )
                    .values(rolled_back_at=now, detail=_joined(row["detail"], detail))
                )
                await _history(conn, rollout_id, row["device_id"], row["state"], detail, now)


async def _apply_observed(
    engine: AsyncEngine,
    rollout: RowMapping,
    rows: Sequence[RowMapping],
    observed: Sequence[Observed],
    now: int,
) -> None:
    """Apply what a polled deployer read, in one transaction (each move conditional)."""
    by_id = {row["device_id"]: row for row in rows}
    deadlines = json.loads(rollout["deadlines"])
    async with engine.begin() as conn:
        for seen in observed:
            found = by_id.get(seen.device_id)
            if found is None or found["state"] in model.FINAL:
                continue
            row = dict(found)
            seconds = model.deadline_s(deadlines, seen.state)
            deadline_at = None if seconds is None else now + seconds * 1000
            if seen.state == row["state"]:
                if seen.state == "notified" and row["deadline_at"] is None:
                    await conn.execute(
                        update(rollout_devices)
                        .where(
                            rollout_devices.c.rollout_id == rollout["id"],
                            rollout_devices.c.device_id == seen.device_id,
                            rollout_devices.c.state == "notified",
                            rollout_devices.c.deadline_at.is_(None),
                        )
                        .values(deadline_at=deadline_at)
                    )
                continue
            forward = seen.state in model.FINAL or model.STATES.index(
                seen.state
            ) > model.STATES.index(row["state"])
            if forward:
                await _move(
                    conn, row, now, state=seen.state, detail=seen.detail, deadline_at=deadline_at
                )


def _joined(reason: str, then: str) -> str:
    """A device's reason with what happened next: the reason for a failure is never lost."""
    return (f"{reason}; {then}" if reason else then)[:2000]


async def _history(
    conn: AsyncConnection, rollout_id: str, device_id: str, state: str, detail: str, now: int
) -> None:
    await conn.execute(
        insert(rollout_device_history).values(
            rollout_id=rollout_id, device_id=device_id, state=state, detail=detail[:2000], at=now
        )
    )


async def _move(
    conn: AsyncConnection,
    row: dict[str, Any],
    now: int,
    *,
    state: str,
    detail: str,
    deadline_at: int | None,
    **values: Any,
) -> bool:
    """Move one device from the state it was read in; False when it changed meanwhile."""
    changed = await conn.execute(
        update(rollout_devices)
        .where(
            rollout_devices.c.rollout_id == row["rollout_id"],
            rollout_devices.c.device_id == row["device_id"],
            rollout_devices.c.state == row["state"],
            rollout_devices.c.state_at == row["state_at"],
        )
        .values(state=state, detail=detail[:2000], state_at=now, deadline_at=deadline_at, **values)
    )
    if changed.rowcount != 1:
        return False
    await _history(conn, row["rollout_id"], row["device_id"], state, detail, now)
    row.update(state=state, detail=detail, state_at=now, deadline_at=deadline_at, **values)
    return True


async def _unpublished(conn: AsyncConnection, rollout_id: str) -> bool:
    """Whether a notified device still waits for its desired release to be published."""
    found = await conn.execute(
        select(rollout_devices.c.device_id)
        .where(
            rollout_devices.c.rollout_id == rollout_id,
            rollout_devices.c.notified_at.is_not(None),
            rollout_devices.c.published_at.is_(None),
            rollout_devices.c.rolled_back_at.is_(None),
        )
        .limit(1)
    )
    return found.first() is not None


def _to_settle(rollout: RowMapping, now: int) -> list[Select[Any]]:
    """The devices :func:`_settle` may move: a superset it decides on, read by index.

    A device far from its deadline, not confirming and not waiting to be seen is left out,
    so a tick reads the few that changed or ran late, not every device in flight. Three
    queries, each an equality or range on (rollout_id, state, deadline_at): one with ``OR``
    led SQLite to walk the whole rollout in another index.
    """
    rd = rollout_devices.c
    rows = _DEVICE_ROWS.order_by(None).where(rd.rollout_id == rollout["id"])
    late = rows.where(rd.state.in_(model.IN_FLIGHT), rd.deadline_at < now)
    if rollout["on_silence"] != "time_out":  # only a fall-back is failed at the deadline
        late = late.where(rd.state == "confirming", rd.reported_succeeded.is_(True))
    return [
        rows.where(rd.state == "confirming", rd.reported_succeeded.is_(True)),
        rows.where(rd.state == "notified", rd.deadline_at.is_(None)),
        late,
    ]


async def _settle(conn: AsyncConnection, rollout: RowMapping, now: int) -> None:
    """Deadlines, offline devices seen again, and successes the State confirms."""
    due: dict[str, dict[str, Any]] = {}
    for query in _to_settle(rollout, now):
        found = await conn.execute(query)
        keys = list(found.keys())
        for values in found.all():
            row = dict(zip(keys, values, strict=True))
            due[row["device_id"]] = row
    rows = sorted(due.values(), key=lambda row: (row["wave"], row["device_id"]))
    deadlines = json.loads(rollout["deadlines"])
    version = rollout["release_version"]
    for row in rows:
        state = row["state"]
        if row["notified_at"] is None or row["rolled_back_at"] is not None:
            continue
        if state == "confirming" and row["reported_succeeded"] and row["app_release"] == version:
            await _move(
                conn,
                row,
                now,
                state="succeeded",
                detail=f"its state shows {version}",
                deadline_at=None,
            )
            continue
        if state == "notified" and row["deadline_at"] is None and row["online"]:
            seconds = model.deadline_s(deadlines, state) or 0
            changed = await conn.execute(
                update(rollout_devices)
                .where(
                    rollout_devices.c.rollout_id == row["rollout_id"],
                    rollout_devices.c.device_id == row["device_id"],
                    rollout_devices.c.state == state,
                    rollout_devices.c.deadline_at.is_(None),
                )
                .values(deadline_at=now + seconds * 1000)
            )
            if changed.rowcount == 1:
                row["deadline_at"] = now + seconds * 1000
            continue
        if state not in model.IN_FLIGHT or row["deadline_at"] is None or now <= row["deadline_at"]:
            continue
        if state == "confirming" and row["reported_succeeded"]:
            await _move(
                conn,
                row,
                now,
                state="failed",
                detail=(
                    f"reported succeeded but its state shows {row['app_release'] or 'nothing'}, "
                    f"not {version}: it fell back"
                ),
                deadline_at=None,
            )
        elif rollout["on_silence"] == "time_out":
            await _move(
                conn,
                row,
                now,
                state="timed_out",
                detail=f"silent in {state} past its deadline",
                deadline_at=None,
            )


#: Devices per (rollout, wave): fixed when the rollout is created (its devices are inserted
#: with it, in the draft, and never added or removed), so counted once per driver.
WaveSizes = dict[tuple[str, int], int]


async def _wave_counts(
    conn: AsyncConnection, rollout_id: str, wave: int, sizes: WaveSizes
) -> model.Tally:
    """The wave's tally from its finished devices only (by index), its size counted once."""
    rd = rollout_devices.c
    size = sizes.get((rollout_id, wave))
    if size is None:
        size = int(
            (
                await conn.execute(
                    select(func.count()).where(rd.rollout_id == rollout_id, rd.wave == wave)
                )
            ).scalar_one()
        )
        sizes[(rollout_id, wave)] = size
    counted = await conn.execute(
        select(rd.state, func.count())
        .where(
            rd.rollout_id == rollout_id,
            rd.wave == wave,
            rd.state.in_(sorted({"succeeded", *model.FAILURES})),
        )
        .group_by(rd.state)
    )
    finished = {state: int(n) for state, n in counted}
    return model.Tally(
        size=size,
        succeeded=finished.get("succeeded", 0),
        failures=sum(n for state, n in finished.items() if state in model.FAILURES),
    )


async def _all_final(conn: AsyncConnection, rollout_id: str) -> bool:
    unfinished = await conn.execute(
        select(rollout_devices.c.device_id)
        .where(
            rollout_devices.c.rollout_id == rollout_id,
            rollout_devices.c.state.not_in(model.FINAL),
        )
        .limit(1)
    )
    return unfinished.first() is None


async def _gate(
    conn: AsyncConnection, rollout: RowMapping, now: int, sizes: WaveSizes
) -> tuple[str, int]:
    """Halt, advance or complete on the current wave's counts; the status and wave it leaves.

    The counts are the database's (after :func:`_settle`'s moves, in the same transaction):
    per wave looked at, its finished devices by index, not a pass over every device.
    """
    specs = [model.WaveIn.model_validate(w) for w in json.loads(rollout["waves"])]
    wave = rollout["current_wave"]
    reached = rollout["wave_reached_at"]
    status = "running"
    reason = rollout["reason"]
    while True:
        spec = specs[wave]
        counts = await _wave_counts(conn, rollout["id"], wave, sizes)
        why = model.halt_reason(spec, counts)
        if why is not None:
            status, reason = "halted", f"wave {wave + 1}: {why}"
            HALTS.inc()
            log.warning("rollout %s halted: %s; rolling back", rollout["id"], reason)
            break
        if not model.wave_passed(spec, counts):
            break
        if reached is None:
            reached = now
        if now < reached + spec.soak_s * 1000:
            break
        if wave + 1 < len(specs):
            wave, reached = wave + 1, None
            continue
        if await _all_final(conn, rollout["id"]):
            status, reason = "completed", "every wave passed"
        break
    if (status, wave, reached, reason) != (
        rollout["status"],
        rollout["current_wave"],
        rollout["wave_reached_at"],
        rollout["reason"],
    ):
        await conn.execute(
            update(rollouts)
            .where(rollouts.c.id == rollout["id"], rollouts.c.status == "running")
            .values(
                status=status,
                current_wave=wave,
                wave_reached_at=reached,
                reason=reason,
                updated_at=now,
            )
        )
    return status, wave


async def _notify(
    conn: AsyncConnection,
    rollout: RowMapping,
    wave: int,
    now: int,
    cache: windows.HoursCache,
) -> None:
    """Notify pending devices of the waves reached, within the rate and their windows.

    Candidates are read in (wave, device) order a page at a time and only while the rate
    leaves room, so a small rate over a large wave reads a page, not the whole wave.
    """
    rd = rollout_devices.c
    deadlines = json.loads(rollout["deadlines"])
    recent = (
        await conn.execute(
            select(func.count()).where(
                rd.rollout_id == rollout["id"], rd.notified_at > now - 60_000
            )
        )
    ).scalar_one()
    budget = rollout["rate_per_minute"] - int(recent)
    chosen: list[dict[str, Any]] = []
    page = max(CHUNK, budget)
    after: tuple[int, str] | None = None
    while budget > 0:
        query = _DEVICE_ROWS.where(
            rd.rollout_id == rollout["id"],
            rd.wave <= wave,
            rd.notified_at.is_(None),
            rd.state.in_((model.PENDING, "waiting_for_window")),
        ).limit(page)
        if after is not None:
            query = query.where(
                or_(rd.wave > after[0], and_(rd.wave == after[0], rd.device_id > after[1]))
            )
        found = await conn.execute(query)
        keys = list(found.keys())
        candidates = [dict(zip(keys, values, strict=True)) for values in found.all()]
        if not candidates:
            break
        after = (candidates[-1]["wave"], candidates[-1]["device_id"])
        hours = (
            {}
            if rollout["force"]
            else await windows.opening_hours(conn, [row["device_id"] for row in candidates], cache)
        )
        for row in candidates:
            if budget <= 0:
                break
            window = windows.window_for(
                store_window=row["store_window"],
                store_zone=row["timezone"],
                hours=hours.get(row["device_id"]),
                rollout_window=rollout["maintenance_window"],
            )
            if window is not None and not rollout["force"] and not window.is_open(now):
                if row["state"] == model.PENDING:
                    await _move(
                        conn,
                        row,
                        now,
                        state="waiting_for_window",
                        detail=window.describe(),
                        deadline_at=None,
                    )
                continue
            chosen.append(row)
            budget -= 1
        if len(candidates) < page:
            break
    seconds = model.deadline_s(deadlines, "notified") or 0
    for online in (True, False):
        group = [row for row in chosen if bool(row["online"]) is online]
        for start in range(0, len(group), CHUNK):
            await _notify_group(
                conn,
                rollout["id"],
                group[start : start + CHUNK],
                now,
                detail="notified"
                if online
                else "notified while offline: its deadline starts when it is next seen",
                deadline_at=now + seconds * 1000 if online else None,
            )


async def _notify_group(
    conn: AsyncConnection,
    rollout_id: str,
    rows: list[dict[str, Any]],
    now: int,
    *,
    detail: str,
    deadline_at: int | None,
) -> None:
    """Notify ``rows`` in one UPDATE; only those still waiting to be notified move (RETURNING
    says which), so an instance that lost its lease meanwhile cannot notify anyone twice."""
    running = (
        select(device_state.c.app_release)
        .where(device_state.c.device_id == rollout_devices.c.device_id)
        .scalar_subquery()
    )
    moved = await conn.execute(
        update(rollout_devices)
        .where(
            rollout_devices.c.rollout_id == rollout_id,
            rollout_devices.c.device_id.in_([row["device_id"] for row in rows]),
            rollout_devices.c.notified_at.is_(None),
            rollout_devices.c.state.in_((model.PENDING, "waiting_for_window")),
        )
        .values(
            state="notified",
            detail=detail,
            state_at=now,
            deadline_at=deadline_at,
            notified_at=now,
            published_at=None,
            previous_release=func.coalesce(running, ""),
        )
        .returning(rollout_devices.c.device_id)
    )
    winners = {row[0] for row in moved}
    if not winners:
        return
    await conn.execute(
        insert(rollout_device_history),
        [
            {
                "rollout_id": rollout_id,
                "device_id": d,
                "state": "notified",
                "detail": detail,
                "at": now,
            }
            for d in sorted(winners)
        ],
    )
    for row in rows:
        if row["device_id"] in winners:
            row.update(state="notified", notified_at=now, state_at=now, deadline_at=deadline_at)
