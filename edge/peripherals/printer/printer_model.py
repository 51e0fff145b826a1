"""What a simulated receipt printer does with bytes, whatever the cable.

The model keeps the paper and cover state, answers ``DLE EOT n`` real-time status requests with
real status bytes, records what would reach paper (nothing while it cannot print, as a real
printer in an error state drops data) and can be told to lose the line in the middle of a job.
The TCP and serial simulators feed it and send back its answers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from edge.peripherals.printer.escpos_stream import tokenize
from edge.peripherals.printer.status import Paper, PrinterStatus, encode_status


@dataclass(slots=True)
class PrintedJob:
    """Everything printed in one job (status requests excluded)."""

    data: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class Feed:
    """The outcome of feeding bytes: answers to send, bytes used, whether the line drops now."""

    answers: bytes
    used: int
    drop: bool


class PrinterModel:
    """Printer state shared by the simulators."""

    def __init__(self) -> None:
        self.paper: Paper = "ok"
        self.cover_open = False
        self.jobs: list[PrintedJob] = []
        self.status_requests = 0
        self.cut_next_job_after: int | None = None  # drop the line after this many job bytes
        self._changed = asyncio.Condition()

    @property
    def status(self) -> PrinterStatus:
        """What the status bytes currently say."""
        online = self.paper != "out" and not self.cover_open
        return PrinterStatus(online=online, cover_open=self.cover_open, paper=self.paper)

    @property
    def printed_jobs(self) -> list[PrintedJob]:
        """Jobs that put something on paper."""
        return [j for j in self.jobs if j.data]

    def new_job(self) -> PrintedJob:
        """Start recording a job."""
        job = PrintedJob()
        self.jobs.append(job)
        return job

    def feed(self, job: PrintedJob, buf: bytearray) -> Feed:
        """Process every complete command in ``buf``."""
        tokens, used = tokenize(buf)
        answers = bytearray()
        consumed = 0
        for token in tokens:
            consumed += len(token.prefix) + len(token.args)
            if token.prefix == b"\x10\x04":
                self.status_requests += 1
                answers.append(encode_status(self.status).get(token.args[0], 0x12))
            elif self.status.can_print:
                job.data += token.prefix + token.args
            if self._drop_now(job):
                return Feed(bytes(answers), consumed, drop=True)
        return Feed(bytes(answers), used, drop=False)

    async def changed(self) -> None:
        """Wake whoever waits for jobs."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_jobs(self, count: int) -> list[PrintedJob]:
        """Wait until ``count`` non-empty jobs were printed."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.printed_jobs) >= count)
        return self.printed_jobs

    def _drop_now(self, job: PrintedJob) -> bool:
        limit = self.cut_next_job_after
        if limit is None or len(job.data) < limit:
            return False
        self.cut_next_job_after = None
        return True
