"""A device's ``release.progress`` event moves its state in the rollout (called by the ingest).

How it works: the event's body is the bundle format's :class:`ReleaseProgress`; one that is not
is a :class:`~protocols.errors.MalformedMessage` (counted and dropped by the ingest like any).
It names its rollout (``rollout``; or None: the newest rollout of the device for that version).
A report only moves a device forward (a late "downloading" after "installing" is kept in the
history, not applied), never out of a final state, and not for a rollback's version.

"succeeded" is believed only with the device's retained ``State`` showing the new
``app_release``: otherwise the device stays ``confirming`` with ``reported_succeeded`` set, and
the driver settles it when the State arrives — or fails it at the deadline, because a device that
says "succeeded" while running the old release has fallen back (hawkBit #3185).
"""

from __future__ import annotations

import json
import time
from typing import Literal

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import device_state
from control_plane.rollouts import model
from control_plane.rollouts.tables import rollout_device_history, rollout_devices, rollouts
from protocols.errors import MalformedMessage
from protocols.messages import Event
from protocols.release_bundle import ReleaseProgress

Applied = Literal["applied", "unknown", "ignored"]
#: The event kind (``protocols.vocabulary.EventKind.RELEASE_PROGRESS``'s value).
KIND = "release.progress"


def parse(event: Event) -> ReleaseProgress:
    """The event's body as progress, or :class:`MalformedMessage`."""
    try:
        return ReleaseProgress.model_validate(event.body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise MalformedMessage(f"release.progress {where}: {first['msg']}") from err


def _rank(state: str) -> int:
    return model.STATES.index(state)


async def apply_progress(
    engine: AsyncEngine, device_id: str, event: Event, *, now_ms: int | None = None
) -> Applied:
    """Apply one progress report of ``device_id``; says whether it moved anything."""
    progress = parse(event)
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    query = (
        select(
            rollout_devices,
            rollouts.c.release_version,
            rollouts.c.deadlines,
            rollouts.c.status,
        )
        .join(rollouts, rollouts.c.id == rollout_devices.c.rollout_id)
        .where(
            rollout_devices.c.device_id == device_id,
            rollouts.c.release_version == progress.version,
        )
        .order_by(rollouts.c.created_at.desc())
        .limit(1)
    )
    if progress.rollout is not None:
        query = query.where(rollout_devices.c.rollout_id == progress.rollout)
    async with engine.begin() as conn:
        row = (await conn.execute(query)).mappings().first()
        if row is None:
            return "unknown"
        new = progress.state.value
        old = row["state"]
        history = {
            "rollout_id": row["rollout_id"],
            "device_id": device_id,
            "state": new,
            "detail": f"device: {progress.detail}"[:2000],
            "at": now,
        }
        stale = (
            row["notified_at"] is None
            or row["rolled_back_at"] is not None
            or old in model.FINAL
            or (new not in model.FINAL and _rank(new) < _rank(old))
        )
        if stale:
            history["detail"] = f"not applied (device is {old}): {history['detail']}"[:2000]
            await conn.execute(insert(rollout_device_history).values(history))
            return "ignored"
        detail = progress.detail
        reported_succeeded = False
        if new == "succeeded":
            running = (
                await conn.execute(
                    select(device_state.c.app_release).where(device_state.c.device_id == device_id)
                )
            ).scalar()
            if running != progress.version:
                new, reported_succeeded = "confirming", True
                detail = (
                    f"reported succeeded; waiting for its state to show {progress.version} "
                    f"(it shows {running or 'nothing'})"
                )
        seconds = model.deadline_s(json.loads(row["deadlines"]), new)
        await conn.execute(
            update(rollout_devices)
            .where(
                rollout_devices.c.rollout_id == row["rollout_id"],
                rollout_devices.c.device_id == device_id,
                rollout_devices.c.state == old,
            )
            .values(
                state=new,
                detail=detail[:2000],
                state_at=now,
                deadline_at=None if seconds is None else now + seconds * 1000,
                reported_succeeded=reported_succeeded or row["reported_succeeded"],
            )
        )
        history["state"] = new
        await conn.execute(insert(rollout_device_history).values(history))
    return "applied"
