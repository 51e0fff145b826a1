"""Real-time printer status: the DLE EOT n requests and the meaning of their answer bytes.

Epson ESC/POS reference, "DLE EOT n: transmit real-time status". Each answer is one byte with
bit 1 and bit 4 fixed to 1 (0x12) so it cannot be mistaken for other data:

====  ==================  ================================================================
n     request              bits we read
====  ==================  ================================================================
1     printer status       bit 3 (0x08) offline
2     offline cause        bit 2 (0x04) cover open, bit 5 (0x20) stopped for paper end,
                           bit 6 (0x40) error
4     roll paper sensor    bits 2-3 (0x0C) paper near end, bits 5-6 (0x60) paper end
====  ==================  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DLE_EOT = b"\x10\x04"
PRINTER_STATUS = DLE_EOT + b"\x01"
OFFLINE_CAUSE = DLE_EOT + b"\x02"
PAPER_STATUS = DLE_EOT + b"\x04"
FIXED_BITS = 0x12

Paper = Literal["ok", "near_end", "out"]


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """Decoded status answers."""

    online: bool
    cover_open: bool
    paper: Paper

    @property
    def can_print(self) -> bool:
        """Online with paper (near end still prints)."""
        return self.online and self.paper != "out" and not self.cover_open


def is_status_byte(b: int) -> bool:
    """Fixed bits 1 and 4 set, bits 0 and 7 clear."""
    return b & 0x93 == FIXED_BITS


def decode_status(printer: int, cause: int, paper: int) -> PrinterStatus:
    """Combine the answers to DLE EOT 1, 2 and 4."""
    paper_state: Paper = "out" if paper & 0x60 else "near_end" if paper & 0x0C else "ok"
    return PrinterStatus(
        online=not printer & 0x08, cover_open=bool(cause & 0x04), paper=paper_state
    )


def encode_status(status: PrinterStatus) -> dict[int, int]:
    """The answer byte to each DLE EOT n (what a printer or our simulator sends)."""
    paper = {"ok": 0x00, "near_end": 0x0C, "out": 0x6C}[status.paper]
    cause = (0x04 if status.cover_open else 0) | (0x20 if status.paper == "out" else 0)
    offline = not status.can_print
    return {
        1: FIXED_BITS | (0x08 if offline else 0),
        2: FIXED_BITS | cause,
        3: FIXED_BITS,
        4: FIXED_BITS | paper,
    }
