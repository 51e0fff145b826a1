"""The sale as the ledger stores it: lines, tenders, totals in integer minor units.

This is the ledger's input contract. It checks what the ledger must guarantee (the sale adds up,
tenders cover it, nothing is a float) and leaves pricing, tax and discounts to the checkout domain,
which hands over a finished sale. Its journal body is the contract's
:class:`protocols.sale_body.SaleBody`, the model the cloud validates with: a sale whose body the
cloud would refuse (a currency its column cannot hold, an id too long) is refused here, before
anything is committed, instead of blocking replication later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from edge.ledger.errors import InvalidSale
from protocols.canonical import canonical_bytes
from protocols.errors import NonCanonicalValue
from protocols.sale_body import InvalidSaleBody, SaleBody

CASH = "cash"

#: What every consumer of ``sale.completed`` relies on; ``extra`` and ``checkout`` sit beside it.
RESERVED_BODY_KEYS = frozenset(
    {
        "sale_id",
        "register_id",
        "receipt_no",
        "currency",
        "total_minor",
        "tendered_minor",
        "change_minor",
        "lines",
        "tenders",
        "checkout",
        "customer_id",
        "loyalty",
    }
)


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One line: ``amount_minor`` is the line's final amount, discounts and tax included."""

    sku: str
    description: str
    quantity: Decimal
    unit_price_minor: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Tender:
    """A payment towards the sale; ``reference`` is the terminal's, never a card number."""

    kind: str
    amount_minor: int
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class SaleDraft:
    """A finished sale waiting to be committed. ``sale_id`` makes a second "pay" a no-op."""

    sale_id: str
    currency: str
    lines: tuple[SaleLine, ...]
    tenders: tuple[Tender, ...]
    extra: dict[str, object] = field(default_factory=dict)
    #: the attached customer and the sale's loyalty movements (``protocols.loyalty.SaleLoyalty``)
    customer_id: str | None = None
    loyalty: dict[str, object] | None = None

    @property
    def total_minor(self) -> int:
        """Sum of the lines."""
        return sum(line.amount_minor for line in self.lines)

    @property
    def tendered_minor(self) -> int:
        """Sum of the tenders."""
        return sum(tender.amount_minor for tender in self.tenders)

    def validate(self) -> None:
        """Refuse a sale that does not add up, before anything is written."""
        if not self.lines:
            raise InvalidSale("a sale needs at least one line", sale_id=self.sale_id)
        for line in self.lines:
            if not isinstance(line.quantity, Decimal) or line.quantity == 0:
                raise InvalidSale(f"line {line.sku}: quantity must be a non-zero Decimal")
            for value in (line.unit_price_minor, line.amount_minor):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise InvalidSale(f"line {line.sku}: money must be integer minor units")
        for tender in self.tenders:
            if not isinstance(tender.amount_minor, int) or tender.amount_minor <= 0:
                raise InvalidSale(f"tender {tender.kind}: amount must be positive minor units")
        short = self.total_minor - self.tendered_minor
        if short > 0:
            raise InvalidSale(f"tender short by {short} minor units", sale_id=self.sale_id)
        if self.change_minor > 0 and not any(t.kind == CASH for t in self.tenders):
            raise InvalidSale("change can only be given against cash", sale_id=self.sale_id)
        clash = RESERVED_BODY_KEYS & self.extra.keys()
        if clash:
            raise InvalidSale(f"extra may not redefine {sorted(clash)}", sale_id=self.sale_id)
        try:
            canonical_bytes(self.extra)
        except NonCanonicalValue as err:
            raise InvalidSale(f"extra: {err.reason}", sale_id=self.sale_id) from err

    @property
    def change_minor(self) -> int:
        """What goes back to the customer."""
        return max(0, self.tendered_minor - self.total_minor)


@dataclass(frozen=True, slots=True)
class CommittedSale:
    """What the ledger answers once the sale is durable."""

    sale_id: str
    receipt_no: int
    seq: int
    ts: int
    total_minor: int
    change_minor: int
    replayed: bool = False


def journal_body(
    draft: SaleDraft,
    *,
    receipt_no: int,
    register_id: str,
    checkout: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``sale.completed`` journal body, a :class:`SaleBody`: quantities as strings, money ints.

    Raises :class:`InvalidSale` when the body is not one the cloud can store.
    """
    try:
        body = SaleBody.from_body(
            {
                "sale_id": draft.sale_id,
                "register_id": register_id,
                "receipt_no": receipt_no,
                "currency": draft.currency,
                "total_minor": draft.total_minor,
                "tendered_minor": draft.tendered_minor,
                "change_minor": draft.change_minor,
                "lines": [
                    {
                        "sku": line.sku,
                        "description": line.description,
                        "quantity": str(line.quantity),
                        "unit_price_minor": line.unit_price_minor,
                        "amount_minor": line.amount_minor,
                    }
                    for line in draft.lines
                ],
                "tenders": [
                    {"kind": t.kind, "amount_minor": t.amount_minor, "reference": t.reference}
                    for t in draft.tenders
                ],
                **({} if checkout is None else {"checkout": checkout}),
                **({} if draft.customer_id is None else {"customer_id": draft.customer_id}),
                **({} if draft.loyalty is None else {"loyalty": draft.loyalty}),
                **draft.extra,
            }
        )
    except InvalidSaleBody as err:
        raise InvalidSale(err.reason, sale_id=draft.sale_id) from err
    return body.to_body()
