"""Receipt printer driver: send a job's bytes and read the real-time status, via python-escpos.

The driver is blocking (python-escpos is); the print service runs it in a worker thread. It
opens the configured connector for each job and closes it after, which is what raw-TCP (9100)
printers expect and what survives a printer being switched off between jobs.
"""

from __future__ import annotations

from typing import Protocol

from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError
from escpos.printer import File, Network, Serial, Usb

from edge.peripherals.errors import DeviceFaultError, DeviceUnavailableError
from edge.peripherals.printer.settings import PrinterSettings
from edge.peripherals.printer.status import (
    OFFLINE_CAUSE,
    PAPER_STATUS,
    PRINTER_STATUS,
    PrinterStatus,
    decode_status,
    is_status_byte,
)


class ReceiptPrinter(Protocol):
    """What the print service needs from a printer."""

    def print_job(self, data: bytes) -> PrinterStatus:
        """Print ``data``; raise DeviceUnavailableError / DeviceFaultError when it cannot."""
        ...

    def status(self) -> PrinterStatus:
        """Ask the printer how it is."""
        ...


def open_escpos(settings: PrinterSettings) -> Escpos:
    """The python-escpos printer object for the configured connector (not yet opened)."""
    profile = settings.paper.profile
    if settings.connector == "network":
        return Network(
            settings.host, port=settings.port, timeout=settings.timeout_s, profile=profile
        )
    if settings.connector == "serial":
        return Serial(
            devfile=settings.serial_device,
            baudrate=settings.baudrate,
            timeout=settings.timeout_s,
            profile=profile,
        )
    if settings.connector == "usb":
        return Usb(settings.usb_vendor_id, settings.usb_product_id, profile=profile)
    return File(settings.file_path, profile=profile)


class EscposPrinter:
    """A :class:`ReceiptPrinter` on any python-escpos connector."""

    def __init__(self, *, name: str, settings: PrinterSettings) -> None:
        self.name = name
        self.settings = settings

    def print_job(self, data: bytes) -> PrinterStatus:
        """Check status, send, check again: a job that ran out of paper half-way is retried."""
        printer = self._open()
        try:
            self._require_ready(self._query(printer))
            printer._raw(data)  # python-escpos' documented raw-bytes hook
            after = self._query(printer)
            self._require_ready(after)
            return after
        except (OSError, EscposError) as err:
            raise DeviceUnavailableError(f"connection lost: {err}", device=self.name) from err
        finally:
            printer.close()

    def status(self) -> PrinterStatus:
        """Connect and ask."""
        printer = self._open()
        try:
            return self._query(printer)
        finally:
            printer.close()

    def _open(self) -> Escpos:
        printer = open_escpos(self.settings)
        try:
            printer.open()
        except (OSError, EscposError) as err:
            raise DeviceUnavailableError(f"cannot open printer: {err}", device=self.name) from err
        return printer

    def _query(self, printer: Escpos) -> PrinterStatus:
        if self.settings.connector == "file":
            return PrinterStatus(online=True, cover_open=False, paper="ok")  # write-only device
        answers = []
        for request in (PRINTER_STATUS, OFFLINE_CAUSE, PAPER_STATUS):
            try:
                answer = _query_status(printer, request)
            except (OSError, EscposError, NotImplementedError) as err:
                raise DeviceUnavailableError(f"no status answer: {err}", device=self.name) from err
            if len(answer) != 1 or not is_status_byte(answer[0]):
                raise DeviceUnavailableError(
                    f"status answer {answer.hex() or 'empty'} to {request.hex()}", device=self.name
                )
            answers.append(answer[0])
        return decode_status(*answers)

    def _require_ready(self, status: PrinterStatus) -> None:
        if status.paper == "out":
            raise DeviceFaultError("out of paper", device=self.name, condition="paper_out")
        if status.cover_open:
            raise DeviceFaultError("cover open", device=self.name, condition="cover_open")
        if not status.online:
            raise DeviceFaultError("offline", device=self.name, condition="offline")


def _query_status(printer: Escpos, request: bytes) -> bytes:
    """Send one DLE EOT request and read its one-byte answer.

    python-escpos' ``query_status`` reads 16 bytes, which on a serial port waits for the whole
    timeout because the answer is a single byte; reading exactly one byte does not.
    """
    if isinstance(printer, Serial):
        printer._raw(request)
        return bytes(printer.device.read(1))
    return bytes(printer.query_status(request))
