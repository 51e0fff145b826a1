"""LLRP reader client over TCP (port 5084): connect, set up an ROSpec, stream tag reads.

How it works: :class:`LlrpReader` runs one loop for its lifetime. Each pass connects, waits for
the reader's ConnectionAttemptEvent, asks for capabilities, sets the keepalive period, replaces
our ROSpec (DELETE 0, ADD, ENABLE, START) and then receives: RO_ACCESS_REPORT tags go to
``on_read``, KEEPALIVEs are ACKed, responses complete the request that waits for them (paired by
message id). Silence longer than ``keepalive_misses`` periods, a reset, or a frame whose header
is corrupt ends the connection; the loop reconnects after a jittered exponential backoff. A
corrupt body inside a sound frame is counted and skipped. A parameter the reader puts where
LLRP does not place it (some firmware puts C1G2SingulationDetails inside TagReportData) costs
nothing: the codec keeps it raw, the reads are delivered, it is counted as
``misplaced_parameter`` and logged once per kind. Leaving the ``async with`` stops the
ROSpec and closes the connection politely (CLOSE_CONNECTION), then ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import random
from dataclasses import dataclass, field

from edge.peripherals.errors import DeviceFaultError, DeviceProtocolError, DeviceUnavailableError
from edge.peripherals.health import DeviceHealth
from edge.peripherals.metrics import RFID_READS
from edge.peripherals.rfid.observation import OnRead, TagObservation
from mqttlink.backoff import Backoff
from mqttlink.reconnect import retry_forever
from mqttlink.tasks import ServiceTasks
from protocols import llrp

log = logging.getLogger(__name__)
#: What a reader sends only in answer to a request (with the request's message id).
_RESPONSES = (
    llrp.GetReaderCapabilitiesResponse,
    llrp.SetReaderConfigResponse,
    llrp.AddROSpecResponse,
    llrp.EnableROSpecResponse,
    llrp.StartROSpecResponse,
    llrp.StopROSpecResponse,
    llrp.DeleteROSpecResponse,
    llrp.CloseConnectionResponse,
    llrp.ErrorMessage,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LlrpSettings:
    """Where the reader is and how patient to be with it."""

    host: str
    port: int = 5084
    rospec_id: int = 1
    antennas: tuple[int, ...] = (0,)  # 0 = all antennas
    keepalive_ms: int = 5000
    keepalive_misses: int = 3
    response_timeout_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    report_every_n_tags: int = 100
    report_content: llrp.ReportContent = field(
        default_factory=lambda: (
            llrp.ReportContent.ANTENNA_ID
            | llrp.ReportContent.PEAK_RSSI
            | llrp.ReportContent.FIRST_SEEN_TIMESTAMP
            | llrp.ReportContent.TAG_SEEN_COUNT
        )
    )

    def rospec(self) -> llrp.ROSpec:
        """An ROSpec that starts now and inventories until stopped, reporting every N tags."""
        report = llrp.ROReportSpec(
            trigger=2, n=self.report_every_n_tags, content=self.report_content
        )
        return llrp.ROSpec(
            rospec_id=self.rospec_id,
            start_trigger=0,  # started by START_ROSPEC
            ai_specs=(llrp.AISpec(antenna_ids=self.antennas),),
            report=report,
        )


class LlrpReader:
    """``async with LlrpReader(name=…, settings=…, on_read=…) as reader:``."""

    def __init__(
        self, *, name: str, settings: LlrpSettings, on_read: OnRead, seed: int | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.health = DeviceHealth(device=name, kind="rfid")
        self.capabilities: llrp.GeneralDeviceCapabilities | None = None
        self.inventorying = asyncio.Event()  # set while the ROSpec runs on a live connection
        self.sessions = 0
        self.on_read = on_read
        self.closing = False
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._misplaced_seen: set[str] = set()
        self._link: _Link | None = None
        self._tasks = ServiceTasks(f"LLRP reader {name}")

    async def __aenter__(self) -> LlrpReader:
        await self._tasks.start()
        self._tasks.spawn(self._run(), name=f"llrp:{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._link is not None and self.inventorying.is_set():
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.settings.response_timeout_s):
                        await self._goodbye(self._link)
        finally:
            await self._tasks.stop()

    async def _run(self) -> None:
        await retry_forever(
            self._session,
            backoff=Backoff.capped(
                initial=self.settings.backoff_base_s,
                cap=self.settings.backoff_cap_s,
                uniform=self._rng.uniform,
            ),
            retry_on=(OSError, DeviceUnavailableError, DeviceProtocolError, DeviceFaultError),
            failed=self._failed,
            ended=self._forget_link,
            progress=lambda: self.sessions,  # inventoried for a while: start backoff afresh
        )

    def _failed(self, err: Exception) -> None:
        """Health says what ended the connection and what to do; the loop reconnects."""
        if isinstance(err, DeviceProtocolError):
            self.health.failed(str(err), connected=False, hint="reconnecting; report if it repeats")
            self.health.count("stream_lost")
        elif isinstance(err, DeviceFaultError):
            self.health.failed(str(err), connected=True, hint="check the reader's configuration")
            self.health.count("setup_refused")
        else:  # unreachable: OSError (TimeoutError among them), DeviceUnavailableError
            self.health.failed(
                str(err) or type(err).__name__,
                connected=False,
                hint="check the reader's power and network; reconnecting",
            )
            self.health.count("disconnect")

    def _forget_link(self) -> None:
        self.inventorying.clear()
        self._link = None

    async def _session(self) -> None:
        s = self.settings
        async with asyncio.timeout(s.response_timeout_s):
            reader, writer = await asyncio.open_connection(s.host, s.port)
        link = _Link(self, reader, writer)
        try:
            async with asyncio.TaskGroup() as tasks:
                receiving = tasks.create_task(link.receive(), name=f"llrp-rx:{self.name}")
                await link.setup()
                self._link = link
                self.sessions += 1
                self.inventorying.set()
                self.health.count("connected")
                await receiving
        except* (OSError, TimeoutError, DeviceUnavailableError) as group:
            raise group.exceptions[0] from group
        except* DeviceProtocolError as group:
            raise group.exceptions[0] from group
        except* DeviceFaultError as group:
            raise group.exceptions[0] from group
        finally:
            writer.transport.abort()

    def note_misplaced(self, params: tuple[llrp.RawParameter | llrp.RawTv, ...]) -> None:
        """Count parameters LLRP does not place where the reader sent them; log each kind once."""
        self.health.count("misplaced_parameter", len(params))
        for p in params:
            name = llrp.parameter_name(p.type, tv=isinstance(p, llrp.RawTv))
            if name in self._misplaced_seen:
                continue
            self._misplaced_seen.add(name)
            log.warning(
                "rfid %s: the reader sends %s where LLRP does not place it; its reads are kept "
                "and the parameter ignored (counted as misplaced_parameter). Nothing to do for "
                "the count; if the reader's vendor has a firmware update, apply it",
                self.name,
                name,
            )

    def next_message_id(self) -> int:
        """Message ids are unique for the client's lifetime, across reconnects."""
        return next(self._ids)

    async def _goodbye(self, link: _Link) -> None:
        self.closing = True
        await link.request(llrp.StopROSpec(rospec_id=self.settings.rospec_id))
        await link.request(llrp.DeleteROSpec(rospec_id=self.settings.rospec_id))
        await link.request(llrp.CloseConnection())


class _Link:
    """One TCP connection to the reader."""

    def __init__(
        self, owner: LlrpReader, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.owner = owner
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[llrp.Message]] = {}
        self.attempt: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def request(self, message: llrp.Message) -> llrp.Message:
        """Send and wait for the response with the same message id; check its status."""
        mid = self.owner.next_message_id()
        message = dataclasses.replace(message, message_id=mid)
        future: asyncio.Future[llrp.Message] = asyncio.get_running_loop().create_future()
        self.pending[mid] = future
        try:
            self.writer.write(llrp.encode(message))
            async with asyncio.timeout(self.owner.settings.response_timeout_s):
                response = await future
        finally:
            self.pending.pop(mid, None)  # answered, or given up: a late answer is no one's
        status = getattr(response, "status", None)
        if isinstance(status, llrp.LlrpStatus) and not status.ok:
            raise DeviceFaultError(
                f"{type(message).__name__} refused: {status.code} {status.description}",
                device=self.owner.name,
                condition=f"llrp_status_{status.code}",
            )
        return response

    async def setup(self) -> None:
        s = self.owner.settings
        async with asyncio.timeout(s.response_timeout_s):
            outcome = await self.attempt
        if outcome != 0:
            raise DeviceUnavailableError(
                f"reader refused the connection (ConnectionAttemptEvent {outcome})",
                device=self.owner.name,
            )
        caps = await self.request(llrp.GetReaderCapabilities(requested_data=1))
        if isinstance(caps, llrp.GetReaderCapabilitiesResponse):
            self.owner.capabilities = caps.general
        await self.request(
            llrp.SetReaderConfig(keepalive=llrp.KeepaliveSpec(period_ms=s.keepalive_ms))
        )
        await self.request(llrp.DeleteROSpec(rospec_id=0))
        await self.request(llrp.AddROSpec(rospec=s.rospec()))
        await self.request(llrp.EnableROSpec(rospec_id=s.rospec_id))
        await self.request(llrp.StartROSpec(rospec_id=s.rospec_id))

    async def receive(self) -> None:
        s = self.owner.settings
        silence_s = s.keepalive_ms * s.keepalive_misses / 1000
        buf = bytearray()
        while True:
            try:
                async with asyncio.timeout(silence_s):
                    chunk = await self.reader.read(65536)
            except TimeoutError as err:
                raise DeviceUnavailableError(
                    f"no keepalive for {silence_s:g}s", device=self.owner.name
                ) from err
            if not chunk:
                if self.owner.closing:
                    return
                raise DeviceUnavailableError("reader closed the connection", device=self.owner.name)
            self.owner.health.seen()
            buf += chunk
            self._drain(buf)

    def _drain(self, buf: bytearray) -> None:
        while True:
            try:
                message, used = llrp.decode(buf)
            except llrp.Incomplete:
                return
            except llrp.Malformed as err:
                self.owner.health.count("frame_garbled")
                if err.discard is None:
                    raise DeviceProtocolError(
                        f"stream lost: {err}", device=self.owner.name
                    ) from err
                log.warning("rfid %s: skipped a corrupt LLRP message: %s", self.owner.name, err)
                del buf[: err.discard]
                continue
            del buf[:used]
            self._dispatch(message)

    def _dispatch(self, msg: llrp.Message) -> None:
        if isinstance(msg, llrp.ROAccessReport):
            on_read, name = self.owner.on_read, self.owner.name
            for tag in msg.tags:
                on_read(TagObservation(tag.epc, tag.antenna_id or 0, tag.peak_rssi or -128, name))
            RFID_READS.labels(device=name).inc(len(msg.tags))
            if misplaced := msg.all_misplaced:
                self.owner.note_misplaced(misplaced)
        elif isinstance(msg, llrp.Keepalive):
            self.writer.write(llrp.encode(llrp.KeepaliveAck(message_id=msg.message_id)))
        elif isinstance(msg, llrp.ReaderEventNotification):
            attempt = msg.data.connection_attempt
            if attempt is not None and not self.attempt.done():
                self.attempt.set_result(attempt)
        elif msg.message_id in self.pending and not self.pending[msg.message_id].done():
            self.pending.pop(msg.message_id).set_result(msg)
        elif isinstance(msg, _RESPONSES):
            # the answer to a request that timed out (a busy reader, a loaded appliance), after
            # its request forgot it or in the moment between its timeout cancelling the future
            # and the request unwinding: setting that result raised InvalidStateError, which
            # ended the connection's receiver and the reader with it
            self.owner.health.count("late_response")
            log.info(
                "rfid %s: %s came after its request gave up; ignored (a reader answering late "
                "often: raise response_timeout_s)",
                self.owner.name,
                type(msg).__name__,
            )
        else:
            self.owner.health.count("unexpected_message")
            log.info("rfid %s: ignored %s", self.owner.name, type(msg).__name__)
