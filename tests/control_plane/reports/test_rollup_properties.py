"""Property: every rollup row is the direct sum of the records it covers, on SQLite and PostgreSQL.

Hypothesis writes a register's journal of sales (several lines, split tenders, line discounts,
manual approvals, two tax rates, weighed quantities), returns with and without a receipt,
voids, cash in and out and drawer openings, across several 15-minute buckets, stores it as the
ingest does, and lets the rollups catch up part way and then to the end (so rows are both
inserted and grown). The test sums the same events itself — per bucket and key, straight from
the events, not through the reports' decoder — and compares every rollup table row by row; the
check (:func:`rollups.verify`) agrees, and a report read from the rollups equals one folded from
the journal.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.reports import rollups
from control_plane.reports.figures import Granularity
from control_plane.reports.fold_worker import FoldSettings, FoldWorker
from control_plane.reports.period import Period
from control_plane.reports.rollup_tables import SPECS, Spec
from control_plane.reports.service import Filters, ReportName, build
from control_plane.sales.service import totals_by_store
from control_plane.tenancy import TenantScope
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services]

DAY_START = int(datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()) * 1000
BUCKET = rollups.BUCKET_MS
CATALOG = (  # item, name, department, tax rate
    ("I1", "Milk", "dairy", "0.026"),
    ("I2", "Cheese", "dairy", "0.026"),
    ("I3", "Cable", "electronics", "0.081"),
    ("I4", "Apples", "produce", "0.0260"),  # the same rate written otherwise: one rate
)
TENDERS = ("cash", "card", "voucher")
CASHIERS = ("E01", "E02")


@dataclass(frozen=True)
class Line:
    item: int
    quantity: Decimal
    total: int
    tax: int
    discount: int
    approved: bool


@dataclass(frozen=True)
class Event:
    kind: str
    minute: int  # after DAY_START
    cashier: str
    lines: tuple[Line, ...] = ()
    tenders: tuple[tuple[str, int], ...] = ()
    amount: int = 0
    flag: bool = False  # sale: basket discount approved; return: with receipt; void: approved
    start: int = DAY_START  # minute 0


quantities = st.one_of(
    st.integers(1, 5).map(Decimal),
    st.integers(1, 5000).map(lambda grams: Decimal(grams) / 1000),  # weighed, to the gram
)
lines = st.builds(
    Line,
    item=st.integers(0, len(CATALOG) - 1),
    quantity=quantities,
    total=st.integers(0, 50_000),
    tax=st.integers(0, 5_000),
    discount=st.integers(0, 1_000),
    approved=st.booleans(),
)
minutes = st.integers(0, 100)  # 7 buckets: pages of records meet in a bucket
cashiers = st.sampled_from(CASHIERS)
tender_lists = st.lists(
    st.tuples(st.sampled_from(TENDERS), st.integers(1, 60_000)), min_size=1, max_size=3
)
events = st.one_of(
    st.builds(
        Event, kind=st.just("sale"), minute=minutes, cashier=cashiers,
        lines=st.lists(lines, min_size=1, max_size=4).map(tuple), tenders=tender_lists.map(tuple),
        amount=st.integers(0, 500), flag=st.booleans(),
    ),
    st.builds(
        Event, kind=st.just("return"), minute=minutes, cashier=cashiers,
        lines=st.lists(lines, min_size=1, max_size=2).map(tuple), tenders=tender_lists.map(tuple),
        flag=st.booleans(),
    ),
    st.builds(Event, kind=st.just("void"), minute=minutes, cashier=cashiers, flag=st.booleans()),
    st.builds(
        Event, kind=st.sampled_from(["cash_in", "cash_out"]), minute=minutes, cashier=cashiers,
        amount=st.integers(1, 100_000),
    ),
    st.builds(Event, kind=st.just("drawer"), minute=minutes, cashier=cashiers),
)  # fmt: skip


def _ts(event: Event) -> int:
    return event.start + event.minute * 60_000


def _line_body(line: Line, *, sold: bool) -> dict[str, Any]:
    item, name, department, rate = CATALOG[line.item]
    common = {"item_id": item, "name": name, "department": department, "tax_rate": rate,
              "quantity": str(line.quantity), "tax_minor": line.tax}  # fmt: skip
    if not sold:
        return common | {"refund_minor": line.total}
    return common | {
        "gross_minor": line.total + line.discount, "discount_minor": line.discount,
        "total_minor": line.total, "approved_by": "M01" if line.approved else None,
    }  # fmt: skip


def _tax_rows(event: Event) -> list[dict[str, Any]]:
    rows: dict[str, list[int]] = {}
    for line in event.lines:
        row = rows.setdefault(CATALOG[line.item][3], [0, 0, 0])
        row[0] += line.total - line.tax
        row[1] += line.tax
        row[2] += line.total
    return [
        {"rate": rate, "net_minor": n, "tax_minor": t, "gross_minor": g}
        for rate, (n, t, g) in rows.items()
    ]


def body(event: Event, n: int) -> tuple[str, dict[str, Any]]:
    """The journal kind and body the register writes for ``event``."""
    total = sum(line.total for line in event.lines)
    tax = sum(line.tax for line in event.lines)
    if event.kind == "sale":
        return "sale.completed", {"checkout": {
            "sale_id": f"s{n}", "shift_id": "sh1", "cashier_id": event.cashier,
            "lines": [_line_body(line, sold=True) for line in event.lines],
            "line_discount_minor": sum(line.discount for line in event.lines),
            "basket_discount_minor": event.amount,
            "basket_approved_by": "M01" if event.flag else None,
            "total_minor": total, "tax_minor": tax, "rounding_minor": event.minute % 5 - 2,
            "voided_lines": event.minute % 2, "tax_rows": _tax_rows(event),
            "tenders": [{"kind": k, "amount_minor": a} for k, a in event.tenders],
        }}  # fmt: skip
    if event.kind == "return":
        return "sale.returned", {
            "shift_id": "sh1", "cashier_id": event.cashier, "refund_minor": total,
            "tax_minor": tax, "rounding_minor": event.minute % 3 - 1,
            "original_sale_id": "s1" if event.flag else None,
            "approved_by": "M01" if event.minute % 2 else None,
            "lines": [_line_body(line, sold=False) for line in event.lines],
            "refunds": [{"kind": k, "amount_minor": a} for k, a in event.tenders],
        }  # fmt: skip
    if event.kind == "void":
        return "sale.voided", {
            "shift_id": "sh1", "cashier_id": event.cashier, "total_minor": 175,
            "approved_by": "M01" if event.flag else None,
        }  # fmt: skip
    if event.kind == "drawer":
        return "drawer.opened", {"by": event.cashier, "reason": "change"}
    direction = event.kind.removeprefix("cash_")
    return "shift.cash_moved", {
        "shift_id": "sh1", "direction": direction, "amount_minor": event.amount,
        "by": event.cashier,
    }  # fmt: skip


Sums = dict[str, dict[tuple[object, ...], dict[str, int | str]]]


def direct_sums(history: list[Event]) -> Sums:
    """Each rollup table's rows, summed straight from the events."""
    out: Sums = {spec.name: {} for spec in SPECS}
    by_name = {spec.name: spec for spec in SPECS}

    def add(table: str, key: tuple[object, ...], **amounts: int) -> None:
        spec = by_name[table]
        row = out[table].setdefault(key, dict.fromkeys(spec.sums, 0))
        for name, amount in amounts.items():
            row[name] = int(row[name]) + amount

    for event in history:
        b = _ts(event) - _ts(event) % BUCKET
        total = sum(line.total for line in event.lines)
        tax = sum(line.tax for line in event.lines)
        if event.kind == "sale":
            discounts = sum(line.discount for line in event.lines) + event.amount
            approvals = sum(line.approved for line in event.lines) + int(event.flag)
            manual = sum(line.approved and line.discount > 0 for line in event.lines) + int(
                event.flag and event.amount > 0
            )
            add("report_rollups", (b,), sales_count=1, sales_minor=total,
                discounts_minor=discounts, sales_tax_minor=tax,
                rounding_minor=event.minute % 5 - 2, voided_lines=event.minute % 2,
                manual_discounts=manual, overrides=approvals)  # fmt: skip
            add("report_staff_rollups", (b, event.cashier), sales_count=1, sales_minor=total,
                voided_lines=event.minute % 2, discounts_minor=discounts,
                overrides=approvals)  # fmt: skip
            for kind, amount in event.tenders:
                add("report_tender_rollups", (b, kind), count=1, amount_minor=amount,
                    payments=1, paid_minor=amount)  # fmt: skip
        elif event.kind == "return":
            approved = event.minute % 2
            add("report_rollups", (b,), returns_count=1, returns_minor=total,
                returns_tax_minor=tax, rounding_minor=-(event.minute % 3 - 1),
                returns_unreceipted=int(not event.flag), overrides=approved)  # fmt: skip
            add("report_staff_rollups", (b, event.cashier), returns_count=1, returns_minor=total,
                overrides=approved)  # fmt: skip
            for kind, amount in event.tenders:
                add("report_tender_rollups", (b, kind), count=1, amount_minor=-amount,
                    refunded_minor=amount)  # fmt: skip
        elif event.kind == "void":
            add("report_rollups", (b,), voids_count=1, overrides=int(event.flag))
            add("report_staff_rollups", (b, event.cashier), voids=1, overrides=int(event.flag))
        elif event.kind == "drawer":
            add("report_rollups", (b,), drawer_opens=1)
        else:
            add("report_rollups", (b,), **{f"{event.kind}_minor": event.amount})
        sign = 1 if event.kind == "sale" else -1
        for line in event.lines:
            item, name, department, rate = CATALOG[line.item]
            millionths = int(line.quantity * 1_000_000)
            if sign > 0:
                add("report_item_rollups", (b, item, department), sold_micro=millionths,
                    sales_minor=line.total, sale_lines=1)  # fmt: skip
            else:
                add("report_item_rollups", (b, item, department), returned_micro=millionths,
                    returns_minor=line.total, return_lines=1)  # fmt: skip
            out["report_item_rollups"][(b, item, department)]["name"] = name
            add("report_tax_rollups", (b, str(Decimal(rate).normalize())),
                net_minor=sign * (line.total - line.tax), tax_minor=sign * line.tax,
                gross_minor=sign * line.total)  # fmt: skip
    return out


async def stored_rows(engine: AsyncEngine, spec: Spec, device_id: str) -> dict[Any, Any]:
    t = spec.table
    async with engine.connect() as conn:
        result = await conn.execute(select(t).where(t.c.device_id == device_id))
        return {
            (int(r.bucket), *(r._mapping[k] for k in spec.keys)): {
                n: r._mapping[n] for n in (*spec.sums, *spec.labels)
            }
            for r in result
        }


def _full(spec: Spec, row: dict[str, int | str]) -> dict[str, int | str]:
    return dict.fromkeys(spec.sums, 0) | dict.fromkeys(spec.labels, "") | row


_counter = itertools.count()


async def store_journal(engine: AsyncEngine, device_id: str, history: list[Event]) -> None:
    records = []
    for seq, event in enumerate(history, start=1):
        kind, content = body(event, seq)
        records.append(
            {"device_id": device_id, "seq": seq, "kind": kind, "ts": _ts(event),
             "prev_hash": "0" * 64, "hash": f"{seq:064x}", "received_at": _ts(event),
             "body": json.dumps(content)}
        )  # fmt: skip
    async with engine.begin() as conn:
        if records:
            await conn.execute(insert(journal), records)


async def set_hwm(engine: AsyncEngine, device_id: str, hwm: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(devices).where(devices.c.id == device_id).values(hwm=hwm))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated store for every example (each example has its own register)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rollups') / 'cloud.db'}"
    else:
        url = asyncio.run(create_pg_database())

    async def prepare() -> None:
        engine = make_engine(url)
        await migrate(engine)
        await registry.create_tenant(engine, tenant_id="t", name="T")
        await registry.create_store(
            engine, store_id="t-01", tenant_id="t", name="Main", timezone="Europe/Zurich"
        )
        await engine.dispose()

    asyncio.run(prepare())
    yield url
    if request.param == "postgresql":
        asyncio.run(drop_pg_database(url))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(events, max_size=30), split=st.floats(0, 1))
def test_every_rollup_row_is_the_direct_sum_of_its_records(
    database: str, history: list[Event], split: float
) -> None:
    device_id = f"t-01-r{next(_counter)}"
    expected = direct_sums(history)

    async def check() -> None:
        engine = make_engine(database)
        try:
            await registry.register_device(engine, device_id=device_id, store_id="t-01")
            await store_journal(engine, device_id, history)
            # caught up part way (the ingest had stored that much), then to the end
            await set_hwm(engine, device_id, int(len(history) * split))
            await rollups.catch_up(engine, [device_id], page=3)
            await set_hwm(engine, device_id, len(history))
            await rollups.catch_up(engine, [device_id], page=3)
            for spec in SPECS:
                stored = await stored_rows(engine, spec, device_id)
                want = {k: _full(spec, v) for k, v in expected[spec.name].items()}
                assert stored == want, spec.name
            assert await rollups.verify(engine, device_id) == []
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_reports_of_sums_say_what_the_journal_says(database: str) -> None:
    """One fixed busy register: each report of sums from the rollups equals the same report
    folded from its journal, every row."""
    history = [
        Event("sale", 10, "E01", (Line(0, Decimal(2), 350, 9, 0, False),
                                  Line(3, Decimal("0.750"), 299, 8, 30, True)),
              (("cash", 500), ("card", 149)), amount=20, flag=True),
        Event("return", 200, "E02", (Line(0, Decimal(1), 175, 4, 0, False),),
              (("cash", 175),), flag=False),
        Event("sale", 130, "E02", (Line(2, Decimal(1), 1490, 112, 0, False),), (("card", 1490),)),
        Event("void", 140, "E01", flag=True),
        Event("drawer", 150, "E01"),
        Event("cash_out", 160, "E01", amount=10_000),
    ]  # fmt: skip
    names: list[ReportName] = ["items", "categories", "tenders", "staff", "taxes", "loss"]

    async def check() -> None:
        engine = make_engine(database)
        device_id = f"t-01-r{next(_counter)}"
        try:
            await registry.register_device(engine, device_id=device_id, store_id="t-01")
            await store_journal(engine, device_id, history)
            await set_hwm(engine, device_id, len(history))
            filters = Filters(Period.of(date(2026, 11, 20)), device_id=device_id)
            for name in names:
                rolled = await build(engine, scope=TenantScope("t"), name=name, filters=filters)
                folded = await build(
                    engine,
                    scope=TenantScope("t"),
                    name=name,
                    filters=Filters(filters.period, device_id=device_id, rollups=False),
                )
                assert rolled.rows == folded.rows, name
                assert rolled.rows, name  # a test against an empty table would prove nothing
        finally:
            await engine.dispose()

    asyncio.run(check())


# -- the daily level ----------------------------------------------------------------------------

#: Ten days from here hold Zürich's (25 October) and New York's (1 November) clock changes.
DST_START = int(datetime(2026, 10, 23, 18, tzinfo=UTC).timestamp()) * 1000
DST_DAYS = 10
DST_ZONES = ("Europe/Zurich", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham")
dst_events = st.tuples(events, st.integers(0, DST_DAYS * 24 * 60)).map(
    lambda pair: replace(pair[0], start=DST_START, minute=pair[1])
)


def daily_sums(history: list[Event], timezone: str) -> Sums:
    """Each daily table's rows: the direct sums of the events of each local date (the date of
    the event's own moment in the store's time zone), every bucket and register added up."""
    zone = ZoneInfo(timezone)
    days: dict[date, list[Event]] = {}
    for event in history:
        days.setdefault(datetime.fromtimestamp(_ts(event) / 1000, zone).date(), []).append(event)
    out: Sums = {spec.daily.name: {} for spec in SPECS}
    for day, of_day in days.items():
        for spec in SPECS:
            for key, row in direct_sums(of_day)[spec.name].items():
                into = out[spec.daily.name].setdefault((day, *key[1:]), _full(spec, {}))
                for name in spec.sums:
                    into[name] = int(into[name]) + int(row.get(name, 0))
                for name in spec.labels:
                    into[name] = max(str(into[name]), str(row.get(name, "")))
    return out


async def stored_daily(engine: AsyncEngine, spec: Spec, store_id: str) -> dict[Any, Any]:
    t = spec.daily.table
    async with engine.connect() as conn:
        result = await conn.execute(select(t).where(t.c.store_id == store_id))
        return {
            (r.day, *(r._mapping[k] for k in spec.keys)): {
                n: r._mapping[n] for n in (*spec.sums, *spec.labels)
            }
            for r in result
        }


async def mark_of(engine: AsyncEngine, device_id: str) -> int | None:
    marks = rollups.report_rollup_marks
    async with engine.connect() as conn:
        query = select(marks.c.upto_seq).where(marks.c.device_id == device_id)
        return (await conn.execute(query)).scalar_one_or_none()


#: A fold worker's small pages: a few records each, folded a few at a time.
PAGES = FoldSettings(page=4, chunk=3)


async def a_store(engine: AsyncEngine, timezone: str) -> tuple[str, str]:
    """A store of its own (its days are only this example's) with one register."""
    n = next(_counter)
    store_id, device_id = f"d-{n:04d}", f"d-{n:04d}-r1"
    await registry.create_store(
        engine, store_id=store_id, tenant_id="t", name=f"Day {n}", timezone=timezone
    )
    await registry.register_device(engine, device_id=device_id, store_id=store_id)
    return store_id, device_id


# 10 examples: each is ten days of a new store on real PostgreSQL (about 25 s at load 15)
@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(dst_events, max_size=30),
    split=st.floats(0, 1),
    timezone=st.sampled_from(DST_ZONES),
)
def test_every_daily_row_is_the_sum_of_its_quarter_hours_and_of_its_records(
    database: str, history: list[Event], split: float, timezone: str
) -> None:
    """Ten days across clock changes: the first records are folded by a round of the fold
    worker (pages of 4 seqs, chunks of 3 records), the rest by the reads' catch-up; daily ==
    15-minute == direct sums."""
    expected, expected_daily = direct_sums(history), daily_sums(history, timezone)

    async def check() -> None:
        engine = make_engine(database)
        try:
            store_id, device_id = await a_store(engine, timezone)
            await store_journal(engine, device_id, history)
            stored = int(len(history) * split)
            await set_hwm(engine, device_id, stored)
            await FoldWorker(engine=engine, settings=PAGES).fold_round()
            assert await mark_of(engine, device_id) == (stored or None)
            await set_hwm(engine, device_id, len(history))
            await rollups.catch_up(engine, [device_id], page=4)
            for spec in SPECS:
                want = {k: _full(spec, v) for k, v in expected[spec.name].items()}
                assert await stored_rows(engine, spec, device_id) == want, spec.name
                want_daily = expected_daily[spec.daily.name]
                assert await stored_daily(engine, spec, store_id) == want_daily, spec.daily.name
            assert await rollups.verify(engine, device_id) == []
            assert await rollups.verify_daily(engine, store_id) == []
        finally:
            await engine.dispose()

    asyncio.run(check())


#: Every report a read over days answers from the daily rollups (and trends by hour, from the
#: 15-minute ones), with what it is asked.
DAILY_READS: list[tuple[ReportName, Granularity]] = [
    ("summary", "day"), ("stores", "day"), ("trends", "day"), ("trends", "week"),
    ("trends", "hour"), ("items", "day"), ("categories", "day"), ("tenders", "day"),
    ("staff", "day"), ("taxes", "day"), ("loss", "day"),
]  # fmt: skip


def test_reports_over_days_from_daily_rollups_say_what_the_journal_says(database: str) -> None:
    """A New York register every 7 h 13 min for ten days (its clock goes back on 1 November):
    each report of the store over the ten days, read from the daily rollups the fold worker keeps,
    equals the same report folded from the journal, row by row; the fleet overview's total is
    the summary's sales."""
    kinds = ("sale", "sale", "return", "void", "drawer", "cash_in")
    history = [
        Event(
            kinds[k % len(kinds)], k * 433, CASHIERS[k % 2],
            (Line(k % 4, Decimal(1 + k % 3), 100 + 37 * k, 3 + k, k % 2 * 10, k % 3 == 0),),
            (("cash", 100 + 37 * k),), amount=k % 4 * 5 or 50, flag=k % 2 == 0, start=DST_START,
        )
        for k in range(DST_DAYS * 24 * 60 // 433)
    ]  # fmt: skip
    period = Period.of(date(2026, 10, 23), date(2026, 11, 2))

    async def check() -> None:
        engine = make_engine(database)
        try:
            store_id, device_id = await a_store(engine, "America/New_York")
            await store_journal(engine, device_id, history)
            worker = FoldWorker(engine=engine, settings=PAGES)
            for at in range(0, len(history), 7):  # batch by batch, a worker's round after each
                await set_hwm(engine, device_id, min(at + 7, len(history)))
                await worker.fold_round()
                assert await mark_of(engine, device_id) == min(at + 7, len(history))
            scope = TenantScope("t")
            for name, granularity in DAILY_READS:
                asked = Filters(period, store_id=store_id, granularity=granularity)
                rolled = await build(engine, scope=scope, name=name, filters=asked)
                folded = await build(
                    engine, scope=scope, name=name, filters=replace(asked, rollups=False)
                )
                assert rolled.rows == folded.rows, (name, granularity)
                assert rolled.rows, name  # a test against an empty table would prove nothing
            every_day = Period.of(date(2026, 1, 1), date(2026, 12, 31))
            summary = await build(
                engine, scope=scope, name="summary", filters=Filters(every_day, store_id=store_id)
            )
            sales_row = next(row for row in summary.rows if row[1] == "Sales")
            overview = {row["store_id"]: row for row in await totals_by_store(engine, scope=scope)}
            assert (overview[store_id]["sales"], overview[store_id]["total_minor"]) == (
                sales_row[2],
                sales_row[3],
            )
        finally:
            await engine.dispose()

    asyncio.run(check())
