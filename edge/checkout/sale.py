"""The completed sale (and the voided one) as frozen records the ledger journals.

How it works: ``complete_sale`` freezes a settled cart and payment into a ``Sale``: every line
with its money already computed, the tax rows, the tenders, the change. Nothing downstream
recomputes money from a ``Sale`` — receipts, returns and shift reports read these figures, so
they always agree with what the customer paid. The receipt number comes from the ledger
(sequential per register); the domain only carries it. ``to_journal_body`` / ``from_journal_body``
(from ``JournalRecord``) give the JSON-safe body; :func:`edge.checkout.records.decode_journal_body`
decodes a body of any checkout kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from edge.checkout.cart import Cart
from edge.checkout.catalog import SoldBy
from edge.checkout.errors import TenderShort
from edge.checkout.journal_body import JournalRecord
from edge.checkout.money import Currency
from edge.checkout.sale_loyalty import SaleLoyalty
from edge.checkout.tax import PricingMode, TaxRow
from edge.checkout.tenders import Payment, Tender
from protocols.vocabulary import JournalKind


def receipt_id(register_id: str, receipt_number: int) -> str:
    """The printed receipt number: register and a zero-padded sequence, e.g. ``R1-000042``."""
    return f"{register_id}-{receipt_number:06d}"


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One sold line with its money: gross − discount = amount; total is what was paid for it."""

    line_id: int
    item_id: str
    name: str
    department: str
    tax_class: str
    tax_rate: Decimal
    sold_by: SoldBy
    quantity: Decimal
    unit_price_minor: int
    catalog_price_minor: int
    gross_minor: int
    discount_minor: int
    amount_minor: int
    tax_minor: int
    total_minor: int
    approved_by: str | None


@dataclass(frozen=True, slots=True)
class Sale(JournalRecord):
    """A completed sale; ``idempotency_key`` is UNIQUE in the ledger."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.SALE_COMPLETED,)

    sale_id: str
    idempotency_key: str
    register_id: str
    receipt_number: int
    shift_id: str
    cashier_id: str
    completed_at: datetime
    currency: str
    exponent: int
    pricing: PricingMode
    lines: tuple[SaleLine, ...]
    voided_lines: int
    subtotal_minor: int
    line_discount_minor: int
    basket_discount_minor: int
    tax_minor: int
    total_minor: int
    rounding_minor: int
    change_minor: int
    tax_rows: tuple[TaxRow, ...]
    tenders: tuple[Tender, ...]
    basket_approved_by: str | None
    # the attached customer (pseudonymous id) and what the sale moved on their balance (issue 14)
    customer_id: str | None = None
    loyalty: SaleLoyalty | None = None

    @property
    def receipt_id(self) -> str:
        return receipt_id(self.register_id, self.receipt_number)

    @property
    def paid_minor(self) -> int:
        """What the customer paid: total plus cash rounding."""
        return self.total_minor + self.rounding_minor


def complete_sale(
    cart: Cart,
    payment: Payment,
    *,
    register_id: str,
    receipt_number: int,
    shift_id: str,
    cashier_id: str,
    completed_at: datetime,
    customer_id: str | None = None,
    loyalty: SaleLoyalty | None = None,
) -> Sale:
    """Freeze a settled cart and payment into a ``Sale``; raises ``TenderShort`` if unpaid."""
    totals = cart.totals()
    if payment.due_minor != totals.total_minor:
        raise TenderShort(due_minor=totals.total_minor, tendered_minor=payment.paid_minor)
    payment.require_settled()
    policy = cart.policy
    by_id = {line.line_id: line for line in cart.open_lines}
    lines = tuple(
        SaleLine(
            line_id=t.line_id,
            item_id=by_id[t.line_id].item_id,
            name=by_id[t.line_id].name,
            department=by_id[t.line_id].department,
            tax_class=by_id[t.line_id].tax_class,
            tax_rate=policy.tax.tax_class(by_id[t.line_id].tax_class).rate,
            sold_by=by_id[t.line_id].sold_by,
            quantity=by_id[t.line_id].quantity,
            unit_price_minor=by_id[t.line_id].unit_price_minor,
            catalog_price_minor=by_id[t.line_id].catalog_price_minor,
            gross_minor=t.gross_minor,
            discount_minor=t.line_discount_minor + t.basket_discount_minor,
            amount_minor=t.amount_minor,
            tax_minor=t.tax_minor,
            total_minor=t.total_minor,
            approved_by=by_id[t.line_id].approved_by,
        )
        for t in totals.lines
    )
    return Sale(
        sale_id=cart.cart_id,
        idempotency_key=payment.idempotency_key,
        register_id=register_id,
        receipt_number=receipt_number,
        shift_id=shift_id,
        cashier_id=cashier_id,
        completed_at=completed_at,
        currency=policy.currency.code,
        exponent=policy.currency.exponent,
        pricing=policy.tax.pricing,
        lines=lines,
        voided_lines=len(cart.lines) - len(by_id),
        subtotal_minor=totals.subtotal_minor,
        line_discount_minor=totals.line_discount_minor,
        basket_discount_minor=totals.basket_discount_minor,
        tax_minor=totals.tax_minor,
        total_minor=totals.total_minor,
        rounding_minor=payment.rounding_minor,
        change_minor=payment.change_minor,
        tax_rows=totals.tax.rows,
        tenders=payment.tenders,
        basket_approved_by=cart.basket_approved_by,
        customer_id=customer_id,
        loyalty=loyalty,
    )


@dataclass(frozen=True, slots=True)
class SaleVoided(JournalRecord):
    """A sale abandoned before payment; kept so voids show on the Z report."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.SALE_VOIDED,)

    sale_id: str
    register_id: str
    shift_id: str
    cashier_id: str
    voided_at: datetime
    line_count: int
    total_minor: int
    approved_by: str | None


def void_sale(
    cart: Cart,
    *,
    register_id: str,
    shift_id: str,
    cashier_id: str,
    voided_at: datetime,
    approved_by: str | None = None,
) -> SaleVoided:
    """Record a cart abandoned before payment."""
    return SaleVoided(
        sale_id=cart.cart_id,
        register_id=register_id,
        shift_id=shift_id,
        cashier_id=cashier_id,
        voided_at=voided_at,
        line_count=len(cart.open_lines),
        total_minor=cart.totals().total_minor,
        approved_by=approved_by,
    )


def sale_currency(sale: Sale) -> Currency:
    """The currency a sale was made in (without the cash increment, which receipts don't need)."""
    return Currency(sale.currency, sale.exponent)
