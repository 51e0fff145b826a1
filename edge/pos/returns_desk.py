"""Returns against a receipt of this register, whole or partial, refunded to the original tender.

How it works: the receipt number leads through ``pos.db``'s index to the original ``Sale`` in the
journal, and to every return already booked against it, so "how many are left to return" is
always computed from the ledger. The domain's ``build_return`` decides what each quantity
refunds (what was paid, never today's price) and refuses more than was sold. Card refunds go
through the terminal (``busy`` while they run); any the terminal refuses are paid in cash. A
refund may instead be issued as store credit (``as_credit``) to the sale's customer, or to the
customer attached now: the credit is journaled with the return and the cloud's loyalty ledger
books it. A sale paid partly with points or store credit is always refunded as store credit to
its customer, so a balance never turns into cash at the till. A return of a sale with a customer
takes back the points its share earned (journaled with the return, booked by the cloud). The
ledger numbers the return like a receipt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from edge.checkout.errors import InvalidQuantity
from edge.checkout.loyalty import as_store_credit, with_points_reversed
from edge.checkout.receipt_text import render_return
from edge.checkout.returns import build_return, refund_cards, returned_quantities
from edge.checkout.sale import Sale
from edge.checkout.tenders import TenderKind
from edge.pos import journal_reader
from edge.pos.errors import NotAllowed, ReceiptNotFound
from edge.pos.payments import print_receipt
from edge.pos.register import Register, ShownReceipt


@dataclass(frozen=True, slots=True)
class ReturnableLine:
    """One line of the original sale with what may still be returned."""

    line_id: int
    name: str
    sold: Decimal
    returned: Decimal
    total_minor: int

    @property
    def left(self) -> Decimal:
        return self.sold - self.returned


@dataclass(frozen=True, slots=True)
class ReturnableSale:
    """The original sale as the return screen shows it."""

    receipt_no: int
    receipt_id: str
    completed_at: str
    total_minor: int
    lines: tuple[ReturnableLine, ...]


def parse_receipt(register: Register, text: str) -> int:
    """``"1-000042"``, ``"000042"`` or ``"42"`` → 42 (the register prefix must be ours)."""
    raw = text.strip()
    if "-" in raw:
        prefix, _, raw = raw.rpartition("-")
        if prefix != register.register_id:
            raise ReceiptNotFound(text)
    # ASCII digits only: str.isdigit() also passes superscripts, which int() then refuses.
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise ReceiptNotFound(text)
    return int(raw)


async def _original(register: Register, receipt: str) -> Sale:
    sale = await journal_reader.sale_by_receipt(
        register.ledger, register.db, parse_receipt(register, receipt)
    )
    if sale is None:
        raise ReceiptNotFound(receipt)
    return sale


async def find_sale(register: Register, receipt: str) -> ReturnableSale:
    """The original sale and what is left to return of each line."""
    async with register.command():
        register.require_shift()
        sale = await _original(register, receipt)
        done = returned_quantities(
            sale, await journal_reader.returns_of(register.ledger, register.db, sale)
        )
        return ReturnableSale(
            receipt_no=sale.receipt_number,
            receipt_id=sale.receipt_id,
            completed_at=sale.completed_at.isoformat(timespec="minutes"),
            total_minor=sale.total_minor,
            lines=tuple(
                ReturnableLine(
                    line.line_id,
                    line.name,
                    line.quantity,
                    done.get(line.line_id, Decimal(0)),
                    line.total_minor,
                )
                for line in sale.lines
            ),
        )


async def refund(
    register: Register,
    receipt: str,
    quantities: Mapping[int, Decimal],
    *,
    as_credit: bool = False,
) -> None:
    """Return ``quantities`` (original line id → quantity) of the sale on ``receipt``.

    ``as_credit``: pay the refund as store credit to the sale's (or the attached) customer.
    """
    async with register.command():
        shift = register.require_shift()
        cashier = register.require_cashier()
        wanted = {line_id: q for line_id, q in quantities.items() if q != 0}
        if not wanted:
            raise InvalidQuantity(quantity=0, reason="choose what comes back")
        sale = await _original(register, receipt)
        earlier = await journal_reader.returns_of(register.ledger, register.db, sale)
        ret = build_return(
            sale,
            wanted,
            earlier=earlier,
            currency=register.config.currency,
            return_id=uuid.uuid4().hex,
            register_id=register.register_id,
            receipt_number=0,
            shift_id=shift.opened.shift_id,
            cashier_id=cashier.id,
            returned_at=register.clock(),
        )
        balance_paid = any(
            t.kind in (TenderKind.POINTS, TenderKind.STORE_CREDIT) for t in sale.tenders
        )
        if as_credit or balance_paid:  # what points or credit paid never comes back as cash
            attached = register.loyalty.attached
            customer = sale.customer_id or (None if attached is None else attached.customer_id)
            if customer is None:
                raise NotAllowed("Scan the customer's loyalty card to refund as store credit.")
            ret = as_store_credit(ret, customer)
        elif any(t.kind is TenderKind.CARD for t in ret.refunds):
            if register.terminal is None:
                raise NotAllowed("Paid by card, and no card terminal is connected to refund to.")
            register.busy = "refunding to the card"
            register.changed()
            try:
                ret = await refund_cards(register.terminal, ret, currency=register.config.currency)
            finally:
                register.busy = None
        ret = with_points_reversed(sale, ret, earlier)
        booked = await register.books.book_return(ret)
        shift.record(booked)
        if booked.customer_id is not None:
            await register.loyalty.credit_issued(
                booked.customer_id,
                booked.store_credit_issued_minor,
                seq=register.ledger.last_seq,  # the return's record: the command holds the till
                rules=register.config.loyalty,
                points_reversed=booked.points_reversed,
            )
        text = render_return(booked, width=register.config.receipt_width)
        register.last_receipt = ShownReceipt("return", booked.receipt_id, text)
        await print_receipt(register, text, receipt_no=booked.receipt_number)
