"""The appliance process: the ledger plus the replicator (and, for now, a simulated register).

The kiosk and peripherals join this process in later releases; the fleet agent stays separate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from edge.ledger import CommittedSale, Ledger
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.settings import EdgeSettings
from edge.simulated_register import RingSettings, ring_sales
from mqttlink.tasks import ServiceTasks

log = logging.getLogger(__name__)

VERSION = "0.1.0"


async def run_appliance(
    settings: EdgeSettings,
    *,
    ring: RingSettings | None = None,
    replication: ReplicationSettings | None = None,
    on_commit: Callable[[CommittedSale], None] | None = None,
) -> None:
    """Run until cancelled: replication always, a simulated register when ``ring`` is given."""
    async with Ledger(settings.ledger_path, register_id=settings.register_id) as ledger:
        log.info(
            "appliance %s: ledger %s at seq %d, %d not yet replicated",
            settings.device_id,
            settings.ledger_path,
            ledger.last_seq,
            ledger.backlog,
        )
        replicator = Replicator(
            ledger=ledger,
            device_id=settings.device_id,
            broker=settings.broker,
            settings=replication,
            versions={"app": VERSION},
        )
        async with ServiceTasks(f"appliance {settings.device_id}") as tasks:
            tasks.spawn(replicator.run(), name=f"replicator-{settings.device_id}")
            if ring is not None:
                tasks.spawn(
                    ring_sales(ledger, ring, currency=settings.currency, on_commit=on_commit),
                    name=f"register-{settings.device_id}",
                )
            await asyncio.Event().wait()  # until cancelled: leaving would stop the tasks
