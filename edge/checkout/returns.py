"""Returns against an original sale (by receipt), and without one only with a manager.

How it works: what a returned quantity refunds is read from the original ``SaleLine`` — what the
customer actually paid for it, discounts and tax included — never recomputed from today's price.
Partial returns use a cumulative share: returning ``q`` of ``sold`` after ``r`` were returned
refunds ``share(r + q) − share(r)`` with ``share(k) = round(paid × k / sold)``, so any sequence of
partial returns adds up to exactly the line's paid amount and never more; quantities beyond what
is left raise ``ReturnExceedsSold``. The money goes back to the original tender where possible:
to each card (the same terminal reference) up to what that card paid minus earlier refunds, the
rest in cash, rounded to the cash increment. ``refund_cards`` runs the card refunds through a
``PaymentTerminal`` and turns any that fail into cash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from edge.checkout.cart import Cart, CartPolicy
from edge.checkout.catalog import Item, SoldBy
from edge.checkout.errors import InvalidQuantity, ReturnExceedsSold, UnknownLine
from edge.checkout.journal_body import JournalRecord
from edge.checkout.money import Currency, RoundingRule, cash_round, round_to_int
from edge.checkout.sale import Sale, receipt_id
from edge.checkout.staff import Approval, ApprovalRequired, Role, can_approve
from edge.checkout.tax import TaxRow
from edge.checkout.tenders import CardApproved, PaymentTerminal, Tender, TenderKind
from protocols.vocabulary import JournalKind


@dataclass(frozen=True, slots=True)
class ReturnLine:
    """One returned line; ``refund_minor`` includes tax, ``tax_minor`` is the tax in it."""

    line_id: int
    item_id: str
    name: str
    department: str
    tax_class: str
    tax_rate: Decimal
    quantity: Decimal
    refund_minor: int
    tax_minor: int


@dataclass(frozen=True, slots=True)
class SaleReturn(JournalRecord):
    """A return; ``refunds`` pay out ``refund_minor + rounding_minor`` in total."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.SALE_RETURNED,)

    return_id: str
    register_id: str
    receipt_number: int
    shift_id: str
    cashier_id: str
    returned_at: datetime
    currency: str
    exponent: int
    original_sale_id: str | None
    original_receipt: str | None
    lines: tuple[ReturnLine, ...]
    refund_minor: int
    tax_minor: int
    rounding_minor: int
    refunds: tuple[Tender, ...]
    approved_by: str | None
    # a refund paid as store credit names its customer (issue 14; ``edge.checkout.loyalty``)
    customer_id: str | None = None
    store_credit_issued_minor: int = 0
    # the points the original sale earned that this return takes back (``edge.checkout.loyalty``)
    points_reversed: int = 0

    @property
    def receipt_id(self) -> str:
        return receipt_id(self.register_id, self.receipt_number)

    @property
    def tax_rows(self) -> tuple[TaxRow, ...]:
        """Refunded tax by rate, for the Z report."""
        rows: dict[Decimal, tuple[set[str], int, int]] = {}
        for line in self.lines:
            codes, gross, tax = rows.get(line.tax_rate, (set(), 0, 0))
            rows[line.tax_rate] = (
                codes | {line.tax_class},
                gross + line.refund_minor,
                tax + line.tax_minor,
            )
        return tuple(
            TaxRow(rate, tuple(sorted(codes)), gross - tax, tax, gross)
            for rate, (codes, gross, tax) in sorted(rows.items())
        )


def returned_quantities(original: Sale, earlier: Sequence[SaleReturn]) -> dict[int, Decimal]:
    """Quantity already returned per original line id."""
    done: dict[int, Decimal] = {}
    for ret in earlier:
        if ret.original_sale_id != original.sale_id:
            continue
        for line in ret.lines:
            done[line.line_id] = done.get(line.line_id, Decimal(0)) + line.quantity
    return done


def _share(paid_minor: int, k: Decimal, sold: Decimal) -> int:
    return round_to_int(Decimal(paid_minor) * k / sold, RoundingRule.HALF_UP)


def _cash_part(amount_minor: int, currency: Currency) -> tuple[Tender | None, int]:
    if amount_minor == 0:
        return None, 0
    paid_out = cash_round(amount_minor, currency.cash_increment_minor)
    return Tender(TenderKind.CASH, paid_out, paid_out), paid_out - amount_minor


def build_return(
    original: Sale,
    quantities: Mapping[int, int | Decimal],
    *,
    earlier: Sequence[SaleReturn],
    currency: Currency,
    return_id: str,
    register_id: str,
    receipt_number: int,
    shift_id: str,
    cashier_id: str,
    returned_at: datetime,
) -> SaleReturn:
    """Return ``quantities`` (original line id → quantity) of ``original``."""
    if not quantities:
        raise InvalidQuantity(quantity=0, reason="nothing to return")
    done = returned_quantities(original, earlier)
    sold_lines = {line.line_id: line for line in original.lines}
    lines: list[ReturnLine] = []
    for line_id, quantity in sorted(quantities.items()):
        sold = sold_lines.get(line_id)
        if sold is None:
            raise UnknownLine(line_id=line_id)
        if isinstance(quantity, float):  # a float quantity is a bug upstream
            raise TypeError("quantity must be an int or a Decimal")
        q = Decimal(quantity)
        if not q.is_finite() or q <= 0:
            raise InvalidQuantity(quantity=quantity, reason="must be more than zero")
        if sold.sold_by is SoldBy.PIECE and q != q.to_integral_value():
            raise InvalidQuantity(quantity=quantity, reason="sold by the piece")
        r = done.get(line_id, Decimal(0))
        if r + q > sold.quantity:
            raise ReturnExceedsSold(
                line_id=line_id, sold=sold.quantity, already_returned=r, requested=q
            )
        refund = _share(sold.total_minor, r + q, sold.quantity) - _share(
            sold.total_minor, r, sold.quantity
        )
        tax = _share(sold.tax_minor, r + q, sold.quantity) - _share(
            sold.tax_minor, r, sold.quantity
        )
        lines.append(
            ReturnLine(
                line_id,
                sold.item_id,
                sold.name,
                sold.department,
                sold.tax_class,
                sold.tax_rate,
                q,
                refund,
                tax,
            )
        )
    refund_minor = sum(line.refund_minor for line in lines)
    refunds: list[Tender] = []
    left = refund_minor
    for tender in original.tenders:
        if tender.kind is not TenderKind.CARD or left == 0:
            continue
        already = sum(
            t.amount_minor
            for ret in earlier
            if ret.original_sale_id == original.sale_id
            for t in ret.refunds
            if t.terminal_reference == tender.terminal_reference
        )
        amount = min(left, tender.amount_minor - already)
        if amount > 0:
            refunds.append(replace(tender, amount_minor=amount, received_minor=amount))
            left -= amount
    cash, rounding = _cash_part(left, currency)
    if cash is not None:
        refunds.append(cash)
    return SaleReturn(
        return_id=return_id,
        register_id=register_id,
        receipt_number=receipt_number,
        shift_id=shift_id,
        cashier_id=cashier_id,
        returned_at=returned_at,
        currency=original.currency,
        exponent=original.exponent,
        original_sale_id=original.sale_id,
        original_receipt=original.receipt_id,
        lines=tuple(lines),
        refund_minor=refund_minor,
        tax_minor=sum(line.tax_minor for line in lines),
        rounding_minor=rounding,
        refunds=tuple(refunds),
        approved_by=None,
    )


def build_unreceipted_return(
    items: Sequence[tuple[Item, int | Decimal]],
    *,
    policy: CartPolicy,
    approval: Approval | None,
    return_id: str,
    register_id: str,
    receipt_number: int,
    shift_id: str,
    cashier_id: str,
    returned_at: datetime,
) -> SaleReturn | ApprovalRequired:
    """A return without a receipt: today's price, cash only, and only with a manager."""
    if approval is None or not can_approve(approval, Role.MANAGER):
        return ApprovalRequired(action="return without receipt", reason="no original sale")
    cart = Cart(policy=policy, cart_id=return_id)
    for item, quantity in items:
        cart = cart.add_item(item, quantity)
    totals = cart.totals()
    lines = tuple(
        ReturnLine(
            line_id=line.line_id,
            item_id=line.item_id,
            name=line.name,
            department=line.department,
            tax_class=line.tax_class,
            tax_rate=policy.tax.tax_class(line.tax_class).rate,
            quantity=line.quantity,
            refund_minor=t.total_minor,
            tax_minor=t.tax_minor,
        )
        for line, t in zip(cart.open_lines, totals.lines, strict=True)
    )
    cash, rounding = _cash_part(totals.total_minor, policy.currency)
    return SaleReturn(
        return_id=return_id,
        register_id=register_id,
        receipt_number=receipt_number,
        shift_id=shift_id,
        cashier_id=cashier_id,
        returned_at=returned_at,
        currency=policy.currency.code,
        exponent=policy.currency.exponent,
        original_sale_id=None,
        original_receipt=None,
        lines=lines,
        refund_minor=totals.total_minor,
        tax_minor=totals.tax_minor,
        rounding_minor=rounding,
        refunds=() if cash is None else (cash,),
        approved_by=approval.approver_id,
    )


async def refund_cards(
    terminal: PaymentTerminal, ret: SaleReturn, *, currency: Currency
) -> SaleReturn:
    """Run the planned card refunds; any the terminal does not approve are paid in cash."""
    done: list[Tender] = []
    for i, tender in enumerate(ret.refunds):
        if tender.kind is not TenderKind.CARD or tender.terminal_reference is None:
            continue
        result = await terminal.refund(
            tender.amount_minor, ret.currency, f"{ret.return_id}-{i + 1}", tender.terminal_reference
        )
        if isinstance(result, CardApproved):
            done.append(tender)
    cash, rounding = _cash_part(ret.refund_minor - sum(t.amount_minor for t in done), currency)
    refunds = (*done, cash) if cash is not None else tuple(done)
    return replace(ret, refunds=refunds, rounding_minor=rounding)
