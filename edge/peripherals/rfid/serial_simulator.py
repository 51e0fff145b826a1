"""A serial R2000-module UHF reader on a pty, speaking the real "0xA0" frames.

It answers cmd_real_time_inventory with one frame per tag seen in a round of its
:class:`TagField` and the end-of-round frame, cmd_set_work_antenna and
cmd_get_firmware_version like a module does. Line faults on demand, from a seeded RNG:
``corrupt_rate`` flips a byte in a frame (checksum error), ``noise_rate`` writes stray bytes
between frames, ``truncate_next_round()`` sends half a frame and unplugs (a cable pulled mid-job).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from edge.peripherals.pty_port import PtyPort
from edge.peripherals.rfid.tag_field import TagField
from mqttlink.tasks import ServiceTasks
from protocols import uhf_serial as uhf


class SerialUhfSimulator:
    """``async with SerialUhfSimulator(field=…, link=tmp/"ttyUHF0") as sim:``."""

    def __init__(
        self,
        *,
        field: TagField,
        link: Path,
        address: int = 1,
        corrupt_rate: float = 0.0,
        noise_rate: float = 0.0,
    ) -> None:
        self.field = field
        self.port = PtyPort(link=link)
        self.address = address
        self.corrupt_rate = corrupt_rate
        self.noise_rate = noise_rate
        self.rounds = 0
        self.work_antenna = 1
        self.corrupted = 0
        self._truncate = False
        self._rng = random.Random(field.seed)
        self._tasks = ServiceTasks(f"UHF reader simulator {link}")
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        """Where the client opens the reader."""
        return self.port.path

    async def __aenter__(self) -> SerialUhfSimulator:
        await self._tasks.start()
        await self.plug_in()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unplug()
        await self._tasks.stop()

    async def plug_in(self) -> None:
        """Connect the reader (again)."""
        if self._task is not None:
            await asyncio.wait([self._task])  # the previous connection ended (it unplugged itself)
        self.port.plug_in()
        self._task = self._tasks.spawn(self._serve(), name="uhf-sim")

    async def unplug(self) -> None:
        """Pull the USB cable."""
        self.port.unplug()
        if self._task is not None:
            await asyncio.wait([self._task])  # returns: read() gives b"" once unplugged
            self._task = None

    def truncate_next_round(self) -> None:
        """In the next round, send half a tag frame and then disappear."""
        self._truncate = True

    async def _serve(self) -> None:
        buf = bytearray()
        while chunk := await self.port.read():
            buf += chunk
            while True:
                try:
                    command, used = uhf.decode_request(buf)
                except uhf.Incomplete:
                    break
                except uhf.Malformed as err:
                    del buf[: err.discard]
                    continue
                del buf[:used]
                if not await self._answer(command):
                    return

    async def _answer(self, c: uhf.Command) -> bool:
        """Reply to one command; False when the simulator unplugged itself."""
        reply = uhf.Reply(address=self.address, cmd=c.cmd, data=bytes((uhf.SUCCESS,)))
        if c.cmd == uhf.CMD_SET_WORK_ANTENNA:
            self.work_antenna = c.data[0] + 1
            await self._send(uhf.encode_response(reply))
        elif c.cmd == uhf.CMD_GET_FIRMWARE_VERSION:
            version = uhf.Reply(address=self.address, cmd=c.cmd, data=b"\x08\x01")
            await self._send(uhf.encode_response(version))
        elif c.cmd == uhf.CMD_REAL_TIME_INVENTORY:
            return await self._inventory_round()
        else:
            error = uhf.Reply(address=self.address, cmd=c.cmd, data=b"\x11")  # command fail
            await self._send(uhf.encode_response(error))
        return True

    async def _inventory_round(self) -> bool:
        self.rounds += 1
        seen = self.field.round(self._rng)
        for epc, _antenna, rssi in seen:
            tag = uhf.TagRead(
                address=self.address,
                antenna=self.work_antenna,
                channel=self._rng.randrange(50),
                pc=(len(epc) // 2) << 11,
                epc=epc,
                rssi_dbm=rssi,
            )
            wire = uhf.encode_response(tag)
            if self._truncate:
                self._truncate = False
                await self._send(wire[: len(wire) // 2])
                self.port.unplug()
                return False
            await self._send(wire)
        done = uhf.InventoryDone(
            address=self.address,
            antenna=self.work_antenna,
            read_rate=len(seen),
            total_reads=len(seen),
        )
        await self._send(uhf.encode_response(done))
        if self.field.reads_per_second:
            await asyncio.sleep(len(seen) / self.field.reads_per_second)
        return True

    async def _send(self, wire: bytes) -> None:
        if self.noise_rate and self._rng.random() < self.noise_rate:
            await self.port.write(bytes(self._rng.randrange(256) for _ in range(3)))
        if self.corrupt_rate and self._rng.random() < self.corrupt_rate:
            self.corrupted += 1
            damaged = bytearray(wire)
            damaged[self._rng.randrange(2, len(damaged))] ^= 0x5A
            wire = bytes(damaged)
        await self.port.write(wire)
