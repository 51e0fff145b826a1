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
   retained ``DesiredRelease`` is published on the device's ``release`` topic and marked
   published; a publication lost to a crash or a broker outage is sent at the next tick. As it
   is retained per device, a device offline now gets it when it connects.
4. Rollback (halted or aborted rollouts): every device that was notified gets its previous
   release published as desired (retained), once; a device whose previous release is not
   published here is marked with why it could not be.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter, Histogram
from sqlalchemy import RowMapping, Select, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.db.tables import device_state, devices, stores
from control_plane.releases.tables import releases
from control_plane.rollouts import lease, model, windows
from control_plane.rollouts.tables import (
    rollout_device_history,
    rollout_devices,
    rollouts,
    store_windows,
)
from protocols.codec import encode
from protocols.messages import DesiredRelease
from protocols.store_config import OpeningHours
from protocols.topics import Channel, device_topic

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


class Publisher(Protocol):
    """The control plane's broker connection (the ingest worker's)."""

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> None:
        """Publish; raises :class:`ConnectionError` when there is no connection."""


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
    """Drives the rollouts whose lease this instance holds; ``owner`` names the instance."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        publisher: Publisher,
        base_url: str,
        settings: DriverSettings | None = None,
        owner: str | None = None,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.base_url = base_url.rstrip("/")
        self.settings = settings or DriverSettings()
        self.owner = owner or f"driver-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.held: set[str] = set()
        self._releases: dict[str, RowMapping] = {}
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
        if status in {"running", "paused"} and unpublished:
            await self._publish_desired(rollout_id)
        elif status in {"halted", "aborted"}:
            await self._roll_back(rollout_id)

    async def _status(self, rollout_id: str) -> str:
        async with self.engine.connect() as conn:
            return str(
                (
                    await conn.execute(select(rollouts.c.status).where(rollouts.c.id == rollout_id))
                ).scalar_one()
            )

    def _url(self, device_id: str, version: str) -> str:
        return f"{self.base_url}/api/devices/{device_id}/releases/{version}/bundle"

    async def _desired(
        self,
        rollout: RowMapping,
        row: RowMapping,
        version: str,
        hours: OpeningHours | None = None,
    ) -> DesiredRelease | None:
        release = self._releases.get(version)
        if release is None:
            async with self.engine.connect() as conn:
                release = (
                    (await conn.execute(select(releases).where(releases.c.version == version)))
                    .mappings()
                    .first()
                )
            if release is None:
                return None
            self._releases[version] = release  # a published release never changes
        window = windows.window_for(
            store_window=row["store_window"],
            store_zone=row["timezone"],
            hours=hours,
            rollout_window=rollout["maintenance_window"],
        )
        return DesiredRelease(
            version=version,
            url=self._url(row["device_id"], version),
            sha256=release["sha256"],
            signature=release["signature"],
            window=None if window is None else window.label(),
            rollout=rollout["id"],
            force=True if rollout["force"] else None,
        )

    async def _pending_rows(
        self, rollout_id: str, *, rollback: bool
    ) -> tuple[RowMapping, list[RowMapping]]:
        where = [
            rollout_devices.c.rollout_id == rollout_id,
            rollout_devices.c.notified_at.is_not(None),
            rollout_devices.c.rolled_back_at.is_(None),
        ]
        if not rollback:
            where.append(rollout_devices.c.published_at.is_(None))
        async with self.engine.connect() as conn:
            rollout = (
                (await conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)))
                .mappings()
                .one()
            )
            rows = list((await conn.execute(_DEVICE_ROWS.where(and_(*where)))).mappings().all())
        return rollout, rows

    async def _publish(self, device_id: str, message: DesiredRelease) -> bool:
        try:
            await self.publisher.publish(
                device_topic(device_id, Channel.RELEASE), encode(message), 1, retain=True
            )
        except ConnectionError as err:
            log.warning(
                "rollout: desired release %s for %s not published (%s); sent again next tick",
                message.version,
                device_id,
                err,
            )
            return False
        return True

    async def _publish_desired(self, rollout_id: str) -> None:
        """Publish the notified devices' desired release, a chunk at a time in parallel (QoS 1
        each), and mark those the broker took; the rest are sent again at the next tick."""
        rollout, rows = await self._pending_rows(rollout_id, rollback=False)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            async with self.engine.connect() as conn:
                hours = await windows.opening_hours(
                    conn, [r["device_id"] for r in chunk], self._hours
                )
            messages = [
                await self._desired(
                    rollout, r, rollout["release_version"], hours.get(r["device_id"])
                )
                for r in chunk
            ]
            pairs = [(row, m) for row, m in zip(chunk, messages, strict=True) if m is not None]
            sent = await asyncio.gather(*(self._publish(row["device_id"], m) for row, m in pairs))
            published = [row["device_id"] for (row, _), ok in zip(pairs, sent, strict=True) if ok]
            if published:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        update(rollout_devices)
                        .where(
                            rollout_devices.c.rollout_id == rollout_id,
                            rollout_devices.c.device_id.in_(published),
                            rollout_devices.c.notified_at.is_not(None),
                            rollout_devices.c.published_at.is_(None),
                        )
                        .values(published_at=self.clock())
                    )
                NOTIFIED.inc(len(published))
            if len(published) < len(chunk):
                return  # the broker is away (or a release is missing): the next tick retries

    async def _roll_back(self, rollout_id: str) -> None:
        rollout, rows = await self._pending_rows(rollout_id, rollback=True)
        for row in rows:
            previous = row["previous_release"]
            message = (
                await self._desired(rollout, row, previous)
                if previous and previous != rollout["release_version"]
                else None
            )
            if message is not None:
                if not await self._publish(row["device_id"], message):
                    return
                detail = f"rolled back: {previous} published as its desired release"
                ROLLED_BACK.inc()
            else:
                detail = (
                    f"no rollback: its previous release {previous or '(unknown)'} is not "
                    "published on this control plane"
                )
                log.warning("rollout %s: %s for %s", rollout_id, detail, row["device_id"])
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
