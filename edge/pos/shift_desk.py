"""The cashier's shift at the register: open with a float, cash in/out, X report, close → Z.

How it works: every step is a domain record committed to the ledger before the in-memory
``Shift`` is trusted. Closing commits ``shift.closed`` and then the numbered ``report.z``; if
the appliance stops between the two,
:func:`edge.pos.shift_recovery.finish_interrupted_close` (run at start) rebuilds the same Z
report from the journal and books it, so a closed shift always has its Z report.
Reports are printed and shown on screen like receipts.
"""

from __future__ import annotations

import uuid

from edge.checkout.receipt_text import render_report
from edge.checkout.shift import CashDirection, CashMoved, ShiftReport, open_shift
from edge.pos.errors import NotAllowed, ShiftAlreadyOpen
from edge.pos.payments import print_receipt
from edge.pos.register import Register, ShownReceipt


async def open_new_shift(register: Register, float_minor: int) -> None:
    """Open a shift with the counted float in the drawer."""
    async with register.command():
        if register.shift is not None and register.shift.closed is None:
            raise ShiftAlreadyOpen(register.shift.opened.shift_id)
        if float_minor < 0:
            raise NotAllowed("The float cannot be negative.")
        cashier = register.require_cashier()
        currency = register.config.currency
        shift, opened = open_shift(
            shift_id=uuid.uuid4().hex,
            register_id=register.register_id,
            opened_by=cashier.id,
            opened_at=register.clock(),
            currency=currency.code,
            exponent=currency.exponent,
            float_minor=float_minor,
        )
        await register.books.book(opened)
        register.shift = shift
        register.last_receipt = None


async def move_cash(
    register: Register, direction: CashDirection, amount_minor: int, *, reason: str
) -> None:
    """Cash into the drawer (change delivery) or out of it (skim to the safe)."""
    async with register.command():
        shift = register.require_shift()
        cashier = register.require_cashier()
        if amount_minor <= 0:
            raise NotAllowed("Type the amount first.")
        if direction is CashDirection.OUT and amount_minor > shift.expected_cash_minor:
            raise NotAllowed("That is more cash than the drawer should hold.")
        moved = CashMoved(
            shift.opened.shift_id,
            direction,
            amount_minor,
            reason.strip() or direction.value,
            cashier.id,
            register.clock(),
        )
        await register.books.book(moved)
        shift.record(moved)


async def x_report(register: Register) -> None:
    """The mid-shift read: journaled, printed and shown; changes nothing."""
    async with register.command():
        shift = register.require_shift()
        await _report(register, shift.x_report(at=register.clock()))


async def close_shift(register: Register, counted_cash_minor: int) -> None:
    """Close with the counted drawer: ``shift.closed`` then the Z report."""
    async with register.command():
        shift = register.require_shift()
        cashier = register.require_cashier()
        if register.cart.open_lines or register.payment is not None:
            raise NotAllowed("Finish, park or void the current sale before closing.")
        if counted_cash_minor < 0:
            raise NotAllowed("The counted cash cannot be negative.")
        closed, z = shift.close(
            counted_cash_minor=counted_cash_minor, by=cashier.id, at=register.clock()
        )
        await register.books.book(closed)
        await _report(register, z)
        register.shift = None


async def _report(register: Register, report: ShiftReport) -> None:
    number = await register.books.book_report(report)
    text = render_report(report, width=register.config.receipt_width)
    receipt_id = f"{register.register_id}-{number:06d}"
    register.last_receipt = ShownReceipt(f"report.{report.report.value}", receipt_id, text)
    await print_receipt(register, text, receipt_no=number)
