"""Serial (RS-232 or USB-CDC) barcode scanners through pyserial-asyncio-fast.

How it works: a serial scanner sends each barcode as one frame, ``[prefix][AIM id]data[suffix]``
followed by a terminator (CR by default). :class:`SerialScanner` reads frames up to the
terminator, strips the affixes and hands a :class:`Scan` to ``on_scan``. Bytes that are not
valid in the configured encoding are counted and replaced. When the port errors or vanishes
(cable pulled) it is reopened after a jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import random

import serial_asyncio_fast

from edge.peripherals.errors import DeviceUnavailableError
from edge.peripherals.health import DeviceHealth
from edge.peripherals.scanner.scan import OnScan, Scan, strip_affixes
from edge.peripherals.scanner.settings import SerialScannerSettings
from edge.peripherals.serial_reopen import keep_port_open
from mqttlink.tasks import ServiceTasks

MAX_FRAME = 4096


class SerialScanner:
    """``async with SerialScanner(name=…, settings=…, on_scan=…):``."""

    def __init__(
        self,
        *,
        name: str,
        settings: SerialScannerSettings,
        on_scan: OnScan,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.on_scan = on_scan
        self.health = DeviceHealth(device=name, kind="scanner")
        self.sessions = 0
        self._rng = random.Random(seed)
        self._tasks = ServiceTasks(f"serial scanner {name}")

    async def __aenter__(self) -> SerialScanner:
        await self._tasks.start()
        self._tasks.spawn(self._run(), name=f"serial-scanner:{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._tasks.stop()

    async def _run(self) -> None:
        await keep_port_open(
            self._session,
            health=self.health,
            hint="check the scanner cable; reopening the port",
            sessions=lambda: self.sessions,
            backoff_base_s=self.settings.backoff_base_s,
            backoff_cap_s=self.settings.backoff_cap_s,
            rng=self._rng,
        )

    async def _session(self) -> None:
        s = self.settings
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=s.port, baudrate=s.baudrate
        )
        self.sessions += 1
        self.health.seen()
        terminator = s.terminator.encode("latin-1")
        try:
            while True:
                try:
                    frame = await reader.readuntil(terminator)
                except asyncio.IncompleteReadError as err:
                    raise DeviceUnavailableError("port closed", device=self.name) from err
                except asyncio.LimitOverrunError as err:
                    # no terminator in a long run of bytes: line noise or a wrong config
                    await reader.readexactly(err.consumed)
                    self.health.count("frame_garbled")
                    continue
                self._frame(frame[: -len(terminator)])
        finally:
            writer.close()

    def _frame(self, raw: bytes) -> None:
        raw = raw.lstrip(b"\n")  # CR LF terminators leave the LF at the next frame's start
        if not raw:
            return
        if len(raw) > MAX_FRAME:
            self.health.count("frame_garbled")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.health.count("frame_garbled")
            text = raw.decode("utf-8", "replace")
        s = self.settings
        text, symbology = strip_affixes(text, prefix=s.prefix, suffix=s.suffix, aim=s.aim_ids)
        self.health.seen()
        self.health.count("scans")
        self.on_scan(Scan(text=text, scanner=self.name, symbology=symbology))
