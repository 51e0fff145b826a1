"""How long the store owner's reports take over many sales, folded from the replicated journal.

What it measures (each figure ``--rounds`` times through ``bench/rounds.py``: median and spread):

- the rollups' catch-up: the first read after ``--sales`` sales (default 100,000) were stored,
  folding every one of them once (the rollups are dropped before each round);
- the sales summary of every store over 28 days from the rollups, and the same summary folded
  from the journal record by record (what the rollups save);
- the summary for one store and one day (what an owner opens in the morning; goal < 300 ms,
  the issue's page budget);
- trends (by day, with the previous 28 days; rollups) and items (the journal) over 28 days.

The store is PostgreSQL by default (``--database sqlite`` for the embedded one). Sales are
written as the ingest stores them (journal rows with the register's bodies, and sales rows) by
``tests/control_plane/reports/seed.py``, spread over ``--stores`` stores in different time zones.

    .venv/bin/python bench/reports.py [--sales N] [--stores N] [--rounds N]
                                      [--database postgresql|sqlite]

Results: a table on stdout and bench/results/reports.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import delete, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.db.engine import make_engine, migrate
from control_plane.db.tables import devices
from control_plane.devices import service as registry
from control_plane.reports import rollups
from control_plane.reports.period import Period
from control_plane.reports.rollups import report_rollup_marks, report_rollups, report_tender_rollups
from control_plane.reports.service import Filters, ReportName, build
from control_plane.tenancy import TenantScope
from tests.control_plane.reports.seed import Seeder
from tests.harness.services import create_pg_database, drop_pg_database

ZONES = ("Europe/Zurich", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "UTC")
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 28)
DAY_MS = 86_400_000


async def seed(url: str, *, sales: int, stores: int) -> None:
    engine = make_engine(url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id="bench", name="Bench")
    seeder = Seeder(engine, "bench")
    start = int(datetime(2026, 10, 1, 12, tzinfo=UTC).timestamp()) * 1000
    per_store = sales // stores
    began = time.perf_counter()
    for n in range(stores):
        store_id = f"bench-s{n:03d}"
        await registry.create_store(
            engine, store_id=store_id, tenant_id="bench", name=f"Store {n}",
            timezone=ZONES[n % len(ZONES)],
        )  # fmt: skip
        await registry.register_device(engine, device_id=f"{store_id}-r1", store_id=store_id)
        await seeder.sales(
            device_id=f"{store_id}-r1", store_id=store_id, start_ms=start,
            count=per_store, every_ms=(27 * DAY_MS) // per_store, seed=n, voids_every=50,
        )  # fmt: skip
    seconds = time.perf_counter() - began
    print(f"seeded {per_store * stores:,} sales in {stores} stores in {seconds:.0f} s")
    await engine.dispose()


async def timed(url: str, name: ReportName, filters: Filters) -> tuple[float, int]:
    """Milliseconds to build one report (a fresh engine: no warm connection pool)."""
    engine = make_engine(url)
    try:
        began = time.perf_counter()
        table = await build(engine, scope=TenantScope("bench"), name=name, filters=filters)
        return (time.perf_counter() - began) * 1000, len(table.rows)
    finally:
        await engine.dispose()


async def caught_up(url: str) -> float:
    """Milliseconds to fold every stored sale into fresh rollups."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for table in (report_rollups, report_tender_rollups, report_rollup_marks):
                await conn.execute(delete(table))
            device_ids = list((await conn.execute(select(devices.c.id))).scalars())
        began = time.perf_counter()
        await rollups.catch_up(engine, device_ids)
        return (time.perf_counter() - began) * 1000
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace, rounds: Rounds) -> None:
    if args.database == "postgresql":
        url = await create_pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-reports-')}/cloud.db"
    try:
        await seed(url, sales=args.sales, stores=args.stores)
        month = Filters(Period.of(FIRST, LAST))
        one_day = Filters(Period.of(date(2026, 10, 15)), store_id="bench-s000")
        for _ in rounds.each():
            caught = await caught_up(url)
            rounds.add("catch_up", caught, label="rollups caught up (first read)", unit="ms")
            ms, _rows = await timed(url, "summary", month)
            rounds.add(
                "summary_all", ms, label=f"summary, {args.sales:,} sales, 28 days", unit="ms"
            )
            ms, _rows = await timed(url, "summary", replace(month, rollups=False))
            rounds.add("summary_journal", ms, label="the same from the journal", unit="ms")
            ms, _rows = await timed(url, "summary", one_day)
            rounds.add(
                "summary_day", ms, label="summary, one store, one day", unit="ms",
                goal=Goal("<", 300),
            )  # fmt: skip
            ms, _rows = await timed(url, "trends", month)
            rounds.add("trends", ms, label="trends by day vs previous 28 days", unit="ms")
            ms, _rows = await timed(url, "items", month)
            rounds.add("items", ms, label="items and top sellers, 28 days", unit="ms")
    finally:
        if args.database == "postgresql":
            await drop_pg_database(url)
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "reports.json",
        database=args.database,
        sales=args.sales,
        stores=args.stores,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    add_rounds_argument(parser)
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Rounds("reports", rounds=arguments.rounds)))
