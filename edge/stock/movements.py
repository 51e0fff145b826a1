"""Journal kinds that move stock, and how to read a GTIN and a whole quantity out of their lines.

Sales and returns are journaled by the checkout (``sale.completed`` lines carry ``sku`` and a
string ``quantity``; ``sale.returned`` lines carry ``item_id``); a count by RFID is journaled by
:mod:`edge.peripherals.rfid.count`. Goods received and manual adjustments have no owner elsewhere,
so their bodies are defined here: ``{"lines": [{"gtin": "…", "quantity": 12}], "reason": "…"}``
with ``quantity`` a signed integer for an adjustment (``-2`` broken, ``+1`` found). Transfers
between stores have their bodies in :mod:`protocols.stock_transfer` (the cloud reads them too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

from edge.checkout.barcodes import to_gtin14
from edge.checkout.errors import BarcodeError
from edge.peripherals.rfid.count import EVENT_KIND as STOCK_COUNT_COMMITTED
from protocols.vocabulary import JournalKind

SALE_COMPLETED = JournalKind.SALE_COMPLETED
SALE_RETURNED = JournalKind.SALE_RETURNED
STOCK_RECEIVED = JournalKind.STOCK_RECEIVED
STOCK_ADJUSTED = JournalKind.STOCK_ADJUSTED
STOCK_TRANSFER_SENT = JournalKind.STOCK_TRANSFER_SENT
STOCK_TRANSFER_RECEIVED = JournalKind.STOCK_TRANSFER_RECEIVED
MOVING_KINDS = frozenset(
    {
        SALE_COMPLETED,
        SALE_RETURNED,
        STOCK_RECEIVED,
        STOCK_ADJUSTED,
        STOCK_COUNT_COMMITTED,
        STOCK_TRANSFER_SENT,
        STOCK_TRANSFER_RECEIVED,
    }
)

__all__ = [
    "MOVING_KINDS",
    "SALE_COMPLETED",
    "SALE_RETURNED",
    "STOCK_ADJUSTED",
    "STOCK_COUNT_COMMITTED",
    "STOCK_RECEIVED",
    "STOCK_TRANSFER_RECEIVED",
    "STOCK_TRANSFER_SENT",
    "adjusted_body",
    "gtin14_or_none",
    "received_body",
    "whole_quantity",
]


def received_body(
    lines: Mapping[str, int], *, reference: str = "", by: str = ""
) -> dict[str, object]:
    """The body of a ``stock.received`` event (a delivery booked in): GTIN → units received."""
    return {
        "lines": _lines(lines),
        "reference": reference,
        "by": by,
    }


def adjusted_body(lines: Mapping[str, int], *, reason: str, by: str = "") -> dict[str, object]:
    """The body of a ``stock.adjusted`` event: GTIN → signed change, and why."""
    if not reason:
        raise ValueError("a stock adjustment needs a reason (damaged, found, theft …)")
    return {
        "lines": _lines(lines),
        "reason": reason,
        "by": by,
    }


def gtin14_or_none(code: str) -> str | None:
    """``code`` as a checked GTIN-14, or None when it is no GTIN (an item id, ``cash-rounding``)."""
    try:
        return to_gtin14(code)
    except BarcodeError:
        return None


def whole_quantity(raw: object) -> int | None:
    """A journal quantity (string Decimal or int) as whole units; None for weighed goods."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value():
        return None
    return int(value)


def _lines(lines: Mapping[str, int]) -> list[dict[str, object]]:
    return [{"gtin": _require_gtin(g), "quantity": _require_int(q)} for g, q in lines.items()]


def _require_gtin(code: str) -> str:
    gtin = gtin14_or_none(code)
    if gtin is None:
        raise ValueError(f"{code!r} is not a valid GTIN (8, 12, 13 or 14 digits, check digit)")
    return gtin


def _require_int(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise TypeError("stock quantities are whole units (int)")
    return quantity


def lines_of(body: Mapping[str, object]) -> Sequence[Mapping[str, object]]:
    """The ``lines`` of a body, or nothing when it has none that look like lines."""
    lines = body.get("lines")
    if not isinstance(lines, list):
        return ()
    return [line for line in lines if isinstance(line, Mapping)]
