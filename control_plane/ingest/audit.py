"""Re-verifying a device's stored chain from what the cloud holds, byte for byte.

Ingest verifies every link as it stores it; this walks the stored history again, for audits and
for the tests that prove nothing was lost, reordered or booked twice. It checks the records up to
the high-water mark it read first, so an audit running beside the ingest does not mistake a batch
stored meanwhile for a fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from protocols.chain import GENESIS, verify_link


@dataclass(frozen=True, slots=True)
class ChainAudit:
    """Result of walking one device's stored journal."""

    device_id: str
    records: int
    hwm: int
    ok: bool
    problem: str | None = None


async def audit_chain(engine: AsyncEngine, *, device_id: str) -> ChainAudit:
    """Walk the stored journal of ``device_id`` from seq 1 and check every link and the hwm."""
    async with engine.connect() as conn:
        hwm = (
            await conn.execute(select(devices.c.hwm).where(devices.c.id == device_id))
        ).scalar_one()
        rows = await conn.stream(
            select(
                journal.c.seq,
                journal.c.kind,
                journal.c.ts,
                journal.c.prev_hash,
                journal.c.hash,
                journal.c.body,
            )
            # records past the hwm read above belong to a batch stored since: a later audit's
            .where(journal.c.device_id == device_id, journal.c.seq <= hwm)
            .order_by(journal.c.seq)
        )
        prev, expected = GENESIS, 1
        async for seq, kind, ts, prev_hash, digest, body in rows:
            problem = None
            if seq != expected:
                problem = f"expected seq {expected}, found {seq}"
            elif prev_hash != prev or not verify_link(
                prev_hash=prev, seq=seq, kind=kind, ts=ts, body=json.loads(body), claimed=digest
            ):
                problem = f"bad link at seq {seq}"
            if problem is not None:
                return ChainAudit(device_id, expected - 1, int(hwm), ok=False, problem=problem)
            prev, expected = digest, expected + 1
    records = expected - 1
    if records != hwm:
        return ChainAudit(
            device_id,
            records,
            int(hwm),
            ok=False,
            problem=f"{records} records stored but hwm is {hwm}",
        )
    return ChainAudit(device_id, records, int(hwm), ok=True)
