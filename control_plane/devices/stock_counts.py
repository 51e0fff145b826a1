"""Stock counts as the stores committed them: ``stock_count.committed`` records of the journal.

A count is committed to the appliance's ledger (the store's truth) and reaches the cloud by
replication like a sale, so the cloud reads it from the replicated journal instead of from the
command's result: a count stopped while the control plane was away still shows up, exactly once.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.vocabulary import JournalKind

#: The journal kind the appliance commits a count under (``edge/peripherals/rfid/count.py``).
COMMITTED = JournalKind.STOCK_COUNT_COMMITTED


async def list_stock_counts(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    store_id: str | None = None,
    device_id: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Committed counts in scope, newest first, each with its variance report as written."""
    query = (
        select(journal.c.device_id, journal.c.seq, journal.c.ts, journal.c.body, devices.c.store_id)
        .join(devices, devices.c.id == journal.c.device_id)
        .where(journal.c.kind == COMMITTED, scope.where(devices.c.tenant_id))
        .order_by(journal.c.ts.desc(), journal.c.device_id, journal.c.seq.desc())
        .limit(limit)
    )
    if store_id is not None:
        query = query.where(devices.c.store_id == store_id)
    if device_id is not None:
        query = query.where(journal.c.device_id == device_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        {
            "device_id": row["device_id"],
            "store_id": row["store_id"],
            "seq": row["seq"],
            "ts": row["ts"],
            "report": json.loads(row["body"]),
        }
        for row in rows
    ]
