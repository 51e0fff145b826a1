"""The agent events alerts read, kept per device: ``app.crash_loop``, ``app.recovered`` and
``os.update``.

The ingest hands each ``sf.event`` here (:func:`record_event`); only the kinds in
:data:`KEPT` are stored, with their body bounded, and older ones of a device and kind are
pruned so a device that flaps cannot grow the table without bound (nor push its last OS update
out with crash loops). An ``os.update`` that says ``reverted`` is also counted and logged here,
once as it arrives: the appliance tried an OS and came back on its old one (issue 15).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.tables import device_events
from protocols.vocabulary import EventKind

log = logging.getLogger(__name__)

KEPT = frozenset(
    {EventKind.APP_CRASH_LOOP.value, EventKind.APP_RECOVERED.value, EventKind.OS_UPDATE.value}
)
#: Events kept per device and kind (the newest); the rules read only the newest.
PER_DEVICE = 20
BODY_LIMIT = 4096

OS_UPDATES = Counter(
    "storefleet_os_updates",
    "OS update outcomes the appliances reported (os.update), by state; reverted is a failure",
    ["state"],
)


async def record_event(
    engine: AsyncEngine, device_id: str, *, kind: str, ts: int, body: dict[str, Any], now_ms: int
) -> bool:
    """Store an event the alerts read; False (nothing stored) for every other kind."""
    if kind not in KEPT:
        return False
    text = json.dumps(body, sort_keys=True, default=str)
    if len(text) > BODY_LIMIT:
        short = {k: body.get(k) for k in ("failures", "version", "state") if k in body}
        text = json.dumps(short, default=str)
    async with engine.begin() as conn:
        await conn.execute(
            insert(device_events).values(
                device_id=device_id, kind=kind, ts=ts, received_at=now_ms, body=text
            )
        )
        keep = (
            select(device_events.c.id)
            .where(device_events.c.device_id == device_id, device_events.c.kind == kind)
            .order_by(device_events.c.id.desc())
            .limit(PER_DEVICE)
            .scalar_subquery()
        )
        await conn.execute(
            delete(device_events).where(
                device_events.c.device_id == device_id,
                device_events.c.kind == kind,
                device_events.c.id.not_in(keep),
            )
        )
    if kind == EventKind.OS_UPDATE.value:
        _os_update_said(device_id, body)
    return True


def _os_update_said(device_id: str, body: dict[str, Any]) -> None:
    state = str(body.get("state", ""))[:32]
    OS_UPDATES.labels(state or "unknown").inc()
    if state == "reverted":
        log.warning(
            "device %s: OS update %s reverted (%s); it runs its previous OS slot again: fix the"
            " image, then send os.install again (the alert 'os update reverted' stays open"
            " until an update succeeds)",
            device_id,
            body.get("version"),
            body.get("detail"),
        )
