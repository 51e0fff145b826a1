"""A sale at the register ends up in the ledger once, with its receipt, however often pay is hit."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from edge.checkout.errors import InvalidQuantity, TenderShort, UnknownItem
from edge.checkout.payment_terminal_sim import Outcome, PaymentTerminalSimulator
from edge.pos import payments
from edge.pos.errors import AlreadyPaid, CardNotApproved, NotSignedIn, PaymentStarted
from edge.pos.register import Register
from tests.edge.pos.conftest import CABLE, COFFEE, MILK, Clock, signed_in_with_shift


async def _journal(register: Register) -> list[dict[str, object]]:
    return [json.loads(r.record) for r in await register.ledger.read_records(1, 1000)]


async def test_split_tender_sale_is_booked_with_checkout_detail(
    register: Register, terminal_sim: PaymentTerminalSimulator
) -> None:
    await signed_in_with_shift(register)
    await register.scan(MILK)
    await register.scan(COFFEE)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    assert register.payment is not None
    assert register.payment.due_minor == 175 + 1290
    await payments.pay_cash(register, 1000, cart_id=cart_id)
    assert register.payment is not None
    assert register.payment.remaining_minor == 465
    await payments.pay_card(register, cart_id=cart_id)

    assert register.payment is None
    assert register.cart.cart_id != cart_id
    records = await _journal(register)
    sale = records[-1]
    assert sale["kind"] == "sale.completed"
    body = sale["body"]
    assert isinstance(body, dict)
    assert body["receipt_no"] == 1
    assert body["total_minor"] == 1465
    assert [t["kind"] for t in body["tenders"]] == ["cash", "card"]
    assert body["checkout"]["receipt_number"] == 1
    assert body["checkout"]["cashier_id"] == "E01"
    assert terminal_sim.charged_minor == 465
    assert register.last_receipt is not None
    assert "Receipt 1-000001" in register.last_receipt.text
    assert register.shift is not None
    assert register.shift.sales_count == 1


async def test_cash_rounding_books_what_went_into_the_drawer(register: Register) -> None:
    await signed_in_with_shift(register)
    await register.scan(MILK)  # 1.75
    await register.add_item("I00015")  # milk chocolate 1.99
    await register.set_quantity(1, Decimal(3), cart_id=register.cart.cart_id)  # 5.25 + 1.99
    cart_id = register.cart.cart_id
    total = register.cart.totals().total_minor
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 2000, cart_id=cart_id)
    body = (await _journal(register))[-1]["body"]
    assert isinstance(body, dict)
    assert body["checkout"]["total_minor"] == total
    assert body["total_minor"] == total + body["checkout"]["rounding_minor"]
    assert body["change_minor"] == 2000 - body["total_minor"]
    assert body["checkout"]["rounding_minor"] == 1  # 7.24 is paid as 7.25 in cash
    assert body["change_minor"] == 2000 - 725


async def test_pay_twice_books_one_sale(register: Register) -> None:
    await signed_in_with_shift(register)
    await register.scan(CABLE)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 2000, cart_id=cart_id)
    with pytest.raises(AlreadyPaid) as err:
        await payments.pay_cash(register, 2000, cart_id=cart_id)
    assert err.value.receipt_id == "1-000001"
    assert len(await register.ledger.sale_ids()) == 1


async def test_bad_input_is_refused_and_nothing_is_booked(
    register: Register, terminal_sim: PaymentTerminalSimulator
) -> None:
    await signed_in_with_shift(register)
    seq = register.ledger.last_seq
    with pytest.raises(UnknownItem):
        await register.scan("4006381333931")
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    for bad in (Decimal(0), Decimal(-2)):
        with pytest.raises(InvalidQuantity):
            await register.set_quantity(1, bad, cart_id=cart_id)
    await payments.start_payment(register, cart_id=cart_id)
    with pytest.raises(PaymentStarted):
        await register.scan(MILK, cart_id=cart_id)
    await payments.pay_cash(register, 100, cart_id=cart_id)
    assert register.alert is not None
    assert register.alert.code == "tender_short"
    with pytest.raises(TenderShort):
        await payments.complete(register, cart_id=cart_id)
    terminal_sim.push(Outcome.DECLINE)
    with pytest.raises(CardNotApproved):
        await payments.pay_card(register, cart_id=cart_id)
    assert register.ledger.last_seq == seq
    await register.lock()
    with pytest.raises(NotSignedIn):
        await register.scan(MILK)


async def test_idle_register_locks_itself_and_keeps_the_sale(
    register: Register, clock: Clock
) -> None:
    await signed_in_with_shift(register)
    await register.scan(MILK)
    clock.advance(seconds=119)
    register.tick()
    assert register.cashier is not None
    clock.advance(seconds=1)
    register.tick()
    assert register.cashier is None
    with pytest.raises(NotSignedIn):
        await register.scan(MILK)
    await register.sign_in("E02", "2468")
    assert len(register.cart.open_lines) == 1
