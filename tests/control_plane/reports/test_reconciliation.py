"""The cloud's reports reconcile to the cent with the register's own Z report.

A real register (checkout, ledger, card terminal simulator) sells in a store in New York: cash
sales with cash rounding, a split cash + card sale, line and basket discounts, a partial return
to the original tender, cash in and out, a void approved by a manager, then the shift is closed
with a short drawer. Its ledger replicates through real Mosquitto to the real ingest, on SQLite
and on PostgreSQL. The cloud's figures for the shift, folded from the replicated journal, equal
the Z report the register journaled, field by field; the sales summary for the store's local day
equals the Z's totals; and a sale rung after 19:00 New York time (the next day in UTC) belongs to
the store's local day, not UTC's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from control_plane.devices.tables import stores
from control_plane.reports import figures, rollups
from control_plane.reports.facts import read_facts, stores_in_scope
from control_plane.reports.period import Period
from control_plane.reports.rollups import report_rollup_marks
from control_plane.reports.service import Filters, build
from control_plane.tenancy import TenantScope
from edge.checkout.cart import AmountOff, PercentOff
from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.checkout.shift import CashDirection
from edge.ledger import Ledger
from edge.pos import payments, returns_desk, shift_desk
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.printer import ScreenPrinter
from edge.pos.register import PinEntry, Register
from edge.pos.register_db import RegisterDb
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from edge.replication.replicator import Replicator
from protocols.broker_url import parse_broker_url
from tests.harness.appliance import FAST
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.services import wait_until

pytestmark = [pytest.mark.services]

MILK = "7610200000019"  # 1.75, reduced rate
COFFEE = "8711000000120"  # 12.90
CABLE = "5000395000253"  # 14.90, standard rate
DEVICE = "rec-r1"
NEW_YORK = "America/New_York"


class Clock:
    """The register's and the ledger's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 09:00 in New York

    def __call__(self) -> datetime:
        return self.now

    def ms(self) -> int:
        return int(self.now.timestamp()) * 1000

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@contextlib.asynccontextmanager
async def a_register(tmp_path: Path, clock: Clock) -> AsyncIterator[Register]:
    async with (
        PaymentTerminalSimulator() as sim,
        Ledger(tmp_path / "ledger.db", register_id="1", clock=clock.ms) as ledger,
        RegisterDb(tmp_path / "pos.db") as db,
    ):
        register = Register(
            ledger=ledger,
            db=db,
            config=load_store_config(),
            catalog=load_snapshot_file(DEMO_CATALOG),
            terminal=TcpPaymentTerminal(host=sim.host, port=sim.port, timeout=5),
            printer=ScreenPrinter(),
            clock=clock,
        )
        await register.start()
        yield register


async def later(reg: Register, clock: Clock, **kwargs: float) -> None:
    """Time passes; the register locked itself meanwhile, the cashier signs in again."""
    clock.advance(**kwargs)
    reg.check_idle()
    await reg.sign_in("E01", "1234")


async def sell_a_day(reg: Register, clock: Clock) -> None:
    """A day at one register, everything the Z report sums."""
    await reg.sign_in("E01", "1234")
    await shift_desk.open_new_shift(reg, 20000)
    # 1: cash, rounded to 0.05 (1.75 + 1.99 = 3.74 → 3.75)
    await reg.scan(MILK)
    await reg.add_item("I00015")
    await payments.start_payment(reg, cart_id=reg.cart.cart_id)
    await payments.pay_cash(reg, 500, cart_id=reg.cart.cart_id)
    await later(reg, clock, minutes=20)
    # 2: split tender, a 10 % line discount and a 1.00 basket discount (within the cashier's limit)
    await reg.scan(COFFEE)
    await reg.scan(CABLE)
    await reg.discount(1, PercentOff(Decimal(10)), cart_id=reg.cart.cart_id, manager=None)
    await reg.discount(None, AmountOff(100), cart_id=reg.cart.cart_id, manager=None)
    await payments.start_payment(reg, cart_id=reg.cart.cart_id)
    await payments.pay_cash(reg, 1000, cart_id=reg.cart.cart_id)
    await payments.pay_card(reg, cart_id=reg.cart.cart_id)
    await later(reg, clock, hours=2)
    # 3: card only, three cables
    await reg.scan(CABLE)
    await reg.scan(CABLE)
    await reg.scan(CABLE)
    await payments.start_payment(reg, cart_id=reg.cart.cart_id)
    await payments.pay_card(reg, cart_id=reg.cart.cart_id)
    # a cart abandoned, the void approved by the manager
    await reg.scan(COFFEE)
    await payments.void_current_sale(reg, cart_id=reg.cart.cart_id, manager=PinEntry("M01", "9999"))
    await shift_desk.move_cash(reg, CashDirection.OUT, 10000, reason="to the safe")
    await shift_desk.move_cash(reg, CashDirection.IN, 2500, reason="change delivery")
    await later(reg, clock, hours=3)
    # one of the three cables comes back, refunded to the card
    await returns_desk.refund(reg, "1-000003", {1: Decimal(1)})
    # the sale of milk returned in cash (rounded): receipt 1, line 1
    await returns_desk.refund(reg, "1-000001", {1: Decimal(1)})
    # 20:30 in New York: 01:30 UTC the next day, still the store's day
    await later(
        reg, clock, seconds=(datetime(2026, 11, 21, 1, 30, tzinfo=UTC) - clock.now).total_seconds()
    )
    await reg.scan(MILK)
    await payments.start_payment(reg, cart_id=reg.cart.cart_id)
    await payments.pay_cash(reg, 200, cart_id=reg.cart.cart_id)
    assert reg.shift is not None
    await shift_desk.close_shift(reg, reg.shift.expected_cash_minor - 35)


async def the_z_report(reg: Register) -> dict[str, Any]:
    records = [json.loads(r.record) for r in await reg.ledger.read_records(1, 1000)]
    [z] = [r["body"] for r in records if r["kind"] == "report.z"]
    assert isinstance(z, dict)
    return z


async def replicate(reg: Register, cloud: Cloud, broker_url: str) -> None:
    replicator = Replicator(
        ledger=reg.ledger, device_id=DEVICE, broker=parse_broker_url(broker_url), settings=FAST
    )
    task = asyncio.create_task(replicator.run())
    try:
        await wait_until(lambda: reg.ledger.backlog == 0, timeout=30, what="backlog drained")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await cloud.hwm(DEVICE) == reg.ledger.last_seq


async def test_the_cloud_report_equals_the_registers_z_report(cloud: Cloud, tmp_path: Path) -> None:
    assert cloud.engine is not None
    async with cloud.engine.begin() as conn:
        await conn.execute(update(stores).where(stores.c.id == STORE).values(timezone=NEW_YORK))
    await cloud.register(DEVICE)
    clock = Clock()
    async with a_register(tmp_path, clock) as reg:
        await sell_a_day(reg, clock)
        z = await the_z_report(reg)
        await replicate(reg, cloud, cloud.broker_url)
    # the Z report exercises every figure: a test against zeros would prove nothing
    assert (z["sales_count"], z["returns_count"], z["voided_sales_count"]) == (4, 2, 1)
    for key in ("discounts_minor", "cash_in_minor", "cash_out_minor", "returns_minor"):
        assert z[key] != 0, key
    assert z["rounding_minor"] != 0
    assert z["variance_minor"] == -35

    scope = TenantScope(TENANT)
    day = Period.of(date(2026, 11, 20))
    facts = await read_facts(
        cloud.engine, stores_=await stores_in_scope(cloud.engine, scope=scope), period=day
    )
    shifts = figures.fold(facts, "shift")
    [(key, totals)] = shifts.items()
    assert figures.z_differences(z, totals) == []
    assert totals.sales_minor == z["sales_minor"]
    assert totals.returns_minor == z["returns_minor"]
    assert totals.rounding_minor == z["rounding_minor"]

    # the sales summary of the store's local day is the Z report's figures, to the cent
    summary = await build(cloud.engine, scope=scope, name="summary", filters=Filters(day))
    figure = {row[1]: (row[2], row[3]) for row in summary.rows}
    assert figure["Sales"] == (z["sales_count"], z["sales_minor"])
    assert figure["Returns"] == (z["returns_count"], z["returns_minor"])
    assert figure["Discounts"][1] == z["discounts_minor"]
    assert figure["Cash rounding"][1] == z["rounding_minor"]
    assert figure["Cash in"][1] == z["cash_in_minor"]
    assert figure["Cash out"][1] == z["cash_out_minor"]
    assert figure["Net sales"][1] == z["sales_minor"] - z["returns_minor"]
    tenders = {
        row[1].removeprefix("Tender: "): row[3]
        for row in summary.rows
        if str(row[1]).startswith("Tender: ")
    }
    assert tenders == {b["key"]: b["amount_minor"] for b in z["by_tender"]}
    tax = sum(int(r["tax_minor"]) for r in z["by_tax_rate"])
    assert figure["Tax"][1] == tax

    from_journal = await build(
        cloud.engine, scope=scope, name="summary", filters=Filters(day, rollups=False)
    )
    assert from_journal.rows == summary.rows
    # the summary came from the rollups, caught up to the last record the ingest stored
    async with cloud.engine.connect() as conn:
        mark = await conn.scalar(
            select(report_rollup_marks.c.upto_seq).where(report_rollup_marks.c.device_id == DEVICE)
        )
    assert mark == await cloud.hwm(DEVICE)
    assert await rollups.verify(cloud.engine, DEVICE) == []

    # the shift-close report: the register's drawer count and the Z report agreeing
    shift_table = await build(cloud.engine, scope=scope, name="shifts", filters=Filters(day))
    rows: Any = shift_table.as_json()["rows"]
    [row] = rows
    assert (row["float"], row["expected"], row["counted"], row["discrepancy"]) == (
        z["float_minor"], z["expected_cash_minor"], z["counted_cash_minor"], z["variance_minor"]
    )  # fmt: skip
    assert row["z_agrees"] is True

    # UTC's 20 November misses the evening sale the store rang on its 20 November
    utc_day = await build(
        cloud.engine, scope=scope, name="trends", filters=Filters(day, granularity="hour")
    )
    evening = {r[0]: r[1] for r in utc_day.rows}["20:00"]
    assert evening == 175
