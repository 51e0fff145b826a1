"""Scoping (issue 13): a viewer of tenant A sees nothing of tenant B in any report, chart or CSV.

Tenant B's register writes, on the same day, a record of every kind the reports read, each
carrying B's name ("globex") where a report would print it — an item, a category, a cashier, a
tender, a tax rate of 33.3 %, a shift, a register, a stock count's GTIN, the store — and a sale
of a distinctive amount. A's viewer asks for every report as JSON and as CSV over A's whole
scope (no store filter: the case where a missing tenant condition would leak) and opens the
reports page with its charts: B appears nowhere, and A's trend is A's sales only. B's viewer,
asking the same, sees B's records in every report (the check can fail), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from control_plane.devices import service as registry
from control_plane.operators.principal import Role
from control_plane.reports import rollups
from control_plane.reports.service import REPORTS, ReportName
from tests.control_plane.reports.seed import Seeder
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

DAY = "2026-11-20"
NOON = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()) * 1000
B_AMOUNT = 987_654
MARKS = ("globex", "33.3", "0.333")


@dataclass
class World:
    served: ServedControlPlane
    viewers: dict[str, dict[str, str]]
    a_net: int


def _b_records() -> list[tuple[str, dict[str, object]]]:
    line = {
        "item_id": "GLOBEX-ITEM", "name": "Globex secret", "department": "globex-dept",
        "quantity": "1", "gross_minor": B_AMOUNT, "discount_minor": 0, "total_minor": B_AMOUNT,
        "approved_by": None,
    }  # fmt: skip
    sale = {"checkout": {
        "sale_id": "gx-1", "shift_id": "GLOBEX-SHIFT", "cashier_id": "GLOBEX-CASHIER",
        "lines": [line], "line_discount_minor": 0, "basket_discount_minor": 0,
        "basket_approved_by": None, "total_minor": B_AMOUNT, "tax_minor": 246_666,
        "rounding_minor": 0, "voided_lines": 0,
        "tax_rows": [{"rate": "0.333", "net_minor": B_AMOUNT - 246_666, "tax_minor": 246_666,
                      "gross_minor": B_AMOUNT}],
        "tenders": [{"kind": "globex-voucher", "amount_minor": B_AMOUNT}],
    }}  # fmt: skip
    refund = {
        "shift_id": "GLOBEX-SHIFT", "cashier_id": "GLOBEX-CASHIER", "refund_minor": 1000,
        "tax_minor": 250, "rounding_minor": 0, "original_sale_id": None, "approved_by": "M",
        "lines": [{"item_id": "GLOBEX-ITEM", "name": "Globex secret", "department": "globex-dept",
                   "quantity": "1", "refund_minor": 1000, "tax_rate": "0.333", "tax_minor": 250}],
        "refunds": [{"kind": "globex-voucher", "amount_minor": 1000}],
    }  # fmt: skip
    return [
        ("shift.opened", {"shift_id": "GLOBEX-SHIFT", "float_minor": 10_000}),
        ("sale.completed", sale),
        ("sale.returned", refund),
        ("sale.voided", {"shift_id": "GLOBEX-SHIFT", "cashier_id": "GLOBEX-CASHIER",
                         "total_minor": 5, "approved_by": None}),
        ("drawer.opened", {"by": "GLOBEX-CASHIER", "reason": "globex"}),
        ("shift.cash_moved", {"shift_id": "GLOBEX-SHIFT", "direction": "out",
                              "amount_minor": 77_777, "by": "GLOBEX-CASHIER"}),
        ("shift.closed", {"shift_id": "GLOBEX-SHIFT", "expected_cash_minor": 1,
                          "counted_cash_minor": 1, "variance_minor": 0}),
        ("report.z", {"shift_id": "GLOBEX-SHIFT"}),
        ("stock_count.committed", {"lines": [{"gtin": "GLOBEX-GTIN", "expected": 5,
                                              "counted": 3}]}),
    ]  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    directory: Path = tmp_path_factory.mktemp("reports-scoping")
    url = (
        f"sqlite+aiosqlite:///{directory / 'cloud.db'}"
        if request.param == "sqlite"
        else await create_pg_database()
    )
    broker = Mosquitto(directory)
    broker.start()
    try:
        async with served_control_plane(database_url=url, broker_url=broker.url) as served:
            engine = served.app.state.engine
            for tenant, name in (("acme", "Acme"), ("globex", "Globex HQ")):
                await registry.create_tenant(engine, tenant_id=tenant, name=name)
                await registry.create_store(
                    engine, store_id=f"{tenant}-01", tenant_id=tenant, name=name, timezone="UTC"
                )
                await registry.register_device(
                    engine, device_id=f"{tenant}-01-r1", store_id=f"{tenant}-01",
                    register_name=f"{tenant.upper()}-REG",
                )  # fmt: skip
            a_net = await Seeder(engine, "acme").sales(
                device_id="acme-01-r1", store_id="acme-01", start_ms=NOON - 3_600_000, count=12,
                every_ms=600_000, voids_every=4, seed=5,
            )  # fmt: skip
            seeder = Seeder(engine, "globex")
            for n, (kind, body) in enumerate(_b_records()):
                await seeder.record(device_id="globex-01-r1", kind=kind, ts=NOON + n, body=body)
            # B's rollups hold B's records already (B's owner has read a report), so a read of
            # A's that forgot its tenant would find them
            await rollups.catch_up(engine, ["acme-01-r1", "globex-01-r1"])
            viewers = {}
            for tenant in ("acme", "globex"):
                login = await served.log_in(f"viewer@{tenant}.example", Role.VIEWER, tenant)
                viewers[tenant] = {"Cookie": f"sf_session={login.secret}"}
            yield World(served, viewers, a_net)
    finally:
        broker.kill()
        if request.param == "postgresql":
            await drop_pg_database(url)


async def _texts(world: World, tenant: str, name: ReportName) -> tuple[str, str]:
    async with world.served.anonymous(headers=world.viewers[tenant], timeout=60) as client:
        as_json = await client.get(f"/api/reports/{name}?first={DAY}")
        as_csv = await client.get(f"/api/reports/{name}.csv?first={DAY}")
    assert (as_json.status_code, as_csv.status_code) == (200, 200), as_json.text
    return as_json.text, as_csv.text


@pytest.mark.parametrize("name", REPORTS)
async def test_a_viewer_of_a_sees_nothing_of_b_in_any_report_or_csv(
    world: World, name: ReportName
) -> None:
    as_json, as_csv = await _texts(world, "acme", name)
    for mark in MARKS:
        assert mark not in as_json.lower(), mark
        assert mark not in as_csv.lower(), mark
    assert str(B_AMOUNT) not in as_json
    assert "9876.54" not in as_csv


@pytest.mark.parametrize("name", [n for n in REPORTS if n != "trends"])
async def test_b_viewer_sees_b_in_the_same_reports(world: World, name: ReportName) -> None:
    """The positive control: the same request of B's viewer shows B's records."""
    as_json, as_csv = await _texts(world, "globex", name)
    assert any(mark in as_json.lower() for mark in MARKS)
    assert any(mark in as_csv.lower() for mark in MARKS)


async def test_a_trend_is_a_sales_only(world: World) -> None:
    async with world.served.anonymous(headers=world.viewers["acme"]) as client:
        answer = await client.get(f"/api/reports/trends?first={DAY}&granularity=hour")
    assert sum(row["net"] for row in answer.json()["rows"]) == world.a_net


async def test_the_reports_page_and_its_charts_show_nothing_of_b(world: World) -> None:
    async with world.served.anonymous(headers=world.viewers["acme"], timeout=60) as client:
        page = await client.get(f"/reports?first={DAY}")
    assert page.status_code == 200
    assert "<svg" in page.text  # the charts are there, drawn from A's figures
    for mark in MARKS:
        assert mark not in page.text.lower(), mark
    assert "9,876.54" not in page.text
    assert "9876.54" not in page.text
