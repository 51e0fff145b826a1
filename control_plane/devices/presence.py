"""Presence and replication health from the devices' own status and telemetry messages."""

from __future__ import annotations

import json
import time

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.tables import devices
from protocols.messages import Status, Telemetry


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def apply_status(engine: AsyncEngine, device_id: str, status: Status) -> bool:
    """Record online/offline (the offline form is the broker's last will); False if unknown."""
    values: dict[str, object] = {"online": status.state == "online", "last_seen_at": _now_ms()}
    if status.boot_id:
        values |= {"boot_id": status.boot_id, "versions": json.dumps(status.versions)}
    async with engine.begin() as conn:
        result = await conn.execute(
            update(devices).where(devices.c.id == device_id).values(**values)
        )
    return bool(result.rowcount)


async def apply_telemetry(engine: AsyncEngine, device_id: str, beat: Telemetry) -> bool:
    """Record the appliance's view of its backlog and lag; a heartbeat also means online."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(devices)
            .where(devices.c.id == device_id)
            .values(
                online=True,
                last_seen_at=_now_ms(),
                backlog=beat.backlog,
                reported_seq=beat.last_seq,
                lag_ms=beat.lag_ms,
            )
        )
    return bool(result.rowcount)
