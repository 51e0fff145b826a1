"""A raw-TCP (port 9100 style) receipt printer on loopback, for tests and demos.

It speaks what a real Epson-compatible network printer speaks: it accepts ESC/POS bytes, answers
``DLE EOT n`` real-time status requests with real status bytes, and can be put out of paper,
have its cover opened, or be unplugged (stops listening) and plugged back in on the same port.
Bytes received while it cannot print are dropped, as on a real printer in an error state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from edge.peripherals.printer.escpos_stream import tokenize
from edge.peripherals.printer.status import Paper, PrinterStatus, encode_status


@dataclass(slots=True)
class PrintedJob:
    """Everything printed during one TCP connection (status requests excluded)."""

    data: bytearray = field(default_factory=bytearray)


class PrinterSimulator:
    """``async with PrinterSimulator() as printer:`` then connect to ``printer.port``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.paper: Paper = "ok"
        self.cover_open = False
        self.jobs: list[PrintedJob] = []
        self.status_requests = 0
        self.cut_next_job_after: int | None = None  # drop the connection after this many bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> PrinterSimulator:
        await self.plug_in()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unplug()

    @property
    def status(self) -> PrinterStatus:
        """What the status bytes currently say."""
        online = self.paper != "out" and not self.cover_open
        return PrinterStatus(online=online, cover_open=self.cover_open, paper=self.paper)

    async def plug_in(self) -> None:
        """Start listening (again, on the same port once one was chosen)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def unplug(self) -> None:
        """Stop listening and drop open connections, like pulling the power cord."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def wait_for_jobs(self, count: int) -> list[PrintedJob]:
        """Wait until ``count`` non-empty jobs were printed."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.printed_jobs) >= count)
        return self.printed_jobs

    @property
    def printed_jobs(self) -> list[PrintedJob]:
        """Jobs that put something on paper."""
        return [j for j in self.jobs if j.data]

    def _cut_now(self, job: PrintedJob) -> bool:
        limit = self.cut_next_job_after
        if limit is None or len(job.data) < limit:
            return False
        self.cut_next_job_after = None
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        job = PrintedJob()
        self.jobs.append(job)
        buf = bytearray()
        try:
            while chunk := await reader.read(65536):
                buf += chunk
                tokens, used = tokenize(buf)
                for token in tokens:
                    if token.prefix == b"\x10\x04":
                        self.status_requests += 1
                        writer.write(bytes((encode_status(self.status).get(token.args[0], 0x12),)))
                    elif self.status.can_print:
                        job.data += token.prefix + token.args
                    if self._cut_now(job):
                        writer.transport.abort()  # power blip mid-receipt: the rest is lost
                        return
                del buf[:used]
                await writer.drain()
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionError:
            pass  # the client went away mid-job: what it sent so far stays printed
        finally:
            self._connections.discard(task)
            writer.close()
            async with self._changed:
                self._changed.notify_all()
