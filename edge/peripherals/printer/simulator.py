"""Simulated receipt printers: raw TCP (port 9100 style) on loopback, and serial on a pty.

They speak what a real Epson-compatible printer speaks (see :mod:`.printer_model`): ESC/POS in,
``DLE EOT n`` status bytes out. The TCP one can be unplugged (stops listening) and plugged back
in on the same port; the serial one can be unplugged and comes back under the same path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.peripherals.printer.printer_model import PrintedJob, PrinterModel
from edge.peripherals.pty_port import PtyPort
from mqttlink.tasks import ServiceTasks

__all__ = ["PrintedJob", "PrinterSimulator", "SerialPrinterSimulator"]


class PrinterSimulator(PrinterModel):
    """``async with PrinterSimulator() as printer:`` then connect to ``printer.port``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> PrinterSimulator:
        await self.plug_in()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unplug()

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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a printer connection served outside a task")
        self._connections.add(task)
        job = self.new_job()  # one TCP connection carries one job
        buf = bytearray()
        try:
            while chunk := await reader.read(65536):
                buf += chunk
                outcome = self.feed(job, buf)
                writer.write(outcome.answers)
                if outcome.drop:
                    writer.transport.abort()  # power blip mid-receipt: the rest is lost
                    return
                del buf[: outcome.used]
                await writer.drain()
                await self.changed()
        except ConnectionError:
            pass  # the client went away mid-job: what it sent so far stays printed
        finally:
            self._connections.discard(task)
            writer.close()
            await self.changed()


class SerialPrinterSimulator(PrinterModel):
    """A printer on a serial cable; jobs are split at paper cuts (the line has no sessions)."""

    def __init__(self, *, link: Path) -> None:
        super().__init__()
        self.port = PtyPort(link=link)
        self._tasks = ServiceTasks(f"serial printer simulator {link}")
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        """Where the driver opens the printer."""
        return self.port.path

    async def __aenter__(self) -> SerialPrinterSimulator:
        self.port.plug_in()
        await self._tasks.start()
        self._task = self._tasks.spawn(self._serve(), name="printer-sim")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.port.unplug()
        if self._task is not None:
            await asyncio.wait([self._task])  # it returns: read() gives b"" once unplugged
        await self._tasks.stop()

    async def _serve(self) -> None:
        job = self.new_job()
        buf = bytearray()
        while chunk := await self.port.read():
            buf += chunk
            outcome = self.feed(job, buf)
            await self.port.write(outcome.answers)
            del buf[: outcome.used]
            if job.data.endswith((b"\x1dV\x00", b"\x1dV\x01", b"\x1dVB\x00")):  # cuts
                job = self.new_job()
            await self.changed()
