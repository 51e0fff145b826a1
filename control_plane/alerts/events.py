"""The agent events alerts read, kept per device: ``app.crash_loop`` and ``app.recovered``.

The ingest hands each ``sf.event`` here (:func:`record_event`); only the kinds in
:data:`KEPT` are stored, with their body bounded, and older ones of a device are pruned so a
device that flaps cannot grow the table without bound.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.tables import device_events
from protocols.vocabulary import EventKind

KEPT = frozenset({EventKind.APP_CRASH_LOOP.value, EventKind.APP_RECOVERED.value})
#: Events kept per device (the newest); the rules read only the newest.
PER_DEVICE = 20
BODY_LIMIT = 4096


async def record_event(
    engine: AsyncEngine, device_id: str, *, kind: str, ts: int, body: dict[str, Any], now_ms: int
) -> bool:
    """Store an event the alerts read; False (nothing stored) for every other kind."""
    if kind not in KEPT:
        return False
    text = json.dumps(body, sort_keys=True, default=str)
    if len(text) > BODY_LIMIT:
        text = json.dumps({"failures": body.get("failures")}, default=str)
    async with engine.begin() as conn:
        await conn.execute(
            insert(device_events).values(
                device_id=device_id, kind=kind, ts=ts, received_at=now_ms, body=text
            )
        )
        keep = (
            select(device_events.c.id)
            .where(device_events.c.device_id == device_id)
            .order_by(device_events.c.id.desc())
            .limit(PER_DEVICE)
            .scalar_subquery()
        )
        await conn.execute(
            delete(device_events).where(
                device_events.c.device_id == device_id, device_events.c.id.not_in(keep)
            )
        )
    return True
