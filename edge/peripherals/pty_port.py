"""The device end of a pseudo-terminal: how serial device simulators plug into pyserial.

A simulator writes the device's bytes to the pty *master*; the product code opens the *slave*
with pyserial exactly as it opens ``/dev/ttyUSB0``. A stable symlink stands for the device path,
so ``unplug()`` / ``plug_in()`` behave like a USB adapter leaving and coming back under the same
name. We keep the slave open ourselves so a client closing its side does not hang the pty up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from pathlib import Path


class PtyPort:
    """``async with PtyPort(link=path) as port:`` then point the client at ``port.path``."""

    def __init__(self, *, link: Path) -> None:
        self.path = link
        self._master: int | None = None
        self._slave: int | None = None
        self._readable = asyncio.Event()

    async def __aenter__(self) -> PtyPort:
        self.plug_in()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.unplug()

    @property
    def plugged(self) -> bool:
        """True while the device exists."""
        return self._master is not None

    def plug_in(self) -> None:
        """Create the pty and point the device path at it."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.symlink_to(os.ttyname(slave))
        asyncio.get_running_loop().add_reader(master, self._readable.set)

    def unplug(self) -> None:
        """Remove the device: clients reading it get an error, the path disappears."""
        if self._master is None or self._slave is None:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = None
        self._readable.set()  # wake a reader so it sees the port is gone

    async def read(self) -> bytes:
        """Bytes the client sent; ``b""`` once unplugged."""
        while self._master is not None:
            try:
                return os.read(self._master, 4096)
            except BlockingIOError:
                self._readable.clear()
                await self._readable.wait()
        return b""

    async def write(self, data: bytes) -> None:
        """Send bytes to the client, waiting while the pty buffer is full."""
        view = memoryview(data)
        stalls = 0
        while view and self._master is not None:
            try:
                sent = os.write(self._master, view)
            except BlockingIOError:
                # Nobody reads the other side yet (the kernel buffer is a few KiB). A real device
                # whose host went away loses its bytes: after a while, so do we.
                stalls += 1
                if stalls > 2000 and self._slave is not None:
                    termios.tcflush(self._slave, termios.TCIFLUSH)
                    return
                await asyncio.sleep(0.001)
                continue
            except OSError:
                return  # unplugged under us
            stalls = 0
            view = view[sent:]
