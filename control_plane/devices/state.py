"""The state each device reports (retained ``sf.state``): release, config, slot, peripheral health.

The cloud keeps only the latest message per device: it is a report, not history (the journal is
the history). Each control-plane instance receives every retained state and writes the same row,
so the write is an idempotent upsert, portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.tables import device_state, devices
from protocols.messages import State


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def apply_state(engine: AsyncEngine, device_id: str, state: State) -> bool:
    """Keep ``state`` as the device's latest report; False if the device is not registered."""
    values: dict[str, object] = {
        "config_version": state.config_version,
        "app_release": state.app_release,
        "slot": state.slot,
        "peripherals": json.dumps(state.peripherals, sort_keys=True, default=str),
        "received_at": _now_ms(),
    }
    for _attempt in range(2):  # a concurrent first insert by another instance: update instead
        try:
            async with engine.begin() as conn:
                changed = await conn.execute(
                    update(device_state)
                    .where(device_state.c.device_id == device_id)
                    .values(**values)
                )
                if changed.rowcount:
                    return True
                known = await conn.execute(select(devices.c.id).where(devices.c.id == device_id))
                if known.first() is None:
                    return False
                await conn.execute(insert(device_state).values(device_id=device_id, **values))
                return True
        except IntegrityError:
            continue
    return True


def _decoded(row: RowMapping) -> dict[str, Any]:
    out = dict(row)
    out["peripherals"] = json.loads(row["peripherals"])
    return out


async def get_state(engine: AsyncEngine, *, device_id: str) -> dict[str, Any] | None:
    """The device's latest report, peripherals decoded; None before its first one."""
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(device_state).where(device_state.c.device_id == device_id)))
            .mappings()
            .first()
        )
    return None if row is None else _decoded(row)


async def states_by_device(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """Every device's latest report, for the fleet table."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(device_state))).mappings().all()
    return {row["device_id"]: _decoded(row) for row in rows}


def problems(peripherals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What an operator should look at, one line per peripheral that is not well.

    The printer's error already names the device ("receipt-printer: out of paper"), so it is shown
    as is; a device that is merely disconnected says so.
    """
    found: list[str] = []
    for name, health in sorted(peripherals.items()):
        error = health.get("error")
        if error:
            found.append(str(error) if str(error).startswith(name) else f"{name}: {error}")
        elif health.get("connected") is False:
            found.append(f"{name}: disconnected")
    return found
