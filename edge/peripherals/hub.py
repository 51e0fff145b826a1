"""The register's hardware, owned in one place: ``async with PeripheralHub(...) as hub``.

How it works: the hub reads a :class:`~edge.peripherals.register_config.RegisterDevices` and
enters one service per configured device (print queue + printer worker, HID scanner watcher,
serial scanners, LLRP / serial RFID readers) on an ``AsyncExitStack``; each service runs its own
TaskGroup and never raises for a device problem, it records it in its ``DeviceHealth``. Leaving
the ``async with`` stops them in reverse order. The rest of the appliance talks to the hub only:

* ``health()`` — every device's ``DeviceHealth.snapshot()`` by name (the ``state`` topic, kiosk);
* ``printer`` / ``print_queue`` — receipts, reports, the test page (the sale never waits);
* ``open_drawer(reason=, by=)`` — journals ``drawer.opened`` *first*, then queues the kick, so
  no drawer opens without an audit record (a kick that fails leaves a record and a retry);
* ``scans()`` / ``add_scan_listener()`` — barcode scans from every scanner, for the kiosk;
* ``start_count`` / ``stop_count`` / ``commit_count`` (``finish_count`` = both) — an RFID
  stock count fed by every reader at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edge.peripherals.health import DeviceHealth
from edge.peripherals.printer.driver import EscposPrinter
from edge.peripherals.printer.queue import PrintQueue
from edge.peripherals.printer.service import PrinterService
from edge.peripherals.printer.settings import PaperSettings
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.rfid.count import CountSession, JournalWriter, VarianceReport
from edge.peripherals.rfid.llrp_client import LlrpReader
from edge.peripherals.rfid.observation import TagObservation
from edge.peripherals.rfid.serial_client import SerialUhfReader
from edge.peripherals.scanner.hid import DeviceSource, HidScannerWatcher
from edge.peripherals.scanner.scan import OnScan, Scan
from edge.peripherals.scanner.serial_scanner import SerialScanner
from mqttlink.backoff import Backoff
from protocols.vocabulary import JournalKind

log = logging.getLogger(__name__)

DRAWER_OPENED = JournalKind.DRAWER_OPENED
SCAN_BACKLOG = 64  # scans a slow kiosk may fall behind before the oldest are dropped


class HubError(Exception):
    """Base of what the hub refuses::

    HubError
    ├── NotConfiguredError   the register has no such device (``kind``)
    └── CountError           no such count, or one is already running (``session_id``)
    """


class NotConfiguredError(HubError):
    """The register has no device of ``kind``."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"this register has no {kind} configured")
        self.kind = kind


class CountError(HubError):
    """A count request that does not fit the running count."""

    def __init__(self, message: str, *, session_id: str) -> None:
        super().__init__(message)
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class DrawerOpened:
    """An audited drawer open: its journal seq and the print job that kicks the solenoid."""

    seq: int
    job_id: int


@dataclass(frozen=True, slots=True)
class CommittedCount:
    """A finished count: the variance report and the journal seq it was committed at."""

    seq: int
    report: VarianceReport


class PeripheralHub:
    """Owns every device service of one register."""

    def __init__(
        self,
        *,
        devices: RegisterDevices,
        journal: JournalWriter,
        data_dir: Path,
        hid_source: DeviceSource | None = None,
    ) -> None:
        self.devices = devices
        self.paper: PaperSettings = (
            devices.printer.paper if devices.printer is not None else PaperSettings()
        )
        self.printer: PrinterService | None = None
        self.print_queue: PrintQueue | None = None
        self.scanners: HidScannerWatcher | None = None
        self._journal = journal
        self._data_dir = data_dir
        self._hid_source = hid_source
        self._stack = contextlib.AsyncExitStack()
        self._named: dict[str, DeviceHealth] = {}
        self._readers: list[LlrpReader | SerialUhfReader] = []
        self._scan_queues: set[asyncio.Queue[Scan]] = set()
        self._scan_listeners: list[OnScan] = []
        self._counts: dict[str, CountSession] = {}
        self._counting: tuple[Callable[[TagObservation], None], ...] = ()
        self.scans_dropped = 0

    async def __aenter__(self) -> PeripheralHub:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.__aexit__(et, e, tb)

    async def _start(self) -> None:
        d, stack = self.devices, self._stack
        if d.printer is not None:
            path = d.print_queue or self._data_dir / "print-queue.db"
            queue = PrintQueue(path=path, backoff=Backoff.from_settings(d.printer))
            self.print_queue = await stack.enter_async_context(queue)
            service = PrinterService(
                name=d.printer.name,
                printer=EscposPrinter(name=d.printer.name, settings=d.printer),
                queue=self.print_queue,
                paper=d.printer.paper,
                drawer_pin=d.drawer.pin if d.drawer is not None else d.printer.drawer_pin,
                idle_probe_s=d.printer.status_poll_s,
            )
            self.printer = await stack.enter_async_context(service)
            self._named[service.name] = service.health
        if d.hid_scanners is not None:
            watcher = HidScannerWatcher(
                settings=d.hid_scanners, on_scan=self._on_scan, source=self._hid_source
            )
            self.scanners = await stack.enter_async_context(watcher)
        for cfg in d.serial_scanners:
            scanner = SerialScanner(name=cfg.name, settings=cfg, on_scan=self._on_scan)
            self._named[cfg.name] = (await stack.enter_async_context(scanner)).health
        for rfid in d.rfid:
            reader: LlrpReader | SerialUhfReader
            if rfid.kind == "llrp":
                reader = LlrpReader(
                    name=rfid.name, settings=rfid.llrp_settings(), on_read=self._on_read
                )
            else:
                reader = SerialUhfReader(
                    name=rfid.name, settings=rfid.serial_settings(), on_read=self._on_read
                )
            self._readers.append(await stack.enter_async_context(reader))
            self._named[rfid.name] = reader.health

    # -- health ----------------------------------------------------------------------------------

    def health(self) -> dict[str, dict[str, object]]:
        """Every device's health snapshot, by device name (JSON-able)."""
        out = {name: h.snapshot() for name, h in self._named.items()}
        if self.scanners is not None:
            for path, h in sorted(self.scanners.health.items()):
                out[f"{h.device} ({path})"] = h.snapshot()
        return out

    # -- printer and drawer ----------------------------------------------------------------------

    def require_printer(self) -> PrinterService:
        """The printer service, or :class:`NotConfiguredError`."""
        if self.printer is None:
            raise NotConfiguredError("receipt printer")
        return self.printer

    async def print_test_page(self) -> int:
        """Queue the technician's test page; returns the print job id."""
        return await self.require_printer().print_test_page()

    async def open_drawer(self, *, reason: str, by: str) -> DrawerOpened:
        """Journal who opened the drawer and why, then kick it."""
        if self.devices.drawer is None:
            raise NotConfiguredError("cash drawer")
        if not reason or not by:
            raise ValueError("a drawer open needs a reason and who asked for it")
        printer = self.require_printer()
        body = {"drawer": self.devices.drawer.name, "reason": reason, "by": by}
        seq = await self._journal.append_event(DRAWER_OPENED, body)
        job_id = await printer.open_drawer()
        log.info("drawer opened by %s (%s), journal seq %d", by, reason, seq)
        return DrawerOpened(seq=seq, job_id=job_id)

    # -- scanners --------------------------------------------------------------------------------

    def add_scan_listener(self, listener: OnScan) -> Callable[[], None]:
        """Call ``listener`` for every scan (it must be quick); returns the remover."""
        self._scan_listeners.append(listener)
        return lambda: self._scan_listeners.remove(listener)

    def scans(self) -> AsyncIterator[Scan]:
        """Every scan from this call on, from any scanner: ``async for scan in hub.scans()``.

        The subscription starts here, not at the first ``__anext__``, so a scan right after the
        call is not lost; iterate it to the end or ``aclose()`` it to unsubscribe.
        """
        queue: asyncio.Queue[Scan] = asyncio.Queue(maxsize=SCAN_BACKLOG)
        self._scan_queues.add(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[Scan]) -> AsyncIterator[Scan]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._scan_queues.discard(queue)

    def _on_scan(self, scan: Scan) -> None:
        for queue in self._scan_queues:
            if queue.full():  # a stalled consumer loses its oldest scan, not the newest
                queue.get_nowait()
                self.scans_dropped += 1
            queue.put_nowait(scan)
        for listener in list(self._scan_listeners):
            try:
                listener(scan)
            except Exception:  # a kiosk bug must not stop the scanner's reader
                log.exception("scan listener failed for %r", scan.text)

    # -- RFID counts -----------------------------------------------------------------------------

    @property
    def readers(self) -> list[LlrpReader | SerialUhfReader]:
        """The RFID reader clients."""
        return list(self._readers)

    def start_count(
        self, *, expected: Mapping[str, int], session_id: str | None = None, location: str = ""
    ) -> CountSession:
        """Start counting with every reader; ``expected`` is the ledger's on-hand per GTIN."""
        if not self._readers:
            raise NotConfiguredError("RFID reader")
        sid = session_id or f"count-{uuid.uuid4().hex[:12]}"
        running = [s.session_id for s in self._counts.values() if s.state == "counting"]
        if running:
            raise CountError(f"count {running[0]} is still running", session_id=sid)
        if sid in self._counts:
            raise CountError(f"count {sid} was already used", session_id=sid)
        session = CountSession(session_id=sid, expected=expected, location=location)
        session.start()
        self._counts[sid] = session
        self._counting = (session.add,)
        log.info("stock count %s started (%s), %d GTINs expected", sid, location, len(expected))
        return session

    def count(self, session_id: str) -> CountSession:
        """A count started on this hub (live totals while it runs)."""
        try:
            return self._counts[session_id]
        except KeyError as err:
            raise CountError(f"no count {session_id}", session_id=session_id) from err

    def stop_count(self, session_id: str) -> VarianceReport:
        """Stop taking reads; the report can be reviewed before :meth:`commit_count`."""
        session = self.count(session_id)
        if session.state != "counting":
            raise CountError(f"count {session_id} is {session.state}", session_id=session_id)
        session.stop()
        self._counting = ()
        return session.variance()

    async def commit_count(self, session_id: str) -> CommittedCount:
        """Commit a stopped count's variance report to the journal (once)."""
        session = self.count(session_id)
        if session.state != "stopped":
            raise CountError(f"count {session_id} is {session.state}", session_id=session_id)
        report = session.variance()
        seq = await session.commit(self._journal)
        log.info(
            "stock count %s committed at seq %d: %d counted, %d expected",
            session_id,
            seq,
            report.counted_total,
            report.expected_total,
        )
        return CommittedCount(seq=seq, report=report)

    async def finish_count(self, session_id: str) -> CommittedCount:
        """Stop the count and commit its variance report: what a remote ``stop`` does."""
        self.stop_count(session_id)
        return await self.commit_count(session_id)

    def _on_read(self, obs: TagObservation) -> None:
        for add in self._counting:
            add(obs)
