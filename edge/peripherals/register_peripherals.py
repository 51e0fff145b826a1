"""Bring a register's peripherals up from its config: real devices, or the simulated preset.

The one call the kiosk/appliance process makes::

    devices = load_register_devices()            # STOREFLEET_PERIPHERALS_* (see register_config)
    async with open_register_peripherals(devices, journal=ledger, data_dir=state_dir) as hub:
        printer = HubReceiptPrinter(hub=hub, register_id=...)   # the register's printer seam
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from edge.peripherals.hub import PeripheralHub
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.rfid.count import JournalWriter
from edge.peripherals.rfid.tag_field import TagField
from edge.peripherals.simulated_store import simulated_store


@contextlib.asynccontextmanager
async def open_register_peripherals(
    devices: RegisterDevices,
    *,
    journal: JournalWriter,
    data_dir: Path,
    simulated_tags: TagField | None = None,
) -> AsyncIterator[PeripheralHub]:
    """The running hub; with the ``simulated`` preset the simulators run for as long as it does."""
    async with contextlib.AsyncExitStack() as stack:
        hid_source = None
        if devices.simulated:
            store = await stack.enter_async_context(
                simulated_store(workdir=data_dir / "simulated-devices", tags=simulated_tags)
            )
            devices, hid_source = store.devices, store.hid_bus
        hub = PeripheralHub(
            devices=devices, journal=journal, data_dir=data_dir, hid_source=hid_source
        )
        yield await stack.enter_async_context(hub)
