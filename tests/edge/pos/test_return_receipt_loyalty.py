"""A return's printed receipt says what it moved on the customer's account (issue 14).

The real register prints to the raw-TCP ESC/POS printer simulator, composed as the appliance
does (tests/edge/peripherals/test_hub_receipt.py); the paper's bytes are read back as text lines.
A return of a sale that earned points prints the points it takes back; a return of a sale paid
with points prints the store credit it issues instead of cash; a return without a customer prints
neither.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from edge.checkout.loyalty import KnownBalance
from edge.peripherals.printer.preview import interpret
from edge.pos import customers, payments, returns_desk
from edge.pos.register import Register
from protocols.customer_card import format_customer_card, new_customer_id
from tests.edge.peripherals.printer.conftest import ARTIFACTS
from tests.edge.peripherals.test_hub_receipt import GUARD_S, running_till, sell_for_cash

MILK, COFFEE, CABLE = "7610200000019", "8711000000120", "5000395000253"  # 1.75, 12.90, 14.90
RULE = "-" * 42


def _lr(left: str, right: str) -> str:
    """A 42-column line with ``left`` and ``right`` at the paper's edges."""
    return left + " " * (42 - len(left) - len(right)) + right


async def _last_receipt(register: Register) -> str:
    assert register.last_receipt is not None
    return register.last_receipt.receipt_id


async def test_a_returns_paper_prints_the_points_it_takes_back(tmp_path: Path) -> None:
    customer = new_customer_id()
    async with asyncio.timeout(GUARD_S), running_till(tmp_path) as (register, _, run):
        await register.scan(format_customer_card(customer))  # no cloud: attached offline
        await sell_for_cash(register, COFFEE, CABLE, cash_minor=3000)  # earns 27 points
        sale = await _last_receipt(register)
        await returns_desk.refund(register, sale, {1: Decimal(1)})  # the coffee, in cash
        await sell_for_cash(register, MILK, cash_minor=200)  # no customer
        await returns_desk.refund(register, await _last_receipt(register), {1: Decimal(1)})
        _, returned, _, plain = await run.store.printer.wait_for_jobs(4)
    paper = interpret(bytes(returned.data))
    paper.to_png(ARTIFACTS / "receipt-register-return-points.png")
    lines = paper.text_lines
    assert "RETURN" in " ".join(lines)
    assert _lr("Cash", "12.90") in lines
    block = lines[lines.index(f"Customer {customer}") - 1 :]
    assert block[:3] == [RULE, f"Customer {customer}", _lr("Points reversed", "-13")]
    assert not any("Store credit" in line for line in lines)  # refunded in cash
    plain_lines = interpret(bytes(plain.data)).text_lines
    assert not any("Customer" in line or "Points" in line for line in plain_lines)


async def test_a_returns_paper_prints_the_store_credit_it_issues(tmp_path: Path) -> None:
    customer = new_customer_id()
    async with asyncio.timeout(GUARD_S), running_till(tmp_path) as (register, _, run):
        register.loyalty.remember(
            KnownBalance(
                customer_id=customer, points=100, lifetime_points=100, offline_points_left=100
            )
        )
        await register.scan(format_customer_card(customer))
        await register.scan(MILK)
        cart_id = register.cart.cart_id
        await payments.start_payment(register, cart_id=cart_id)
        await customers.pay_points(register, 100, cart_id=cart_id)  # 1.00 in points
        await payments.pay_cash(register, 75, cart_id=cart_id)
        await returns_desk.refund(register, await _last_receipt(register), {1: Decimal(1)})
        _, returned = await run.store.printer.wait_for_jobs(2)
    paper = interpret(bytes(returned.data))
    paper.to_png(ARTIFACTS / "receipt-register-return-credit.png")
    lines = paper.text_lines
    assert _lr("Store credit", "1.75") in lines  # how the refund was paid: never cash
    block = lines[lines.index(f"Customer {customer}") :]
    assert block[:2] == [f"Customer {customer}", _lr("Store credit issued", "+1.75")]
    assert not any(line.startswith("Points reversed") for line in lines)  # it earned none
