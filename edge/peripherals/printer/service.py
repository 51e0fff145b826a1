"""The print service: owns one printer, its durable queue and its health.

The pos app calls ``print_receipt`` (returns at once with a job id); a background worker, run in
a TaskGroup for the service's lifetime, prints due jobs one at a time and turns every device
problem into a health record and a scheduled retry. Nothing a printer does can raise into a sale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from edge.peripherals.errors import DeviceFaultError, DeviceUnavailableError
from edge.peripherals.health import DeviceHealth
from edge.peripherals.metrics import PRINT_JOBS
from edge.peripherals.printer.driver import ReceiptPrinter
from edge.peripherals.printer.layout import (
    drawer_kick,
    render_receipt,
    render_shift_report,
    render_test_page,
)
from edge.peripherals.printer.queue import PrintJob, PrintQueue
from edge.peripherals.printer.receipt import Receipt, ShiftReport
from edge.peripherals.printer.settings import PaperSettings
from mqttlink.tasks import ServiceTasks

log = logging.getLogger(__name__)

_HINTS = {
    "paper_out": "load a new paper roll; the job prints by itself afterwards",
    "cover_open": "close the printer cover",
    "offline": "check the printer's error light and power-cycle it",
}


class PrinterService:
    """Use as ``async with PrinterService(...) as printer:``."""

    def __init__(
        self,
        *,
        name: str,
        printer: ReceiptPrinter,
        queue: PrintQueue,
        paper: PaperSettings,
        drawer_pin: int = 2,
        idle_probe_s: float = 30.0,
        recheck_s: float = 2.0,
    ) -> None:
        self.name = name
        self.health = DeviceHealth(device=name, kind="printer")
        self._printer = printer
        self._queue = queue
        self._paper = paper
        self._drawer_pin = drawer_pin
        self._idle_probe_s = idle_probe_s
        self._recheck_s = recheck_s
        self._progress = asyncio.Condition()
        self._tasks = ServiceTasks(f"printer {name}")

    async def __aenter__(self) -> PrinterService:
        await self._tasks.start()
        self._tasks.spawn(self._work(), name=f"printer:{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._tasks.stop()

    async def print_receipt(self, receipt: Receipt) -> int:
        """Queue a receipt; the sale goes on whatever the printer is doing."""
        payload = render_receipt(receipt, self._paper)
        return await self._queue.submit(kind="receipt", ref=receipt.receipt_number, payload=payload)

    async def print_shift_report(self, report: ShiftReport) -> int:
        """Queue an X or Z report."""
        ref = f"{report.kind}:{report.shift_id}"
        payload = render_shift_report(report, self._paper)
        return await self._queue.submit(
            kind=f"{report.kind.lower()}_report", ref=ref, payload=payload
        )

    async def print_test_page(self) -> int:
        """Queue the test page a technician prints after installing a printer."""
        return await self._queue.submit(
            kind="test_page", ref="test", payload=render_test_page(self._paper)
        )

    async def open_drawer(self) -> int:
        """Kick the cash drawer wired to the printer's DK port (queued behind the receipt)."""
        return await self._queue.submit(
            kind="drawer", ref="drawer", payload=drawer_kick(self._drawer_pin)
        )

    async def reprint(self, ref: str) -> int | None:
        """Print the last job for a receipt number again; None when there is none."""
        job = await self._queue.last_for(ref)
        if job is None:
            return None
        original = job.reprint_of or job.id
        return await self._queue.submit(
            kind=job.kind, ref=job.ref, payload=job.payload, reprint_of=original
        )

    async def wait_for(self, job_id: int, done: Callable[[PrintJob], bool]) -> PrintJob:
        """Wait until the job satisfies ``done`` (e.g. printed, or tried twice)."""
        async with self._progress:
            while True:
                job = await self._queue.get(job_id)
                if job is None:
                    raise KeyError(job_id)
                if done(job):
                    return job
                await self._progress.wait()

    async def check_health(self) -> DeviceHealth:
        """Ask the printer for its status now and record it."""
        try:
            status = await asyncio.to_thread(self._printer.status)
        except DeviceUnavailableError as err:
            self.health.failed(
                str(err), connected=False, hint="check the printer's power and cable"
            )
        else:
            if status.paper == "out":  # the printer answers, but cannot print a receipt
                self.health.failed(
                    f"{self.name}: out of paper", connected=True, hint=_HINTS["paper_out"]
                )
            else:
                self.health.seen()
            self.health.detail["paper"] = status.paper
        return self.health

    async def _work(self) -> None:
        while True:
            self._queue.changed.clear()
            job = await self._queue.next_due()
            if job is None:
                wait = await self._queue.seconds_until_next()
                # a job waiting out its backoff should not outwait the paper: look meanwhile
                recheck = wait is not None and wait > self._recheck_s
                try:
                    async with asyncio.timeout(
                        self._idle_probe_s if wait is None else min(wait, self._recheck_s)
                    ):
                        await self._queue.changed.wait()
                except TimeoutError:
                    if wait is None:  # idle: keep paper and connection status fresh
                        await self.check_health()
                    elif recheck and (await self.check_health()).error is None:
                        # the printer answers and has paper again
                        await self._queue.retry_now()  # paper is back: print now, not later
                continue
            await self._attempt(job)
            async with self._progress:
                self._progress.notify_all()

    async def _attempt(self, job: PrintJob) -> None:
        try:
            status = await asyncio.to_thread(self._printer.print_job, job.payload)
        except DeviceFaultError as err:
            self.health.failed(
                str(err), connected=True, hint=_HINTS.get(err.condition, "see printer")
            )
            self.health.detail["paper"] = "out" if err.condition == "paper_out" else "unknown"
            await self._retry(job, err.condition)
        except DeviceUnavailableError as err:
            self.health.failed(
                str(err), connected=False, hint="check the printer's power and cable"
            )
            await self._retry(job, "unavailable")
        except Exception:  # a bug must not stop the queue: log it, retry later
            log.exception("print job %s failed unexpectedly", job.id)
            await self._retry(job, "internal")
        else:
            await self._queue.mark_printed(job.id)
            self.health.seen()
            self.health.detail["paper"] = status.paper
            PRINT_JOBS.labels(device=self.name, outcome="printed").inc()

    async def _retry(self, job: PrintJob, reason: str) -> None:
        self.health.count(f"job_retry_{reason}")
        PRINT_JOBS.labels(device=self.name, outcome="retried").inc()
        delay = await self._queue.mark_failed(job.id, attempts=job.attempts, error=reason)
        log.info("print job %s (%s) retries in %.1fs: %s", job.id, job.ref, delay, reason)
