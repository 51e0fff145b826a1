"""A month of generated sales: earn, burn, tier changes and store credit reconcile to the point.

A seeded generator rings a month at a real register (real checkout, ledger, replicator): sales
with and without customers, points and store credit redeemed (sometimes with the cloud's balance,
sometimes offline against what the register last saw), returns refunded as store credit; some
customers spend enough to change tier. The real ingest worker stores the journal over a real
Mosquitto on SQLite and on PostgreSQL. Then, per customer, the register's side (its own journal,
summed) and the cloud's ledger (balances and the sum of its movements) must be equal to the point
and to the minor unit, and every tier the register journaled is the tier the lifetime points
before that sale give.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from control_plane.loyalty.tables import loyalty_balances, loyalty_movements
from edge.checkout.staff import IdlePolicy
from edge.ledger import Ledger
from edge.pos import customers, payments, returns_desk
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.shift_desk import open_new_shift
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from protocols.customer_card import format_customer_card, new_customer_id
from protocols.loyalty import LoyaltyRules, tier_for
from tests.harness.cloud import Cloud
from tests.harness.services import wait_until
from tests.integration.test_loyalty_two_stores import CloudLookup, Network, Till

pytestmark = [pytest.mark.services]

GTINS = ("7610200000019", "8711000000120", "5000395000253", "7610201000025", "7610202000031")
DAYS = 30
SALES_PER_DAY = 4


class MonthClock:
    """The register's clock, moved through the month by the generator."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _ring_month(reg: Register, network: Network, rng: random.Random) -> int:
    """Ring the month; how many returns issued store credit."""
    people = [new_customer_id() for _ in range(5)]
    receipts: list[str] = []
    credits = 0
    for day in range(DAYS):
        clock = reg.clock
        assert isinstance(clock, MonthClock)
        clock.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(days=day)
        for _ in range(SALES_PER_DAY):
            clock.now += timedelta(minutes=rng.randint(5, 90))
            network.up = rng.random() < 0.5
            person = rng.choice(people) if rng.random() < 0.8 else None
            if person is not None:
                await reg.scan(format_customer_card(person))
            for _ in range(rng.randint(1, 4)):
                await reg.scan(rng.choice(GTINS))
            if rng.random() < 0.3:  # the big spenders: some cross a tier threshold
                await reg.set_quantity(1, Decimal(rng.randint(5, 30)), cart_id=reg.cart.cart_id)
            cart_id = reg.cart.cart_id
            await payments.start_payment(reg, cart_id=cart_id)
            attached = reg.loyalty.attached
            if attached is not None and attached.redeemable_points() > 0 and rng.random() < 0.4:
                await customers.pay_points(reg, None, cart_id=cart_id)
            if (
                reg.payment is not None
                and attached is not None
                and attached.redeemable_credit_minor() > 0
                and rng.random() < 0.5
            ):
                await customers.pay_store_credit(reg, None, cart_id=cart_id)
            if reg.payment is not None:
                await payments.pay_cash(reg, reg.payment.cash_due_minor, cart_id=cart_id)
            assert reg.last_receipt is not None
            if person is not None:
                receipts.append(reg.last_receipt.receipt_id)
            if receipts and rng.random() < 0.15:  # a line comes back, as store credit
                original = await returns_desk.find_sale(reg, rng.choice(receipts))
                line = next((ln for ln in original.lines if ln.left > 0), None)
                if line is not None:
                    await returns_desk.refund(
                        reg, original.receipt_id, {line.line_id: Decimal(1)}, as_credit=True
                    )
                    credits += 1
    return credits


def _register_side(records: list[dict[str, Any]], rules: LoyaltyRules) -> dict[str, list[int]]:
    """Per customer from the register's own journal: points, lifetime, credit (and tiers)."""
    sums: dict[str, list[int]] = {}
    for record in records:
        body = record["body"]
        if record["kind"] == "sale.completed" and "customer_id" in body:
            mine = sums.setdefault(body["customer_id"], [0, 0, 0])
            loyalty = body["loyalty"]
            assert loyalty["tier"] == tier_for(rules, mine[1]).name  # the tier before the sale
            mine[0] += loyalty["points_earned"] - loyalty["points_burned"]
            mine[1] += loyalty["points_earned"]
            mine[2] -= loyalty["store_credit_redeemed_minor"]
        elif record["kind"] == "sale.returned" and body.get("customer_id"):
            mine = sums.setdefault(body["customer_id"], [0, 0, 0])
            mine[0] -= body["points_reversed"]  # what the returned part had earned
            mine[1] -= body["points_reversed"]
            mine[2] += body["store_credit_issued_minor"]
    return sums


async def test_a_month_of_sales_reconciles_register_and_cloud_to_the_point(
    cloud: Cloud, tmp_path: Path
) -> None:
    await cloud.register("reg-month")
    engine = cloud.engine
    assert engine is not None
    network = Network()
    lookup = CloudLookup(engine, "reg-month", network)
    rng = random.Random(14)
    async with (
        Ledger(tmp_path / "month.db", register_id="1") as ledger,
        RegisterDb(tmp_path / "month-pos.db") as db,
    ):
        reg = Register(
            ledger=ledger,
            db=db,
            # the cashier stays signed in all month: a PIN check per sale would be the test's cost
            config=replace(load_store_config(), idle=IdlePolicy(lock_after=timedelta(days=60))),
            catalog=load_snapshot_file(DEMO_CATALOG),
            clock=MonthClock(),
        )
        await reg.start()
        reg.loyalty.source = lookup
        await reg.sign_in("E01", "1234")
        await open_new_shift(reg, 10000)
        till = Till(reg, "reg-month", cloud.broker_url)
        till.connect()
        try:
            credits = await _ring_month(reg, network, rng)
            await wait_until(lambda: ledger.backlog == 0, timeout=90, what="month replicated")
        finally:
            await till.cut()
        records = [json.loads(r.record) for r in await ledger.read_records(1, 100_000)]

    rules = reg.config.loyalty
    mine = _register_side(records, rules)
    assert credits > 0
    assert any(r["body"].get("points_reversed") for r in records if r["kind"] == "sale.returned")
    assert len({tier_for(rules, lifetime).name for _, lifetime, _ in mine.values()}) > 1
    async with engine.connect() as conn:
        balances = {
            row.customer_id: [int(row.points), int(row.lifetime_points), int(row.credit_minor)]
            for row in await conn.execute(select(loyalty_balances))
        }
        tiers = {
            row.customer_id: row.tier
            for row in await conn.execute(
                select(loyalty_balances.c.customer_id, loyalty_balances.c.tier)
            )
        }
        summed = {
            row.customer_id: [int(row.points), int(row.credit)]
            for row in await conn.execute(
                select(
                    loyalty_movements.c.customer_id,
                    func.sum(loyalty_movements.c.points).label("points"),
                    func.sum(loyalty_movements.c.credit_minor).label("credit"),
                ).group_by(loyalty_movements.c.customer_id)
            )
        }
    assert balances == mine
    assert summed == {customer: [p, c] for customer, (p, _, c) in mine.items()}
    assert tiers == {
        customer: tier_for(rules, life).name for customer, (_, life, _) in mine.items()
    }
