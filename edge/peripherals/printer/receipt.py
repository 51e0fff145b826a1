"""What a receipt and a shift report say, as plain typed values (no layout, no printer).

The pos app builds these from a committed sale or shift; :mod:`.layout` turns them into ESC/POS.
Money is ``decimal.Decimal`` everywhere: a float here is a bug, so construction refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def _require_decimals(obj: DataclassInstance) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float):
            raise TypeError(f"{type(obj).__name__}.{f.name} is a float; money must be Decimal")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptLine:
    """One sold (or returned, with negative quantity) item."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    def __post_init__(self) -> None:
        _require_decimals(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Discount:
    """A discount on the sale, printed as a negative amount."""

    description: str
    amount: Decimal

    def __post_init__(self) -> None:
        _require_decimals(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaxRow:
    """One line of the tax summary: rate, net and tax for that rate."""

    label: str
    rate: Decimal
    net: Decimal
    tax: Decimal

    def __post_init__(self) -> None:
        _require_decimals(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tender:
    """How the customer paid (cash, card …) and how much."""

    kind: str
    amount: Decimal

    def __post_init__(self) -> None:
        _require_decimals(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A customer receipt; ``receipt_number`` is sequential per register."""

    store_name: str
    header_lines: tuple[str, ...] = ()
    register: str
    receipt_number: str
    issued_at: datetime
    cashier: str = ""
    lines: tuple[ReceiptLine, ...]
    discounts: tuple[Discount, ...] = ()
    total: Decimal
    tax_rows: tuple[TaxRow, ...] = ()
    tenders: tuple[Tender, ...] = ()
    change: Decimal = Decimal("0.00")
    currency: str = "EUR"
    exponent: int = 2  # the currency's minor-unit exponent: JPY 0, KWD 3; amounts print with it
    footer_lines: tuple[str, ...] = ()
    code: Literal["qr", "barcode", "none"] = "qr"  # barcode: CODE128 of the receipt number
    reprint: bool = False

    def __post_init__(self) -> None:
        _require_decimals(self)

    @property
    def code_payload(self) -> str:
        """What the QR code holds: enough to find the sale again for a return."""
        return f"SF1:{self.register}:{self.receipt_number}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftReport:
    """An X report (mid-shift, changes nothing) or a Z report (closes the shift, numbered)."""

    kind: Literal["X", "Z"]
    store_name: str
    register: str
    shift_id: str
    opened_at: datetime
    printed_at: datetime
    sales_count: int
    gross: Decimal
    discounts: Decimal
    returns: Decimal
    net: Decimal
    tax_rows: tuple[TaxRow, ...] = ()
    tenders: tuple[Tender, ...] = ()
    cash_expected: Decimal
    cash_counted: Decimal | None = None
    z_number: int | None = None
    currency: str = "EUR"
    exponent: int = 2  # the currency's minor-unit exponent

    def __post_init__(self) -> None:
        _require_decimals(self)
