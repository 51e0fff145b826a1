"""Loyalty at a real register on a real ledger: a card attaches, earning and redeeming offline.

The register has no balance source here (the cloud is unreachable): a scanned ``SFC1:`` card is
read offline, the sale earns by the rules, and the next sale redeems what this register saw,
within the customer's offline limit. Every movement is in the sale's journal body, which is the
contract's :class:`SaleBody`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from edge.checkout.loyalty import KnownBalance
from edge.pos import customers, payments, returns_desk
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.errors import NotAllowed
from edge.pos.loyalty_desk import CloudUnreachable
from edge.pos.printer import ScreenPrinter
from edge.pos.register import Register
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from protocols.customer_card import format_customer_card, new_customer_id
from protocols.loyalty import LoyaltyRules
from protocols.sale_body import SaleBody
from tests.edge.pos.conftest import CABLE, COFFEE, MILK, signed_in_with_shift


async def _sales(register: Register) -> list[dict[str, Any]]:
    records = [json.loads(r.record) for r in await register.ledger.read_records(1, 1000)]
    return [r["body"] for r in records if r["kind"] == "sale.completed"]


class Unreachable:
    """A balance source whose cloud never answers (the network is cut)."""

    async def fetch(self, customer_id: str) -> KnownBalance | None:
        raise CloudUnreachable(customer_id)


class Answering:
    """A balance source that answers with what it was given."""

    def __init__(self, balance: KnownBalance) -> None:
        self.balance = balance

    async def fetch(self, customer_id: str) -> KnownBalance | None:
        return self.balance if customer_id == self.balance.customer_id else None


async def test_a_scanned_card_earns_offline_and_the_next_sale_redeems_within_the_limit(
    register: Register,
) -> None:
    await signed_in_with_shift(register)
    register.loyalty.source = Unreachable()
    customer = new_customer_id()

    await register.scan(format_customer_card(customer))  # the scanner path, before item lookup
    assert register.loyalty.attached is not None
    assert register.loyalty.attached.customer_id == customer
    assert not register.cart.lines
    await register.scan(COFFEE)  # 12.90
    await register.scan(CABLE)  # 14.90
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 3000, cart_id=cart_id)

    first = (await _sales(register))[-1]
    assert first["customer_id"] == customer
    assert first["loyalty"]["points_earned"] == 27  # 27.80 paid, 1 point per franc, Member
    assert first["loyalty"]["points_burned"] == 0
    assert register.loyalty.attached is None  # the next sale starts without a customer

    await register.scan(format_customer_card(customer))
    attached = register.loyalty.attached
    assert attached is not None
    assert attached.points == 27
    await register.scan(MILK)  # 1.75
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    with pytest.raises(NotAllowed, match="Only 27 points"):
        await customers.pay_points(register, 28, cart_id=cart_id)
    used = await customers.pay_points(register, 20, cart_id=cart_id)
    assert used == 20
    await payments.pay_cash(register, 200, cart_id=cart_id)

    second = (await _sales(register))[-1]
    body = SaleBody.from_body(second)
    assert body.loyalty is not None
    assert body.loyalty.points_burned == 20
    assert [t["kind"] for t in body.tenders] == ["loyalty_points", "cash"]
    assert body.loyalty.points_earned == 1  # 1.75 - 0.20 in points: 1.55 paid in money
    assert register.loyalty.cache[customer].points == 27 - 20 + 1


async def test_offline_the_tiers_limit_caps_redemption_of_a_balance_seen_online(
    register: Register,
) -> None:
    await signed_in_with_shift(register)
    customer = new_customer_id()
    seen = KnownBalance(
        customer_id=customer,
        points=2000,
        lifetime_points=2000,
        offline_points_left=1000,  # Silver's offline limit
        offline_credit_left_minor=5000,
    )
    register.loyalty.remember(seen)
    register.loyalty.source = Unreachable()
    await register.scan(format_customer_card(customer))
    await register.scan(CABLE)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    with pytest.raises(NotAllowed, match="Only 1000 points may be redeemed offline"):
        await customers.pay_points(register, 1001, cart_id=cart_id)
    assert await customers.pay_points(register, None, cart_id=cart_id) == 1000
    await payments.pay_cash(register, 500, cart_id=cart_id)
    assert (await _sales(register))[-1]["loyalty"]["points_burned"] == 1000
    assert register.loyalty.cache[customer].offline_points_left == 0


async def test_the_whole_sale_paid_in_points_books_at_once(register: Register) -> None:
    await signed_in_with_shift(register)
    customer = new_customer_id()
    register.loyalty.source = Answering(
        KnownBalance(customer_id=customer, points=5000, lifetime_points=5000, fresh=True)
    )
    await register.scan(format_customer_card(customer))
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    assert await customers.pay_points(register, None, cart_id=cart_id) == 175
    sale = (await _sales(register))[-1]
    assert sale["loyalty"] == {
        "tier": "Gold",
        "points_earned": 0,
        "points_burned": 175,
        "point_value_minor": 1,
        "store_credit_redeemed_minor": 0,
    }


async def test_a_damaged_card_is_a_message_not_an_item_lookup(register: Register) -> None:
    await signed_in_with_shift(register)
    with pytest.raises(NotAllowed, match="Loyalty card not read"):
        await register.scan("SFC1:C0000000000001")
    assert register.loyalty.attached is None


async def test_points_cannot_be_tendered_without_a_customer(register: Register) -> None:
    await signed_in_with_shift(register)
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    with pytest.raises(NotAllowed, match="Scan the customer's loyalty card first"):
        await customers.pay_points(register, 10, cart_id=cart_id)


async def test_a_customers_receipt_prints_their_id_points_and_the_digital_receipt_link(
    register: Register,
) -> None:
    rules = LoyaltyRules(digital_receipt_url="https://receipts.example.com/r/{sale_id}")
    register.config = replace(register.config, loyalty=rules)
    await signed_in_with_shift(register)
    customer = new_customer_id()
    await register.scan(format_customer_card(customer))
    await register.scan(COFFEE)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 1290, cart_id=cart_id)
    assert register.last_receipt is not None
    text = register.last_receipt.text
    sale_id = (await _sales(register))[-1]["sale_id"]
    assert f"Customer {customer} (Member)" in text
    assert "Points earned" in text
    assert "+12" in text
    printed = text.split("Digital receipt:\n")[1].split("\n-")[0]
    assert printed.replace("\n", "") == f"https://receipts.example.com/r/{sale_id}"
    assert all(len(line) <= 42 for line in printed.split("\n"))  # wrapped to the paper


async def test_a_receipt_without_a_customer_prints_no_link(register: Register) -> None:
    rules = LoyaltyRules(digital_receipt_url="https://receipts.example.com/r/{sale_id}")
    register.config = replace(register.config, loyalty=rules)
    await signed_in_with_shift(register)
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 200, cart_id=cart_id)
    assert register.last_receipt is not None
    assert "Digital receipt" not in register.last_receipt.text
    assert "Customer" not in register.last_receipt.text


async def test_a_sale_paid_with_points_is_refunded_as_store_credit_never_cash(
    register: Register,
) -> None:
    await signed_in_with_shift(register)
    customer = new_customer_id()
    register.loyalty.source = Answering(
        KnownBalance(customer_id=customer, points=100, lifetime_points=100, fresh=True)
    )
    await register.scan(format_customer_card(customer))
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await customers.pay_points(register, 100, cart_id=cart_id)
    await payments.pay_cash(register, 75, cart_id=cart_id)
    assert register.last_receipt is not None
    receipt = register.last_receipt.receipt_id

    await returns_desk.refund(register, receipt, {1: Decimal(1)})
    records = [json.loads(r.record) for r in await register.ledger.read_records(1, 100)]
    returned = records[-1]["body"]
    assert records[-1]["kind"] == "sale.returned"
    assert returned["customer_id"] == customer
    assert returned["store_credit_issued_minor"] == 175
    assert [t["kind"] for t in returned["refunds"]] == ["store_credit"]


async def test_returning_a_sale_in_parts_takes_back_exactly_the_points_it_earned(
    register: Register,
) -> None:
    await signed_in_with_shift(register)
    register.loyalty.source = Unreachable()
    customer = new_customer_id()
    await register.scan(format_customer_card(customer))
    await register.scan(COFFEE)  # 12.90
    await register.scan(CABLE)  # 14.90
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 3000, cart_id=cart_id)
    assert register.last_receipt is not None
    receipt = register.last_receipt.receipt_id
    assert (await _sales(register))[-1]["loyalty"]["points_earned"] == 27

    await returns_desk.refund(register, receipt, {1: Decimal(1)})  # the coffee, in cash
    await returns_desk.refund(register, receipt, {2: Decimal(1)})  # then the cable
    records = [json.loads(r.record) for r in await register.ledger.read_records(1, 1000)]
    returns = [r["body"] for r in records if r["kind"] == "sale.returned"]
    assert [b["points_reversed"] for b in returns] == [13, 14]  # round(27 × 12.90 / 27.80)
    assert {b["customer_id"] for b in returns} == {customer}
    assert [b["store_credit_issued_minor"] for b in returns] == [0, 0]
    assert all(t["kind"] == "cash" for b in returns for t in b["refunds"])

    await register.scan(format_customer_card(customer))  # the register's balance has them back
    attached = register.loyalty.attached
    assert attached is not None
    assert (attached.points, attached.lifetime_points) == (0, 0)


async def test_a_return_of_a_sale_without_a_customer_takes_back_no_points(
    register: Register,
) -> None:
    await signed_in_with_shift(register)
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 200, cart_id=cart_id)
    assert register.last_receipt is not None
    await returns_desk.refund(register, register.last_receipt.receipt_id, {1: Decimal(1)})
    records = [json.loads(r.record) for r in await register.ledger.read_records(1, 1000)]
    assert records[-1]["body"]["points_reversed"] == 0
    assert records[-1]["body"]["customer_id"] is None


async def test_a_restarted_register_redeems_offline_against_the_balance_it_stored(
    register: Register,
) -> None:
    await signed_in_with_shift(register)
    customer = new_customer_id()
    register.loyalty.source = Answering(
        KnownBalance(
            customer_id=customer,
            points=500,
            lifetime_points=1200,
            fresh=True,
            offline_points_left=1000,  # Silver's limit, as the cloud's device route says
        )
    )
    await register.scan(format_customer_card(customer))  # online: Silver, 500 points
    await register.scan(MILK)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    await payments.pay_cash(register, 200, cart_id=cart_id)  # earns floor(1.75 x 1.25) = 2

    restarted = Register(  # the same ledger and pos.db, a new register: nothing in memory
        ledger=register.ledger,
        db=register.db,
        config=load_store_config(),
        catalog=load_snapshot_file(DEMO_CATALOG),
        printer=ScreenPrinter(),
        clock=register.clock,
    )
    await restarted.start()
    assert not restarted.loyalty.cache
    restarted.loyalty.source = Unreachable()
    await restarted.sign_in("E01", "1234")
    await restarted.scan(format_customer_card(customer))
    attached = restarted.loyalty.attached
    assert attached is not None
    assert (attached.points, attached.lifetime_points, attached.fresh) == (502, 1202, False)
    assert restarted.loyalty.pending[customer]  # the sale the cloud may not have booked yet
    await restarted.scan(COFFEE)  # 12.90
    cart_id = restarted.cart.cart_id
    await payments.start_payment(restarted, cart_id=cart_id)
    assert await customers.pay_points(restarted, 300, cart_id=cart_id) == 300
    await payments.pay_cash(restarted, 1000, cart_id=cart_id)
    body = SaleBody.from_body((await _sales(restarted))[-1])
    assert body.loyalty is not None
    assert body.loyalty.points_burned == 300
