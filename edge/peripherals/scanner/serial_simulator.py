"""A serial barcode scanner on a pty, writing the frames a real one sends.

Frame: ``[prefix][AIM identifier]data[suffix]terminator`` in UTF-8, with GS1 group separators as
the raw 0x1D byte, like a Honeywell / Zebra / Datalogic scanner in RS-232 or USB-CDC mode.
"""

from __future__ import annotations

from pathlib import Path

from edge.peripherals.pty_port import PtyPort


class SerialScannerSimulator:
    """``async with SerialScannerSimulator(link=…) as scanner:`` then ``await scanner.scan(…)``."""

    def __init__(
        self, *, link: Path, prefix: str = "", suffix: str = "", terminator: str = "\r"
    ) -> None:
        self.port = PtyPort(link=link)
        self.prefix = prefix
        self.suffix = suffix
        self.terminator = terminator

    @property
    def path(self) -> Path:
        """Where the client opens the scanner."""
        return self.port.path

    async def __aenter__(self) -> SerialScannerSimulator:
        self.port.plug_in()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.port.unplug()

    async def scan(self, data: str, *, symbology: str = "") -> None:
        """A barcode was read: send its frame."""
        frame = f"{self.prefix}{symbology}{data}{self.suffix}{self.terminator}"
        await self.port.write(frame.encode("utf-8"))

    async def send_raw(self, data: bytes) -> None:
        """Arbitrary bytes on the line (noise, a half frame)."""
        await self.port.write(data)

    def unplug(self) -> None:
        """Pull the cable."""
        self.port.unplug()

    def plug_in(self) -> None:
        """Plug it back in under the same path."""
        self.port.plug_in()
