"""The ``simulated`` preset: a store's devices as simulators, with the real drivers pointed at them.

Why: the demo, a developer's laptop and the end-to-end tests run the same product code as a
store. Each simulator speaks its device's wire protocol (ESC/POS + DLE EOT over TCP, LLRP over
TCP, serial scanner frames on a pty, evdev key events on a simulated input bus), so the hub and
its drivers cannot tell; only the HID scanner needs the bus handed in as its ``DeviceSource``,
because evdev devices cannot be made without root (uinput).

``async with simulated_store(workdir=…) as store:`` yields the simulators and
``store.devices``, a :class:`RegisterDevices` naming their loopback ports and pty paths.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.peripherals.printer.simulator import PrinterSimulator
from edge.peripherals.register_config import (
    DrawerConfig,
    PrinterConfig,
    RegisterDevices,
    RfidReaderConfig,
    SerialScannerConfig,
)
from edge.peripherals.rfid.llrp_simulator import LlrpReaderSimulator
from edge.peripherals.rfid.tag_field import TagField, make_gtin, sgtin_population
from edge.peripherals.scanner.hid_simulator import SimulatedInputBus
from edge.peripherals.scanner.serial_simulator import SerialScannerSimulator
from edge.peripherals.scanner.settings import WedgeSettings

HID_SCANNER_PATH = "/dev/input/event-sim0"
HID_SCANNER_NAME = "Simulated Barcode Scanner"

#: What stands on the simulated shelf by default: 8 GTINs, 25 tagged units each.
DEFAULT_SHELF: dict[str, int] = {make_gtin("0614141", item): 25 for item in range(1, 9)}


@dataclass(frozen=True, slots=True)
class SimulatedStore:
    """The running simulators and the device config that points at them."""

    devices: RegisterDevices
    printer: PrinterSimulator
    rfid: LlrpReaderSimulator
    serial_scanner: SerialScannerSimulator
    hid_bus: SimulatedInputBus


def shelf_tags(
    shelf: Mapping[str, int], *, reads_per_second: float | None = 2000, seed: int = 0
) -> TagField:
    """A tag field with ``shelf[gtin]`` SGTIN-96 tags per GTIN (company prefix of 7 digits)."""
    return TagField(
        epcs=sgtin_population(dict(shelf)),
        miss_rate=0.2,
        antennas=(1, 2),
        reads_per_second=reads_per_second,
        seed=seed,
    )


@contextlib.asynccontextmanager
async def simulated_store(
    *,
    workdir: Path,
    tags: TagField | None = None,
    keepalive_ms: int = 5000,
    retry_s: float = 0.5,
    status_poll_s: float = 5.0,
) -> AsyncIterator[SimulatedStore]:
    """Start every simulator; yields once they listen.

    The printer retries and polls faster than a store's defaults (``retry_s``, ``status_poll_s``)
    so a demo shows "paper back → receipt prints" within a second or two.
    """
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with (
        PrinterSimulator() as printer,
        LlrpReaderSimulator(field=tags or shelf_tags(DEFAULT_SHELF)) as rfid,
        SerialScannerSimulator(link=workdir / "ttyScanner0") as serial_scanner,
    ):
        bus = SimulatedInputBus()
        bus.plug(HID_SCANNER_PATH, HID_SCANNER_NAME)
        devices = RegisterDevices(
            preset="simulated",
            printer=PrinterConfig(
                name="receipt-printer",
                connector="network",
                host=printer.host,
                port=printer.port,
                retry_base_s=retry_s,
                retry_cap_s=retry_s * 4,
                status_poll_s=status_poll_s,
            ),
            drawer=DrawerConfig(name="cash-drawer"),
            hid_scanners=WedgeSettings(name_contains=("Barcode Scanner",), poll_s=0.2),
            serial_scanners=(
                SerialScannerConfig(
                    name="hand-scanner", port=str(serial_scanner.path), backoff_base_s=0.05
                ),
            ),
            rfid=(
                RfidReaderConfig(
                    name="door-reader",
                    kind="llrp",
                    host=rfid.host,
                    port=rfid.port,
                    keepalive_ms=keepalive_ms,
                    backoff_base_s=0.05,
                    backoff_cap_s=1.0,
                ),
            ),
            print_queue=workdir / "print-queue.db",
        )
        yield SimulatedStore(
            devices=devices,
            printer=printer,
            rfid=rfid,
            serial_scanner=serial_scanner,
            hid_bus=bus,
        )
