"""One small exception tree for the checkout domain.

Every error carries the context that caused it as attributes and a ``cashier_message``: one short
sentence the kiosk shows as is, so no caller has to translate exception types into prose.
Results that are part of the normal flow (a manager approval is needed, a card is declined, a PIN
is wrong) are returned as typed values instead; exceptions are for input the sale cannot accept.

::

    CheckoutError
    ├── BarcodeError
    │   ├── UnknownBarcode          not a GTIN, embedded code or PLU we understand
    │   └── BadCheckDigit           a GS1 check digit (or price check digit) does not match
    ├── CatalogError
    │   ├── UnknownItem             no active item for the key
    │   ├── UnknownTaxClass         an item's tax class is not in the store's tax table
    │   └── CatalogVersionConflict  a change set that is stale, duplicate or skips a version
    ├── CartError
    │   ├── InvalidQuantity         zero, negative, or a fraction of an item sold by the piece
    │   ├── UnknownLine             no (open) line with that id
    │   └── InvalidDiscount         below zero, above 100 %, or above the line amount
    ├── TenderError
    │   ├── TenderShort             the tenders do not cover the amount due
    │   └── TenderExceedsDue        a card tender larger than what is still due
    ├── ReturnError
    │   └── ReturnExceedsSold       more than was sold, counting earlier returns
    ├── ShiftError                  wrong shift state (closed shift, already closed)
    └── JournalBodyError            a journal body that does not decode into a record
"""

from __future__ import annotations

from decimal import Decimal


class CheckoutError(Exception):
    """Base of every checkout error; ``cashier_message`` is safe to show on the kiosk."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def cashier_message(self) -> str:
        """A short sentence for the cashier; defaults to the message itself."""
        return self.message


class BarcodeError(CheckoutError):
    """The scanned or typed code cannot become an item key."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownBarcode(BarcodeError):  # noqa: N818 — the name the cashier's domain uses
    """The code has a shape none of our symbologies or layouts accept."""

    def __init__(self, *, code: str, reason: str) -> None:
        super().__init__(f"unknown barcode {code!r}: {reason}", code=code)
        self.reason = reason

    @property
    def cashier_message(self) -> str:
        return f"Barcode not recognised ({self.reason}). Scan again or type the code."


class BadCheckDigit(BarcodeError):  # noqa: N818 — the name the cashier's domain uses
    """A check digit does not match: a misread or a mistyped code."""

    def __init__(self, *, code: str, expected: int, found: int, what: str = "check digit") -> None:
        super().__init__(f"bad {what} in {code!r}: expected {expected}, found {found}", code=code)
        self.expected = expected
        self.found = found
        self.what = what

    @property
    def cashier_message(self) -> str:
        return f"Barcode misread ({self.what} wrong). Scan again."


class CatalogError(CheckoutError):
    """The catalog cannot answer or cannot take a change."""


class UnknownItem(CatalogError):  # noqa: N818 — the name the cashier's domain uses
    """No active item for the key."""

    def __init__(self, *, key: str, kind: str) -> None:
        super().__init__(f"no active item for {kind} {key!r}")
        self.key = key
        self.kind = kind

    @property
    def cashier_message(self) -> str:
        return f"Item {self.key} is not in the catalog."


class UnknownTaxClass(CatalogError):  # noqa: N818 — the name the cashier's domain uses
    """An item names a tax class the store's tax table lacks: the sale cannot tax it.

    A configuration fault, not the cashier's: the message says who fixes it and where, so the
    line is refused (and the cart left as it was) instead of a sale with a tax nobody can compute.
    """

    def __init__(self, *, tax_class: str, item_id: str = "", item_name: str = "") -> None:
        what = f"item {item_id} ({item_name})" if item_id else "an item"
        super().__init__(f"{what} has tax class {tax_class!r}, not in the store's tax table")
        self.tax_class = tax_class
        self.item_id = item_id
        self.item_name = item_name

    @property
    def cashier_message(self) -> str:
        item = f"{self.item_name} ({self.item_id})" if self.item_id else "This item"
        return (
            f"{item} cannot be sold: its tax class {self.tax_class} is not in this store's "
            f"tax table. Ask a manager to add tax class {self.tax_class} to the store's tax "
            "table in the console."
        )


class CatalogVersionConflict(CatalogError):  # noqa: N818 — the name the cashier's domain uses
    """A change set whose base is not the catalog's version: stale, duplicate or a gap."""

    def __init__(self, *, catalog_version: int, base_version: int, version: int) -> None:
        super().__init__(
            f"change set {base_version}->{version} does not apply to catalog version "
            f"{catalog_version}"
        )
        self.catalog_version = catalog_version
        self.base_version = base_version
        self.version = version

    @property
    def cashier_message(self) -> str:
        return "Catalog update skipped; the register will fetch a fresh catalog."


class CartError(CheckoutError):
    """An operation on the cart with input the sale cannot accept."""


class InvalidQuantity(CartError):  # noqa: N818 — the name the cashier's domain uses
    """Zero, negative, or a fraction of something sold by the piece."""

    def __init__(self, *, quantity: Decimal | int, reason: str) -> None:
        super().__init__(f"invalid quantity {quantity}: {reason}")
        self.quantity = quantity
        self.reason = reason

    @property
    def cashier_message(self) -> str:
        return f"Quantity {self.quantity} is not allowed ({self.reason})."


class UnknownLine(CartError):  # noqa: N818 — the name the cashier's domain uses
    """No open line with that id."""

    def __init__(self, *, line_id: int) -> None:
        super().__init__(f"no open line {line_id}")
        self.line_id = line_id

    @property
    def cashier_message(self) -> str:
        return "That line is no longer in the sale."


class InvalidDiscount(CartError):  # noqa: N818 — the name the cashier's domain uses
    """A discount below zero, above 100 %, or larger than the amount it reduces."""

    def __init__(self, *, value: Decimal | int, reason: str) -> None:
        super().__init__(f"invalid discount {value}: {reason}")
        self.value = value
        self.reason = reason

    @property
    def cashier_message(self) -> str:
        return f"Discount not allowed ({self.reason})."


class TenderError(CheckoutError):
    """Payment cannot settle the sale as asked."""


class TenderShort(TenderError):  # noqa: N818 — the name the cashier's domain uses
    """The tenders do not cover the amount due."""

    def __init__(self, *, due_minor: int, tendered_minor: int) -> None:
        super().__init__(f"tender short: due {due_minor}, tendered {tendered_minor}")
        self.due_minor = due_minor
        self.tendered_minor = tendered_minor
        self.short_minor = due_minor - tendered_minor

    @property
    def cashier_message(self) -> str:
        return "Payment does not cover the total yet."


class TenderExceedsDue(TenderError):  # noqa: N818 — the name the cashier's domain uses
    """A non-cash tender for more than is still due; only cash gives change."""

    def __init__(self, *, remaining_minor: int, amount_minor: int) -> None:
        super().__init__(f"tender {amount_minor} exceeds remaining {remaining_minor}")
        self.remaining_minor = remaining_minor
        self.amount_minor = amount_minor

    @property
    def cashier_message(self) -> str:
        return "A card can pay at most the amount still due."


class ReturnError(CheckoutError):
    """A return the original sale does not allow."""


class ReturnExceedsSold(ReturnError):  # noqa: N818 — the name the cashier's domain uses
    """More returned than sold on that line, counting earlier returns."""

    def __init__(
        self, *, line_id: int, sold: Decimal, already_returned: Decimal, requested: Decimal
    ) -> None:
        super().__init__(
            f"line {line_id}: sold {sold}, returned {already_returned}, asked {requested}"
        )
        self.line_id = line_id
        self.sold = sold
        self.already_returned = already_returned
        self.requested = requested

    @property
    def cashier_message(self) -> str:
        left = self.sold - self.already_returned
        return f"Only {left} of this line can still be returned."


class ShiftError(CheckoutError):
    """An operation that the shift's state does not allow."""

    def __init__(self, *, shift_id: str, reason: str) -> None:
        super().__init__(f"shift {shift_id}: {reason}")
        self.shift_id = shift_id
        self.reason = reason


class JournalBodyError(CheckoutError):
    """A journal body that does not decode into a checkout record."""

    def __init__(self, *, kind: str, reason: str) -> None:
        super().__init__(f"journal body {kind!r}: {reason}")
        self.kind = kind
        self.reason = reason
