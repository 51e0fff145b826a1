"""Serial UHF reader client (R2000 "0xA0" protocol) over pyserial-asyncio-fast.

How it works: one loop for the client's lifetime. Each pass opens the serial port, asks for the
firmware version (proves the module answers), then runs inventory rounds: for each configured
antenna, cmd_set_work_antenna, then cmd_real_time_inventory; tag frames go to ``on_read`` until
the end-of-round frame. Corrupt frames are counted and skipped (the codec says how many bytes to
drop to resync); a round that goes quiet is counted and re-issued; a port that errors or
vanishes is closed and reopened after a jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import serial_asyncio_fast

from edge.peripherals.errors import DeviceUnavailableError
from edge.peripherals.health import DeviceHealth
from edge.peripherals.metrics import RFID_READS
from edge.peripherals.rfid.observation import OnRead, TagObservation
from edge.peripherals.serial_reopen import keep_port_open
from mqttlink.tasks import ServiceTasks
from protocols import uhf_serial as uhf

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialReaderSettings:
    """Port and timing of a serial UHF reader."""

    port: str
    baudrate: int = 115200
    address: int = 0xFF  # broadcast: any module answers
    antennas: tuple[int, ...] = (1,)
    response_timeout_s: float = 2.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0


class _RoundTimeoutError(Exception):
    """No frame within the response timeout."""


class SerialUhfReader:
    """``async with SerialUhfReader(name=…, settings=…, on_read=…) as reader:``."""

    def __init__(
        self,
        *,
        name: str,
        settings: SerialReaderSettings,
        on_read: OnRead,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.on_read = on_read
        self.health = DeviceHealth(device=name, kind="rfid")
        self.firmware: tuple[int, int] | None = None
        self.rounds = 0
        self.sessions = 0
        self._rng = random.Random(seed)
        self._tasks = ServiceTasks(f"UHF reader {name}")

    async def __aenter__(self) -> SerialUhfReader:
        await self._tasks.start()
        self._tasks.spawn(self._run(), name=f"uhf:{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._tasks.stop()

    async def _run(self) -> None:
        await keep_port_open(
            self._session,
            health=self.health,
            hint="check the reader's USB cable; reopening the port",
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
        link = _Link(self, reader, writer)
        try:
            reply = await link.command(uhf.CMD_GET_FIRMWARE_VERSION)
            self.firmware = (reply.data[0], reply.data[1]) if len(reply.data) == 2 else None
            self.sessions += 1
            self.health.seen()
            while True:
                for antenna in s.antennas:
                    if len(s.antennas) > 1:
                        await link.command(uhf.CMD_SET_WORK_ANTENNA, bytes((antenna - 1,)))
                    await link.inventory_round()
                    self.rounds += 1
        finally:
            writer.close()


class _Link:
    """One open serial port."""

    def __init__(
        self,
        owner: SerialUhfReader,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.owner = owner
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()

    def send(self, cmd: int, data: bytes = b"") -> None:
        command = uhf.Command(address=self.owner.settings.address, cmd=cmd, data=data)
        self.writer.write(uhf.encode_command(command))

    async def command(self, cmd: int, data: bytes = b"") -> uhf.Reply:
        """Send a command and wait for its reply, re-sending after a silent timeout."""
        for _ in range(3):
            self.send(cmd, data)
            try:
                while True:
                    frame = await self.next_frame()
                    if isinstance(frame, uhf.Reply) and frame.cmd == cmd:
                        return frame
            except _RoundTimeoutError:
                self.owner.health.count("timeout")
        raise DeviceUnavailableError(f"no reply to command {cmd:#04x}", device=self.owner.name)

    async def inventory_round(self) -> None:
        """One real-time inventory: tags until the end-of-round frame (or an error reply)."""
        self.send(uhf.CMD_REAL_TIME_INVENTORY, b"\x01")
        name = self.owner.name
        while True:
            try:
                frame = await self.next_frame()
            except _RoundTimeoutError:
                self.owner.health.count("round_timeout")
                return  # the end frame was lost on the line; the next round re-asks
            if isinstance(frame, uhf.TagRead):
                self.owner.on_read(TagObservation(frame.epc, frame.antenna, frame.rssi_dbm, name))
                RFID_READS.labels(device=name).inc()
            elif isinstance(frame, uhf.InventoryDone):
                return
            elif frame.cmd == uhf.CMD_REAL_TIME_INVENTORY:
                self.owner.health.count(f"reader_error_{frame.data.hex()}")
                return

    async def next_frame(self) -> uhf.Response:
        """Decode the next frame, counting and skipping corrupt bytes."""
        while True:
            try:
                frame, used = uhf.decode_response(self.buf)
            except uhf.Incomplete:
                await self._fill()
                continue
            except uhf.Malformed as err:
                event = "checksum_error" if err.reason.startswith("checksum") else "frame_garbled"
                self.owner.health.count(event)
                log.debug("uhf %s: %s", self.owner.name, err)
                del self.buf[: err.discard]
                continue
            del self.buf[:used]
            self.owner.health.seen()
            return frame

    async def _fill(self) -> None:
        try:
            async with asyncio.timeout(self.owner.settings.response_timeout_s):
                chunk = await self.reader.read(4096)
        except TimeoutError as err:
            raise _RoundTimeoutError from err
        if not chunk:
            raise DeviceUnavailableError("serial port closed", device=self.owner.name)
        self.buf += chunk
