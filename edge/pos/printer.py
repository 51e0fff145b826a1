"""The seam to the receipt printer: one call to print, one property to ask how it is.

The register never talks to a printer: it hands finished receipt text to a ``ReceiptPrinter``
(the peripherals service plugs its ESC/POS queue in here) and shows the printer's
``DeviceHealth`` on the kiosk. ``ScreenPrinter``, the default, keeps the last receipts in memory
so the kiosk can show and "reprint" them when there is no paper printer at all. A printer that
knows its paper (``PrinterWithPaper``) decides how wide the register lays receipts out:
:func:`fit_receipts_to_paper` is applied where the register is composed.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge.peripherals.health import DeviceHealth
from edge.pos.store_config import StoreConfig


class ReceiptPrinter(Protocol):
    """Anything that can print receipt text; raising means the receipt did not print."""

    async def print_receipt(self, text: str, *, receipt_no: int, link: str | None = None) -> None:
        """Print (or queue) one receipt; ``link``: a digital receipt's link, printed as a QR."""
        ...


@runtime_checkable
class PrinterWithHealth(Protocol):
    """A printer that also reports its health (paper out, cover open, offline)."""

    @property
    def health(self) -> DeviceHealth:
        """The printer's health right now."""
        ...


@runtime_checkable
class PrinterWithPaper(Protocol):
    """A printer that knows how many columns its paper holds."""

    @property
    def columns(self) -> int:
        """Characters per line of the loaded paper."""
        ...


def fit_receipts_to_paper(config: StoreConfig, printer: ReceiptPrinter | None) -> StoreConfig:
    """The store config with receipts as wide as the printer's paper (when it knows it).

    Paper width is the printer's setting (58 mm: 32 columns, 80 mm: 42 or 48); the store's
    ``receipt_width`` only stands in for a printer that does not say, like the screen printer.
    """
    if not isinstance(printer, PrinterWithPaper) or printer.columns == config.receipt_width:
        return config
    return dataclasses.replace(config, receipt_width=printer.columns)


@dataclass(frozen=True, slots=True)
class PrintedReceipt:
    """One receipt as it went to the printer."""

    receipt_no: int
    text: str


class ScreenPrinter:
    """Keeps the last ``keep`` receipts for on-screen display; always healthy."""

    def __init__(self, *, keep: int = 20) -> None:
        self.receipts: deque[PrintedReceipt] = deque(maxlen=keep)
        self.health = DeviceHealth(device="screen", kind="printer", connected=True)

    async def print_receipt(self, text: str, *, receipt_no: int, link: str | None = None) -> None:
        # the screen shows the text, which already carries the link
        self.receipts.append(PrintedReceipt(receipt_no, text))
        self.health.seen()


def printer_problem(printer: ReceiptPrinter) -> str | None:
    """What is wrong with the printer according to its health, or None."""
    if not isinstance(printer, PrinterWithHealth):
        return None
    health = printer.health
    if health.error:
        return health.error
    if not health.connected:
        return "printer not connected"
    return None
