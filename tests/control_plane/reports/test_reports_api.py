"""The reports API on SQLite and PostgreSQL: figures equal direct sums of what was sold, CSV
says the same to the cent, and every refusal is the documented one.

Two tenants each have a store (Auckland and New York: the same UTC instant is a different local
day) with a register that sold a known set of sales; an operator of the first tenant reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.operators import service as operators
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.principal import Role
from control_plane.reports import rollups
from control_plane.reports.figures import Granularity
from control_plane.reports.period import Period
from control_plane.reports.service import Filters, ReportName, build
from control_plane.reports.tables import money_text
from control_plane.tenancy import TenantScope
from tests.control_plane.reports.seed import Seeder
from tests.harness.control_plane import (
    ServedControlPlane,
    bearer,
    operator_settings,
    served_control_plane,
)
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

#: 2026-11-20 09:00 in Auckland (UTC+13) is 2026-11-19 20:00 UTC.
DAY = "2026-11-20"
START = int(datetime(2026, 11, 19, 20, 0, tzinfo=UTC).timestamp()) * 1000
HOUR = 3_600_000


@dataclass
class World:
    served: ServedControlPlane
    session: dict[str, str]
    net: dict[str, int]

    def client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return self.served.anonymous(headers=headers or self.session, timeout=30)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    directory = tmp_path_factory.mktemp("reports-api")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'cloud.db'}"
    else:
        url = await create_pg_database()
    broker = Mosquitto(directory)
    broker.start()
    try:
        async with served_control_plane(database_url=url, broker_url=broker.url) as served:
            engine = served.app.state.engine
            net = {}
            for tenant, zone in (("acme", "Pacific/Auckland"), ("globex", "America/New_York")):
                await registry.create_tenant(engine, tenant_id=tenant, name=tenant)
                await registry.create_store(
                    engine, store_id=f"{tenant}-01", tenant_id=tenant, name="Main", timezone=zone
                )
                await registry.register_device(
                    engine, device_id=f"{tenant}-01-r1", store_id=f"{tenant}-01"
                )
                # 30 sales, one every 20 minutes from 09:00 Auckland: all on its 20 November
                net[tenant] = await Seeder(engine, tenant).sales(
                    device_id=f"{tenant}-01-r1", store_id=f"{tenant}-01", start_ms=START,
                    count=30, every_ms=HOUR // 3, voids_every=10, seed=len(tenant),
                )  # fmt: skip
            login = await served.log_in("operator@acme.example", Role.OPERATOR, "acme")
            session = {"Cookie": f"sf_session={login.secret}"}
            yield World(served, session, net)
    finally:
        broker.kill()
        if request.param == "postgresql":
            await drop_pg_database(url)


async def test_summary_is_the_direct_sum_of_the_sales(world: World) -> None:
    async with world.client() as client:
        answer = await client.get(f"/api/reports/summary?first={DAY}")
    assert answer.status_code == 200, answer.text
    figures = {row["figure"]: row for row in answer.json()["rows"]}
    assert figures["Sales"]["count"] == 30
    assert figures["Net sales"]["amount"] == world.net["acme"]
    assert figures["Voided sales"]["count"] == 3
    tenders = sum(r["amount"] for f, r in figures.items() if f.startswith("Tender: "))
    assert tenders == world.net["acme"]


async def test_csv_says_the_same_to_the_cent(world: World) -> None:
    async with world.client() as client:
        answer = await client.get(f"/api/reports/summary.csv?first={DAY}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f"storefleet-summary-{DAY}_{DAY}.csv" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    [net] = [row for row in rows if row["Figure"] == "Net sales"]
    assert net["Amount"] == money_text(world.net["acme"])


async def test_the_store_local_day_decides(world: World) -> None:
    """Auckland's 20 November holds all 30 sales; the UTC-minded 19 November holds none."""
    async with world.client() as client:
        before = await client.get("/api/reports/stores?first=2026-11-19")
    [row] = before.json()["rows"]
    assert (row["store"], row["sales_count"]) == ("acme-01", 0)


async def test_hourly_trend_against_the_previous_period(world: World) -> None:
    async with world.client() as client:
        answer = await client.get(f"/api/reports/trends?first={DAY}&granularity=hour")
    rows = answer.json()["rows"]
    assert [r["bucket"] for r in rows] == [f"{h:02d}:00" for h in range(24)]
    assert sum(r["net"] for r in rows) == world.net["acme"]
    assert sum(r["previous"] for r in rows) == 0
    assert rows[8]["net"] == 0
    assert rows[9]["net"] > 0


async def test_another_tenants_store_or_register_is_not_found(world: World) -> None:
    async with world.client() as client:
        store = await client.get(f"/api/reports/summary?first={DAY}&store_id=globex-01")
        register = await client.get(f"/api/reports/items.csv?first={DAY}&device_id=globex-01-r1")
        listed = await client.get(f"/api/reports/stores.csv?first={DAY}")
    assert (store.status_code, store.json()["reason"]) == (404, "store_not_found")
    assert (register.status_code, register.json()["reason"]) == (404, "device_not_found")
    assert "globex" not in listed.text
    assert "acme-01" in listed.text


async def test_a_token_without_the_scope_is_refused(world: World) -> None:
    engine = world.served.app.state.engine
    owner = await operators.find_operator(engine, email="operator@acme.example")
    _, secret = await operators.create_token(
        engine, settings=operator_settings(), owner=owner, actor=operators.cli_actor(),
        name="devices only", scopes=["devices"], now=wall_clock_ms(),
    )  # fmt: skip
    async with world.client(bearer(secret)) as client:
        answer = await client.get(f"/api/reports/summary?first={DAY}")
    assert (answer.status_code, answer.json()["reason"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("summary?first=2026-11-20&last=2026-11-19", "period_refused"),
        ("summary?first=2025-01-01&last=2026-11-19", "period_refused"),
        ("trends?first=0001-01-01", "period_refused"),
        ("loss?first=9999-12-31", "period_refused"),
        ("summary?first=2026-13-01", "invalid_request"),
        ("everything?first=2026-11-20", "invalid_request"),
        ("trends?granularity=minute", "invalid_request"),
        ("summary?store_id=a%00b", "invalid_request"),
    ],
)
async def test_bad_input_is_refused_by_name(world: World, query: str, reason: str) -> None:
    async with world.client() as client:
        answer = await client.get(f"/api/reports/{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["reason"] == reason


@pytest.mark.parametrize(
    "name",
    ["summary", "stores", "trends", "items", "categories", "tenders", "staff", "taxes", "loss"],
)
@pytest.mark.parametrize(
    ("first", "last", "granularity"),
    [
        (DAY, DAY, "hour"),
        ("2026-11-19", "2026-11-21", "day"),
        ("2026-11-01", "2026-11-30", "week"),
    ],
)
async def test_rollups_say_what_the_journal_says(
    world: World, name: ReportName, first: str, last: str, granularity: Granularity
) -> None:
    """Read from the rollups (caught up from the journal at the first read) and folded from the
    journal record by record: the same table, for every tenant's stores."""
    engine = world.served.app.state.engine
    for tenant in ("acme", "globex"):
        filters = Filters(
            Period.of(date.fromisoformat(first), date.fromisoformat(last)),
            granularity=granularity,
        )
        scope = TenantScope(tenant)
        rolled = await build(engine, scope=scope, name=name, filters=filters)
        folded = await build(
            engine, scope=scope, name=name, filters=replace(filters, rollups=False)
        )
        assert rolled.rows == folded.rows
        assert await rollups.verify(engine, f"{tenant}-01-r1") == []


async def test_verify_names_a_rollup_that_disagrees_with_the_journal(world: World) -> None:
    engine = world.served.app.state.engine
    await rollups.catch_up(engine, ["acme-01-r1"])
    async with engine.begin() as conn:
        bucket = await conn.scalar(
            select(rollups.report_rollups.c.bucket)
            .where(rollups.report_rollups.c.device_id == "acme-01-r1")
            .limit(1)
        )
        await conn.execute(
            update(rollups.report_rollups)
            .where(rollups.report_rollups.c.bucket == bucket)
            .values(sales_minor=rollups.report_rollups.c.sales_minor + 1)
        )
    try:
        problems = await rollups.verify(engine, "acme-01-r1")
        assert len(problems) == 1
        assert f"bucket {bucket}" in problems[0]
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                update(rollups.report_rollups)
                .where(rollups.report_rollups.c.bucket == bucket)
                .values(sales_minor=rollups.report_rollups.c.sales_minor - 1)
            )


async def test_rollups_catch_up_with_what_arrived_since_the_last_read(world: World) -> None:
    """Sales stored after a read are in the next read, once (the mark moved with them)."""
    engine = world.served.app.state.engine
    later = int(datetime(2026, 12, 5, 0, 0, tzinfo=UTC).timestamp()) * 1000  # 13:00 Auckland
    scope, filters = TenantScope("acme"), Filters(Period.of(date(2026, 12, 5)))
    before = await build(engine, scope=scope, name="stores", filters=filters)
    seeder = Seeder(engine, "acme", seqs={"acme-01-r1": await _hwm(engine, "acme-01-r1")})
    added = await seeder.sales(
        device_id="acme-01-r1", store_id="acme-01", start_ms=later, count=7, every_ms=60_000,
        seed=99,
    )  # fmt: skip
    after = await build(engine, scope=scope, name="stores", filters=filters)
    again = await build(engine, scope=scope, name="stores", filters=filters)

    sales, net = (before.column("sales_count")[0], before.column("net")[0])
    assert (sales, net) == (0, 0)
    assert (after.column("sales_count")[0], after.column("net")[0]) == (7, added)
    assert again.rows == after.rows
    assert await rollups.verify(engine, "acme-01-r1") == []


async def _hwm(engine: AsyncEngine, device_id: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(devices.c.hwm).where(devices.c.id == device_id)))
