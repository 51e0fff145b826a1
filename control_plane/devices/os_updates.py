"""A device's OS updates as its agent reported them: the ``os.update`` events the ingest keeps.

Why from events and not only from the state: the retained state says how the *last* boot went
(the ``os`` entry: slot, version, a revert as its error), while the events are each install's
steps (``installing`` or ``failed`` from the root helper, ``confirming`` during the one try,
``succeeded`` or ``reverted`` at the end), so the device page can say what the last update did
and when. Kept in ``device_events`` (control_plane.alerts.events, the newest 20 a device).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.tables import device_events
from control_plane.devices.tables import devices
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.vocabulary import EventKind


async def list_os_updates(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The device's ``os.update`` events in scope, newest first: version, state, detail, when."""
    query = (
        select(device_events.c.ts, device_events.c.received_at, device_events.c.body)
        .join(devices, devices.c.id == device_events.c.device_id)
        .where(
            device_events.c.device_id == device_id,
            device_events.c.kind == EventKind.OS_UPDATE.value,
            scope.where(devices.c.tenant_id),
        )
        .order_by(device_events.c.id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    out = []
    for ts, received_at, text in rows:
        try:
            body = json.loads(text)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        out.append(
            {
                "ts": int(ts),
                "received_at": int(received_at),
                "version": str(body.get("version") or ""),
                "state": str(body.get("state") or ""),
                "detail": str(body.get("detail") or ""),
            }
        )
    return out
