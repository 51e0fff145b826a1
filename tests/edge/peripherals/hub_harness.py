"""A running hub on the simulated store, over a real ledger: what the hub and agent tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from edge.ledger import Ledger
from edge.peripherals.hub import PeripheralHub
from edge.peripherals.rfid.tag_field import TagField
from edge.peripherals.simulated_store import SimulatedStore, simulated_store


@dataclass(frozen=True, slots=True)
class RunningHub:
    """The simulators, the ledger the hub journals into, and the hub."""

    store: SimulatedStore
    ledger: Ledger
    hub: PeripheralHub


@contextlib.asynccontextmanager
async def running_hub(
    tmp_path: Path, *, tags: TagField | None = None, ledger: Ledger | None = None
) -> AsyncIterator[RunningHub]:
    """Simulated store + ledger + hub, with fast printer retries (so paper back prints soon)."""
    async with contextlib.AsyncExitStack() as stack:
        if ledger is None:
            ledger = await stack.enter_async_context(
                Ledger(tmp_path / "ledger.db", register_id="1")
            )
        store = await stack.enter_async_context(
            simulated_store(workdir=tmp_path / "devices", tags=tags, retry_s=0.02)
        )
        hub = await stack.enter_async_context(
            PeripheralHub(
                devices=store.devices,
                journal=ledger,
                data_dir=tmp_path,
                hid_source=store.hid_bus,
            )
        )
        yield RunningHub(store=store, ledger=ledger, hub=hub)
