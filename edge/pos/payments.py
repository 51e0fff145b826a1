"""Paying at the register: start, cash, card, split tender, completion, and voiding a sale.

How it works: ``start_payment`` freezes the amount due and the payment's idempotency key (from
the register and cart ids). Each tender moves the domain ``Payment`` forward; the moment it is
settled the sale is booked (``Bookkeeper.book_sale``), folded into the shift, its receipt
printed, and a new cart started. A cash amount below what is due is a partial tender (split
with a card or more cash) and the screen says how much is still due. Card requests hold
``busy``: a second tap gets "wait", not a second charge, and the terminal reference is stable
per attempt so a retried request is idempotent at the terminal too.
"""

from __future__ import annotations

from edge.checkout.errors import TenderShort
from edge.checkout.loyalty import after_sale, settle
from edge.checkout.money import format_minor
from edge.checkout.receipt_text import render_receipt
from edge.checkout.sale import void_sale
from edge.checkout.staff import Role
from edge.checkout.tenders import (
    CardApproved,
    CardCustomerCancel,
    CardDeclined,
    CardTimeout,
    Payment,
    TenderKind,
    pay_by_card,
)
from edge.pos.errors import (
    ApprovalNeeded,
    CardNotApproved,
    NoSaleInProgress,
    NotAllowed,
)
from edge.pos.register import PinEntry, Register, ShownReceipt
from protocols.loyalty import digital_receipt_link


async def start_payment(register: Register, *, cart_id: str | None) -> None:
    """Go to payment: the cart is frozen, the amount due fixed."""
    async with register.command():
        register.require_cart(cart_id)
        register.require_shift()
        if register.payment is not None:
            return  # already paying this cart: a second tap changes nothing
        if not register.cart.open_lines:
            raise NoSaleInProgress
        total = register.cart.totals().total_minor
        register.payment = Payment.start(
            due_minor=total,
            currency=register.config.currency,
            register_id=register.register_id,
            cart_id=register.cart.cart_id,
        )
        if total == 0:
            await _complete(register)


async def cancel_payment(register: Register, *, cart_id: str | None) -> None:
    """Back from payment to the cart; only while nothing has been tendered."""
    async with register.command():
        register.require_cart(cart_id)
        if register.payment is not None and register.payment.tenders:
            raise NotAllowed("Tenders were taken: finish the payment or void the sale.")
        register.payment = None


def _payment(register: Register, cart_id: str | None) -> Payment:
    register.require_cart(cart_id)
    if register.payment is None:
        raise NoSaleInProgress("Press Pay first.")
    return register.payment


async def pay_cash(register: Register, received_minor: int, *, cart_id: str | None) -> None:
    """Cash handed over; settles with change, or stays a partial tender when short."""
    async with register.command():
        payment = _payment(register, cart_id)
        if received_minor <= 0:
            raise NotAllowed("Type the cash received first.")
        register.payment = payment.add_cash(received_minor)
        if register.payment.settled:
            await _complete(register)
            return
        due = format_minor(register.payment.remaining_minor, register.config.currency)
        register.raise_alert(
            "tender_short", f"Tender short: {due} still due. Take more cash or a card."
        )


async def pay_card(
    register: Register, amount_minor: int | None = None, *, cart_id: str | None
) -> None:
    """A card payment through the terminal (all that is due unless ``amount_minor``)."""
    async with register.command():
        payment = _payment(register, cart_id)
        if register.terminal is None:
            raise NotAllowed("No card terminal is connected to this register.")
        register.busy = "the card terminal is working"
        register.changed()
        try:
            reference = payment.next_card_reference()
            payment, result = await pay_by_card(register.terminal, payment, amount_minor)
        finally:
            register.busy = None
        register.payment = payment
        if isinstance(result, CardApproved):
            register.card_refs.append(reference)
        elif isinstance(result, CardDeclined):
            raise CardNotApproved(result.reason)
        elif isinstance(result, CardTimeout):
            raise CardNotApproved("no answer from the terminal")
        elif isinstance(result, CardCustomerCancel):
            raise CardNotApproved("cancelled by the customer")
        if payment.settled:
            await _complete(register)


async def complete(register: Register, *, cart_id: str | None) -> None:
    """Book the sale now; refuses with ``TenderShort`` while something is still due."""
    async with register.command():
        payment = _payment(register, cart_id)
        if not payment.settled:
            raise TenderShort(
                due_minor=payment.due_minor + payment.rounding_minor,
                tendered_minor=payment.paid_minor,
            )
        await _complete(register)


async def complete_settled(register: Register) -> None:
    """Book the sale if the tenders taken so far settle it (inside the caller's command)."""
    if register.payment is not None and register.payment.settled:
        await _complete(register)


async def _complete(register: Register) -> None:
    payment, shift, cashier = (
        _payment(register, None),
        register.require_shift(),
        register.require_cashier(),
    )
    customer = register.loyalty.attached
    attached = None
    if customer is not None:
        rules, exponent = register.config.loyalty, register.config.currency.exponent
        attached = (customer.customer_id, settle(rules, customer, payment, exponent=exponent))
    sale, committed = await register.books.book_sale(
        register.cart,
        payment,
        shift_id=shift.opened.shift_id,
        cashier_id=cashier.id,
        at=register.clock(),
        loyalty=attached,
    )
    if customer is not None and attached is not None and not committed.replayed:
        await register.loyalty.booked(committed.seq, customer, after_sale(customer, attached[1]))
    if not committed.replayed:
        shift.record(sale)
    register.remember_completed(register.cart.cart_id, sale.receipt_id)
    register.next_sale()
    link = (
        None
        if sale.customer_id is None
        else digital_receipt_link(register.config.loyalty, sale.idempotency_key)
    )
    text = render_receipt(
        sale,
        width=register.config.receipt_width,
        header=register.config.receipt_header,
        footer=register.config.receipt_footer,
        cashier_name=cashier.name,
        receipt_link=link,
    )
    register.last_receipt = ShownReceipt("sale", sale.receipt_id, text, sale.change_minor)
    await print_receipt(register, text, receipt_no=sale.receipt_number, link=link)


async def print_receipt(
    register: Register, text: str, *, receipt_no: int, link: str | None = None
) -> None:
    """Print; a printer problem is shown, never lets a booked sale look failed.

    ``link``: the customer's digital receipt, printed as a QR code under the text.
    """
    try:
        await register.printer.print_receipt(text, receipt_no=receipt_no, link=link)
    except Exception as err:  # any printer failure means the same to the cashier
        register.raise_alert(
            "printer", "Printer problem: the receipt is on screen; reprint later.", str(err)
        )


async def void_current_sale(
    register: Register, *, cart_id: str | None, manager: PinEntry | None
) -> None:
    """Abandon the sale before payment; journaled so voids show on the Z report.

    A cart with lines needs a manager; card payments already approved are reversed first.
    """
    async with register.command():
        register.require_cart(cart_id)
        shift, cashier = register.require_shift(), register.require_cashier()
        if not register.cart.open_lines:
            register.next_sale()
            return
        approval = await register.approval(manager)
        if approval is None or approval.role < Role.MANAGER:
            raise ApprovalNeeded(action="void sale", reason="lines in the cart", role="manager")
        payment = register.payment
        if payment is not None and payment.tenders and register.terminal is not None:
            register.busy = "reversing card payments"
            try:
                for reference in register.card_refs:
                    await register.terminal.cancel(reference)
            finally:
                register.busy = None
        voided = void_sale(
            register.cart,
            register_id=register.register_id,
            shift_id=shift.opened.shift_id,
            cashier_id=cashier.id,
            voided_at=register.clock(),
            approved_by=approval.approver_id,
        )
        await register.books.book(voided)
        shift.record(voided)
        register.next_sale()


def cash_taken(payment: Payment) -> int:
    """Cash received so far (for the screen)."""
    return sum(t.received_minor for t in payment.tenders if t.kind is TenderKind.CASH)
