"""Presence and replication health from the devices' own status and telemetry messages.

A status is checked against what the device row can hold before it is written (a boot id of 64
printable characters, short version labels): one that does not fit is refused as a malformed
message instead of failing in the database (PostgreSQL refuses a NUL or an over-long value).
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.ingest.refusal import refused
from protocols.limits import MAP_ENTRIES, Identifier, Label, OptionalIdentifier
from protocols.messages import Status, Telemetry


class ReportedStatus(BaseModel):
    """What a ``status`` may write into the device row."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    boot_id: OptionalIdentifier = ""
    versions: Annotated[dict[Identifier, Label], Field(max_length=MAP_ENTRIES)] = Field(
        default_factory=dict
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def apply_status(engine: AsyncEngine, device_id: str, status: Status) -> bool:
    """Record online/offline (the offline form is the broker's last will); False if unknown.

    Raises :class:`~protocols.errors.MalformedMessage` for a status the row cannot hold.
    """
    try:
        ReportedStatus.model_validate({"boot_id": status.boot_id, "versions": status.versions})
    except ValidationError as err:
        raise refused(Status.schema_name, err) from err
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
