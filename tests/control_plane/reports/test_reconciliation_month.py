"""A month of three real registers in three time zones reconciles to the cent with their Z reports.

Three registers (the real checkout, ledger and card terminal simulator) in New York, Zürich and
Tokyo each trade 28 days across both autumn clock changes: every day a shift opened with a
float, one to three sales (random items, some with a line discount, paid cash with change and
cash rounding, by card, or split cash + card), sometimes a partial return of the day's first
sale to its tender, sometimes cash in or out, and a shift closed with a random miscount. Their
ledgers are stored by the real ingest (``ingest_batch``, the chain checked) on SQLite and
PostgreSQL. Then, per store and for the tenant, every report total — the sales summary, the tender
mix, taxes by rate and categories, read from the rollups and folded from the journal — equals
the sum of the registers' own Z reports, to the cent; every shift-close row agrees with its Z.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.ingest.journal_heads import HeadVerifier
from control_plane.ingest.service import ingest_batch
from control_plane.reports.period import Period
from control_plane.reports.service import Filters, ReportName, build
from control_plane.reports.tables import Table
from control_plane.tenancy import TenantScope
from edge.checkout.cart import PercentOff
from edge.checkout.shift import CashDirection
from edge.pos import payments, returns_desk, shift_desk
from edge.pos.register import PinEntry, Register
from protocols.codec import decode
from protocols.journal_wire import batch_bytes
from protocols.messages import JournalBatch
from protocols.topics import Channel, device_topic
from tests.control_plane.reports.test_reconciliation import CABLE, COFFEE, MILK, Clock, a_register

pytestmark = [pytest.mark.services]

TENANT = "month"
ZONES = {"ny": "America/New_York", "zh": "Europe/Zurich", "tk": "Asia/Tokyo"}
FIRST = date(2026, 10, 20)  # New York and Zürich both leave summer time inside the month
DAYS = 28
ITEMS = (MILK, COFFEE, CABLE)
MANAGER = PinEntry("M01", "9999")


async def trade_a_month(reg: Register, clock: Clock, zone: str, rng: random.Random) -> None:
    """28 local days of one register, each a shift with everything a Z report sums."""
    for day in range(DAYS):
        opening = datetime.combine(FIRST + timedelta(days=day), datetime.min.time())
        clock.now = opening.replace(hour=9, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        reg.check_idle()
        await reg.sign_in("E01", "1234")
        await shift_desk.open_new_shift(reg, 20_000)
        first_receipt = ""
        for _ in range(rng.randint(1, 3)):
            for _ in range(rng.randint(1, 3)):
                await reg.scan(rng.choice(ITEMS))
            if rng.random() < 0.3:
                await reg.discount(
                    1, PercentOff(Decimal(10)), cart_id=reg.cart.cart_id, manager=MANAGER
                )
            await payments.start_payment(reg, cart_id=reg.cart.cart_id)
            assert reg.payment is not None
            how = rng.choice(("cash", "card", "split"))
            if how == "cash":
                await payments.pay_cash(
                    reg,
                    reg.payment.remaining_minor + rng.choice((0, 3, 100)),
                    cart_id=reg.cart.cart_id,
                )
            elif how == "card":
                await payments.pay_card(reg, cart_id=reg.cart.cart_id)
            else:
                await payments.pay_cash(
                    reg, reg.payment.remaining_minor // 2, cart_id=reg.cart.cart_id
                )
                await payments.pay_card(reg, cart_id=reg.cart.cart_id)
            assert reg.last_receipt is not None
            first_receipt = first_receipt or reg.last_receipt.receipt_id
            clock.advance(minutes=40)
            reg.check_idle()
            await reg.sign_in("E01", "1234")
        if rng.random() < 0.4:
            await returns_desk.refund(reg, first_receipt, {1: Decimal(1)})
        if rng.random() < 0.3:
            direction = rng.choice((CashDirection.IN, CashDirection.OUT))
            await shift_desk.move_cash(reg, direction, rng.randint(1, 50) * 100, reason="month")
        assert reg.shift is not None
        await shift_desk.close_shift(reg, reg.shift.expected_cash_minor - rng.randint(0, 40))


async def store_ledger(engine: AsyncEngine, reg: Register, device_id: str) -> list[dict[str, Any]]:
    """The register's whole ledger through the real ingest; its Z reports."""
    wire = [r.record for r in await reg.ledger.read_records(1, reg.ledger.last_seq)]
    heads = HeadVerifier(engine)
    topic = device_topic(device_id, Channel.JOURNAL)
    for start in range(0, len(wire), 200):
        batch = decode(topic, batch_bytes(wire[start : start + 200], sent_at=0)).message
        assert isinstance(batch, JournalBatch)
        outcome = await ingest_batch(
            engine=engine, device_id=device_id, batch=batch, now_ms=time.time_ns() // 10**6,
            heads=heads,
        )  # fmt: skip
        assert outcome.problem is None, outcome.problem
    zs = [json.loads(w)["body"] for w in wire if json.loads(w)["kind"] == "report.z"]
    assert len(zs) == DAYS
    return zs


def z_totals(zs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the Z reports add up to: the summary's figures, tenders, tax per rate, categories."""
    out: dict[str, Any] = Counter()
    tenders: dict[str, int] = defaultdict(int)
    taxes: dict[Decimal, int] = defaultdict(int)
    departments: dict[str, int] = defaultdict(int)
    for z in zs:
        for key in ("sales_count", "sales_minor", "returns_count", "returns_minor",
                    "discounts_minor", "rounding_minor", "cash_in_minor", "cash_out_minor",
                    "voided_sales_count"):  # fmt: skip
            out[key] += int(z[key])
        for row in z["by_tender"]:
            tenders[row["key"]] += int(row["amount_minor"])
        for row in z["by_tax_rate"]:
            taxes[Decimal(str(row["rate"]))] += int(row["tax_minor"])
        for row in z["by_department"]:
            departments[row["key"]] += int(row["amount_minor"])
    return {**out, "tenders": dict(tenders), "taxes": dict(taxes), "departments": dict(departments)}


async def reports(engine: AsyncEngine, filters: Filters) -> dict[str, dict[str, Any]]:
    """The report totals to compare, from the rollups and from the journal (the same)."""
    out = {}
    for rollups in (True, False):
        tables: dict[ReportName, Table] = {}
        for name in ("summary", "tenders", "taxes", "categories"):
            tables[name] = await build(
                engine, scope=TenantScope(TENANT), name=name,
                filters=replace(filters, rollups=rollups),
            )  # fmt: skip
        figure = {row[1]: (row[2], row[3]) for row in tables["summary"].rows}
        out[str(rollups)] = {
            "sales_count": figure["Sales"][0], "sales_minor": figure["Sales"][1],
            "returns_count": figure["Returns"][0], "returns_minor": figure["Returns"][1],
            "discounts_minor": figure["Discounts"][1], "rounding_minor": figure["Cash rounding"][1],
            "cash_in_minor": figure["Cash in"][1], "cash_out_minor": figure["Cash out"][1],
            "voided_sales_count": figure["Voided sales"][0],
            "tenders": {str(r[1]): r[5] for r in tables["tenders"].rows},
            "taxes": {r[1]: r[3] for r in tables["taxes"].rows if r[3]},
            "departments": {str(r[0]): r[2] for r in tables["categories"].rows},
        }  # fmt: skip
    return out


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_month_in_three_time_zones_reconciles_with_the_z_reports(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        await registry.create_tenant(engine, tenant_id=TENANT, name="Month")
        every_z: list[dict[str, Any]] = []
        per_store: dict[str, list[dict[str, Any]]] = {}
        for n, (short, zone) in enumerate(ZONES.items()):
            store_id, device_id = f"month-{short}", f"month-{short}-r1"
            await registry.create_store(
                engine, store_id=store_id, tenant_id=TENANT, name=short, timezone=zone
            )
            await registry.register_device(engine, device_id=device_id, store_id=store_id)
            clock = Clock()
            (tmp_path / short).mkdir()
            async with a_register(tmp_path / short, clock) as reg:
                await trade_a_month(reg, clock, zone, random.Random(n))
                zs = await store_ledger(engine, reg, device_id)
            per_store[store_id] = zs
            every_z += zs
        month = Period.of(FIRST, FIRST + timedelta(days=DAYS - 1))
        # the month exercises every figure: a test against zeros would prove nothing
        whole = z_totals(every_z)
        for key in ("returns_count", "discounts_minor", "rounding_minor", "cash_in_minor",
                    "cash_out_minor"):  # fmt: skip
            assert whole[key] != 0, key
        assert {"cash", "card"} <= set(whole["tenders"])

        for store_id, zs in per_store.items():
            got = await reports(engine, Filters(month, store_id=store_id))
            assert got["True"] == z_totals(zs), store_id
            assert got["False"] == got["True"], store_id
            shifts = await build(
                engine, scope=TenantScope(TENANT), name="shifts",
                filters=Filters(month, store_id=store_id),
            )  # fmt: skip
            rows: Any = shifts.as_json()["rows"]
            assert len(rows) == DAYS
            assert all(row["z_agrees"] for row in rows)
            assert [row["discrepancy"] for row in rows] == [z["variance_minor"] for z in zs]
        tenant = await reports(engine, Filters(month))
        assert tenant["True"] == whole
        assert tenant["False"] == whole
    finally:
        await engine.dispose()
