"""An LLRP reader on loopback TCP, speaking the real LLRP 1.0.1 bytes through our codec.

It behaves like a fixed reader: on connect it sends READER_EVENT_NOTIFICATION
(ConnectionAttemptEvent = Success), answers capabilities / config / ROSpec messages with
LLRPStatus, and while an ROSpec is started it streams RO_ACCESS_REPORTs drawn from a
:class:`TagField`. It sends KEEPALIVEs at the configured period and counts ACKs. Faults on demand:
``drop_connections()`` (network drop), ``inject_garbage()`` (a corrupt frame) and ``misplaced``
(parameters put into every TagReportData where LLRP does not place them, as some firmware does
with C1G2SingulationDetails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from edge.peripherals.rfid.tag_field import TagField
from protocols import llrp

log = logging.getLogger(__name__)
REPORT_BATCH = 100


class LlrpReaderSimulator:
    """``async with LlrpReaderSimulator(field=…) as reader:`` then connect to ``reader.port``."""

    def __init__(self, *, field: TagField, host: str = "127.0.0.1", port: int = 0) -> None:
        self.field = field
        self.host = host
        self.port = port
        self.connections = 0
        self.keepalive_acks = 0
        self.rospecs: dict[int, llrp.ROSpec] = {}
        self.reports_sent = 0
        self.send_keepalives = True  # False: a hung reader that stays connected but silent
        self.late_by_s = 0.0  # > 0: a busy reader that answers each request this much later
        self.misplaced: tuple[llrp.RawParameter | llrp.RawTv, ...] = ()
        self.rng = random.Random(field.seed)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._sessions: set[asyncio.Task[None]] = set()
        self._garbage: bytes = b""

    async def __aenter__(self) -> LlrpReaderSimulator:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is None:  # never entered: nothing listens
            return
        self._server.close()
        self.drop_connections()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        await self._server.wait_closed()

    def drop_connections(self) -> None:
        """Cut every client connection without LLRP goodbye, like a pulled network cable."""
        for writer in list(self._writers):
            writer.transport.abort()

    def inject_garbage(self, data: bytes = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff") -> None:
        """Send these bytes before the next report (a corrupt frame on the wire)."""
        self._garbage = data

    def take_garbage(self) -> bytes:
        """The injected bytes, once."""
        data, self._garbage = self._garbage, b""
        return data

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is None:  # asyncio runs every start_server handler as a task
            raise RuntimeError("an LLRP simulator session runs only as an asyncio task")
        self._sessions.add(task)
        session = _Session(self, writer)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(session.receive(reader), name="llrp-sim-receive")
                tasks.create_task(session.keepalives(), name="llrp-sim-keepalive")
                tasks.create_task(session.inventory(), name="llrp-sim-inventory")
        except* (ConnectionError, _SessionEndedError, llrp.LlrpError):
            pass  # the client left or sent bytes we cannot parse: drop this connection
        finally:
            self._sessions.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()


class _SessionEndedError(Exception):
    """The client closed the LLRP connection."""


class _Session:
    """One client connection's state."""

    def __init__(self, sim: LlrpReaderSimulator, writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self.writer = writer
        self.keepalive_ms = 0
        self.started = asyncio.Event()
        self.keepalive_changed = asyncio.Event()
        self.next_id = 1

    def send(self, message: llrp.Message) -> None:
        self.writer.write(llrp.encode(message))

    def answer(self, message: llrp.Message) -> None:
        """A request's response: now, or ``late_by_s`` later (dropped if the client has gone)."""
        if self.sim.late_by_s <= 0:
            self.send(message)
            return
        data = llrp.encode(message)
        loop = asyncio.get_running_loop()
        loop.call_later(self.sim.late_by_s, self._write_if_open, data)

    def _write_if_open(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def receive(self, reader: asyncio.StreamReader) -> None:
        now_us = int(time.time() * 1_000_000)
        event = llrp.ReaderEventNotificationData(timestamp_us=now_us, connection_attempt=0)
        self.send(llrp.ReaderEventNotification(data=event))
        buf = bytearray()
        while chunk := await reader.read(65536):
            buf += chunk
            while True:
                try:
                    message, used = llrp.decode(buf)
                except llrp.Incomplete:
                    break
                del buf[:used]
                self.handle(message)
            await self.writer.drain()
        raise _SessionEndedError

    def handle(self, msg: llrp.Message) -> None:
        mid = msg.message_id
        ok = llrp.LlrpStatus()
        sim = self.sim
        if isinstance(msg, llrp.GetReaderCapabilities):
            caps = llrp.GeneralDeviceCapabilities(
                max_antennas=max(sim.field.antennas), manufacturer=25882, firmware="sim-1.0"
            )
            self.answer(llrp.GetReaderCapabilitiesResponse(message_id=mid, general=caps))
        elif isinstance(msg, llrp.SetReaderConfig):
            if msg.keepalive is not None:
                self.keepalive_ms = msg.keepalive.period_ms
                self.keepalive_changed.set()
            self.answer(llrp.SetReaderConfigResponse(message_id=mid))
        elif isinstance(msg, llrp.AddROSpec):
            sim.rospecs[msg.rospec.rospec_id] = msg.rospec
            self.answer(llrp.AddROSpecResponse(message_id=mid))
        elif isinstance(msg, llrp.EnableROSpec | llrp.StartROSpec | llrp.StopROSpec):
            known = msg.rospec_id in sim.rospecs
            status = ok if known else llrp.LlrpStatus(code=100, description="no such ROSpec")
            if isinstance(msg, llrp.StartROSpec) and known:
                self.started.set()
            if isinstance(msg, llrp.StopROSpec):
                self.started.clear()
            cls = {
                llrp.EnableROSpec: llrp.EnableROSpecResponse,
                llrp.StartROSpec: llrp.StartROSpecResponse,
                llrp.StopROSpec: llrp.StopROSpecResponse,
            }[type(msg)]
            self.answer(cls(message_id=mid, status=status))
        elif isinstance(msg, llrp.DeleteROSpec):
            if msg.rospec_id == 0:
                sim.rospecs.clear()
            sim.rospecs.pop(msg.rospec_id, None)
            self.started.clear()
            self.answer(llrp.DeleteROSpecResponse(message_id=mid))
        elif isinstance(msg, llrp.KeepaliveAck):
            sim.keepalive_acks += 1
        elif isinstance(msg, llrp.CloseConnection):
            self.answer(llrp.CloseConnectionResponse(message_id=mid))
        else:
            status = llrp.LlrpStatus(code=108, description="unsupported message")
            self.answer(llrp.ErrorMessage(message_id=mid, status=status))

    async def keepalives(self) -> None:
        while True:
            if not self.keepalive_ms or not self.sim.send_keepalives:
                self.keepalive_changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        await self.keepalive_changed.wait()
                continue
            await asyncio.sleep(self.keepalive_ms / 1000)
            self.send(llrp.Keepalive(message_id=self.next_id))
            self.next_id += 1

    async def inventory(self) -> None:
        field, rng = self.sim.field, self.sim.rng
        while True:
            await self.started.wait()
            seen = field.round(rng)
            for start in range(0, len(seen), REPORT_BATCH):
                if not self.started.is_set():
                    break
                batch = seen[start : start + REPORT_BATCH]
                now_us = int(time.time() * 1_000_000)
                tags = tuple(
                    llrp.TagReportData(
                        epc=epc,
                        antenna_id=ant,
                        peak_rssi=rssi,
                        first_seen_utc_us=now_us,
                        seen_count=1,
                        misplaced=self.sim.misplaced,
                    )
                    for epc, ant, rssi in batch
                )
                self.writer.write(self.sim.take_garbage())
                self.send(llrp.ROAccessReport(message_id=self.next_id, tags=tags))
                self.next_id += 1
                self.sim.reports_sent += 1
                await self.writer.drain()
                pause = len(batch) / field.reads_per_second if field.reads_per_second else 0
                await asyncio.sleep(pause)
            if not seen:
                await asyncio.sleep(0.01)
