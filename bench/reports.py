"""Store owners' pages over many sales, and what the rollups cost the ingest.

Two measurements (each figure ``--rounds`` times through ``bench/rounds.py``: median and spread):

1. **Page renders over HTTP** (issue 13: "1,000 stores and 10,000,000 sales in PostgreSQL: p99
   page render of the overview, the sales summary, trends and items — goal < 300 ms"). A
   PostgreSQL database is seeded **in SQL, not through the ingest**: ``generate_series`` writes
   ``--stores`` stores with one register each and ``--sales`` rows of ``sales`` over 28 days,
   then ``INSERT … SELECT … GROUP BY`` writes every 15-minute rollup table from those rows (the
   sums the ingest would have made), every daily rollup from the 15-minute ones (each bucket's
   local date in its store's time zone) and each register's rollup mark at its high-water mark,
   so the rollups are provably caught up and no read folds anything. The database is dropped
   afterwards, or with ``--keep-db NAME`` kept under that name (its seed parameters in the
   database's comment) and reused by the next run that asks for the same seed, so a re-measure
   skips the seeding (about 40 minutes at 10 M sales on a loaded machine) and takes minutes.
   anything. The journal itself is not seeded with bodies (the pages read the rollups, and 10 M
   bodies would be ~15 GB of this shared disk). The control plane is served by uvicorn (as
   ``storefleet serve`` runs it) and a tenant admin's session asks, each round, ``--requests``
   times per page for a random store and day: the fleet overview (``/``), the reports page of
   one store's day (``/reports``: all eleven tables and three charts), and the JSON of the sales
   summary, trends (by day, 28 days against the previous 28) and items for one store, and the
   summary for every store over 28 days. A figure is the round's p99 (and median) of its
   requests.
2. **Ingest with rollups beside without** (goal ≥ 0.9×): ``--devices`` registers each drain the
   same simulated ledger through ``ingest_batch`` (the ingest's transaction), once with the
   reports' fold worker running in the same process (``control_plane/reports/fold_worker.py``,
   as ``storefleet serve`` runs it: it folds what the ingest stored, in pages and its own
   transactions) and once with no rollups kept at all. The ratio is records/s with over
   records/s without, both orders alternating per round; beside it, how long after the drain
   ended the rollups held every record (the worker catches up once the burst is over), and
   ``rollups.verify`` checks them against the journal.

    .venv/bin/python bench/reports.py [--stores 1000] [--sales 10000000] [--requests 200]
                                      [--slow-requests 10]
                                      [--devices 4] [--records 2000] [--rounds N]
                                      [--keep-db NAME] [--skip-pages] [--skip-ingest]

Results: a table on stdout and bench/results/reports.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from alembic.util import CommandError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from bench.signed_journal import batches, drain, ring
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.journal_heads import HeadVerifier
from control_plane.operators.principal import Role
from control_plane.reports import rollups
from control_plane.reports.fold_worker import FoldWorker
from control_plane.reports.rollup_tables import SPECS, Spec
from tests.harness.control_plane import served_control_plane
from tests.harness.services import (
    PG_ADMIN_DSN,
    Mosquitto,
    create_pg_database,
    drop_pg_database,
)

ZONES = ("Europe/Zurich", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "UTC")
FIRST = date(2026, 10, 1)
DAYS = 28
DAY_MS = 86_400_000
TENANT = "bench"

#: The seed, in SQL: stores, registers, sales rows, then every rollup from the sales rows.
SEED_STORES = """
INSERT INTO stores (id, tenant_id, name, timezone, created_at)
SELECT 'bs' || lpad(n::text, 5, '0'), :tenant, 'Store ' || n, (ARRAY[{zones}])[1 + n % {count}], 0
FROM generate_series(0, CAST(:stores AS integer) - 1) AS n
""".format(zones=", ".join(f"'{z}'" for z in ZONES), count=len(ZONES))
SEED_DEVICES = """
INSERT INTO devices (id, tenant_id, store_id, register_name, created_at, hwm)
SELECT 'bs' || lpad(n::text, 5, '0') || '-r1', :tenant, 'bs' || lpad(n::text, 5, '0'), '1', 0,
       CAST(:per_store AS bigint)
FROM generate_series(0, CAST(:stores AS integer) - 1) AS n
"""
#: Sale k of store n: spread evenly over the 28 days (from the UTC midnight before the first).
SEED_SALES = """
INSERT INTO sales (device_id, seq, sale_id, tenant_id, store_id, receipt_no, currency,
                   total_minor, ts)
SELECT 'bs' || lpad((g % :stores)::text, 5, '0') || '-r1',
       g / CAST(:stores AS bigint) + 1,
       's' || (g / :stores + 1), :tenant, 'bs' || lpad((g % :stores)::text, 5, '0'),
       g / :stores + 1, 'EUR', 100 + (g * 7919) % 9000,
       CAST(:start_ms AS bigint) + (g / :stores) * CAST(:every_ms AS bigint) + (g % :stores) * 61000
FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS g
"""
#: Tables written in bulk, unlogged while seeding (the database is dropped afterwards).
BULK_TABLES = (
    "sales", "report_rollups", "report_tender_rollups", "report_item_rollups",
    "report_tax_rollups", "report_staff_rollups", "report_daily_rollups",
    "report_daily_tender_rollups", "report_daily_item_rollups", "report_daily_tax_rollups",
    "report_daily_staff_rollups",
)  # fmt: skip
#: The sales table's secondary indexes (as the migrations make them), built after the rows.
SALES_INDEXES = (
    ("ix_sales_store_ts", "INDEX {index} ON sales (store_id, ts)"),
    ("ix_sales_tenant_ts", "INDEX {index} ON sales (tenant_id, ts)"),
    ("uq_sales_device_sale", "UNIQUE INDEX {index} ON sales (device_id, sale_id)"),
)
#: Each rollup from the sales rows: what the catch-up would have summed from their records.
_BUCKET = "ts - ts % 900000"
SEED_ROLLUPS = (
    f"""
INSERT INTO report_rollups (device_id, bucket, sales_count, sales_minor, discounts_minor,
    sales_tax_minor, rounding_minor, returns_count, returns_minor, returns_tax_minor, voids_count,
    voided_lines, cash_in_minor, cash_out_minor, returns_unreceipted, manual_discounts,
    drawer_opens, overrides)
SELECT device_id, {_BUCKET}, count(*), sum(total_minor), sum(total_minor / 20),
       sum(total_minor * 7 / 107), 0, count(*) FILTER (WHERE seq % 40 = 0),
       coalesce(sum(total_minor) FILTER (WHERE seq % 40 = 0), 0), 0,
       count(*) FILTER (WHERE seq % 50 = 0),
       count(*) FILTER (WHERE seq % 30 = 0), 0, 0, count(*) FILTER (WHERE seq % 400 = 0),
       count(*) FILTER (WHERE seq % 60 = 0), count(*) FILTER (WHERE seq % 300 = 0),
       count(*) FILTER (WHERE seq % 45 = 0)
FROM sales GROUP BY device_id, {_BUCKET}
""",
    f"""
INSERT INTO report_tender_rollups (device_id, bucket, tender, count, amount_minor, payments,
    paid_minor, refunded_minor)
SELECT device_id, {_BUCKET}, CASE WHEN seq % 3 = 0 THEN 'cash' ELSE 'card' END, count(*),
       sum(total_minor), count(*), sum(total_minor), 0
FROM sales GROUP BY device_id, {_BUCKET}, 3
""",
    f"""
INSERT INTO report_item_rollups (device_id, bucket, item_id, department, name, sold_micro,
    returned_micro, sales_minor, returns_minor, sale_lines, return_lines)
SELECT device_id, {_BUCKET}, 'I' || lpad((seq * 31 % 200)::text, 4, '0'),
       'department ' || (seq * 31 % 200 % 12), 'Item ' || (seq * 31 % 200),
       sum(1000000 * (1 + seq % 3)), 0, sum(total_minor), 0, count(*), 0
FROM sales GROUP BY device_id, {_BUCKET}, 3, 4, 5
""",
    f"""
INSERT INTO report_tax_rollups (device_id, bucket, rate, net_minor, tax_minor, gross_minor)
SELECT device_id, {_BUCKET}, CASE WHEN seq % 4 = 0 THEN '0.081' ELSE '0.026' END,
       sum(total_minor - total_minor * 7 / 107), sum(total_minor * 7 / 107), sum(total_minor)
FROM sales GROUP BY device_id, {_BUCKET}, 3
""",
    f"""
INSERT INTO report_staff_rollups (device_id, bucket, cashier, sales_count, sales_minor, voids,
    voided_lines, discounts_minor, returns_count, returns_minor, overrides)
SELECT device_id, {_BUCKET}, 'E0' || (1 + seq % 3), count(*), sum(total_minor), 0, 0,
       sum(total_minor / 20), 0, 0, 0
FROM sales GROUP BY device_id, {_BUCKET}, 3
""",
    "INSERT INTO report_rollup_marks (device_id, upto_seq) SELECT id, hwm FROM devices",
)


def _daily_rollup(spec: Spec) -> str:
    """A daily rollup from its 15-minute one: each bucket's store and local date, summed."""
    keys = "".join(f", r.{k}" for k in spec.keys)
    sums = ", ".join(f"sum(r.{n})" for n in spec.sums)
    labels = "".join(f", max(r.{n})" for n in spec.labels)
    columns = ", ".join(("store_id", "day", *spec.keys, *spec.sums, *spec.labels))
    group = ", ".join(str(n) for n in range(1, 3 + len(spec.keys)))
    return f"""
INSERT INTO {spec.daily.name} ({columns})
SELECT d.store_id, (to_timestamp(r.bucket / 1000) AT TIME ZONE s.timezone)::date{keys},
       {sums}{labels}
FROM {spec.name} AS r JOIN devices AS d ON d.id = r.device_id JOIN stores AS s ON s.id = d.store_id
GROUP BY {group}
"""


#: The daily rollups, from the 15-minute ones (in the store's time zone, as the ingest sums them).
SEED_DAILY = tuple(_daily_rollup(spec) for spec in SPECS)
#: Bumped when the seed's SQL changes: a kept database of another version is seeded again.
SEED_VERSION = 2


async def seed(engine: AsyncEngine, *, stores: int, sales: int) -> dict[str, float]:
    """Seed in SQL; seconds per step (and the rows of each rollup table)."""
    per_store = sales // stores
    start = datetime.combine(FIRST - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    params = {
        "tenant": TENANT, "stores": stores, "per_store": per_store,
        "start_ms": int(start.timestamp()) * 1000,
        "every_ms": (DAYS + 1) * DAY_MS // per_store,
    }  # fmt: skip
    took: dict[str, float] = {}
    await registry.create_tenant(engine, tenant_id=TENANT, name="Bench")
    began = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text(SEED_STORES), params)
        await conn.execute(text(SEED_DEVICES), params)
        # a throw-away database: no WAL for the bulk tables, the sales indexes built once after
        for table in BULK_TABLES:
            await conn.execute(text(f"ALTER TABLE {table} SET UNLOGGED"))
        for index, _ in SALES_INDEXES:
            await conn.execute(text(f"DROP INDEX {index}"))
    chunk = 1_000_000
    for low in range(0, per_store * stores, chunk):
        high = min(low + chunk, per_store * stores) - 1
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(SEED_SALES), params | {"low": low, "high": high})
        print(f"  sales {high + 1:,} of {per_store * stores:,}", flush=True)
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for index, definition in SALES_INDEXES:
            await conn.execute(text(f"CREATE {definition.format(index=index)}"))
    took["seed_sales_s"] = time.perf_counter() - began
    began = time.perf_counter()
    for statement in (*SEED_ROLLUPS, *SEED_DAILY):
        async with engine.begin() as conn:
            # a throw-away database: no per-row foreign-key trigger (the rows come from devices)
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text("SET LOCAL work_mem = '256MB'"))
            await conn.execute(text(statement))
    took["seed_rollups_s"] = time.perf_counter() - began
    # VACUUM too: the visibility map lets the rollup reads scan their indexes only
    async with engine.connect() as conn:
        vacuum = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await vacuum.execute(text("VACUUM ANALYZE"))
    async with engine.begin() as conn:
        for table in ("sales", "report_rollups", "report_item_rollups", "report_daily_rollups",
                      "report_daily_item_rollups"):  # fmt: skip
            count = f"SELECT count(*) FROM {table}"
            took[f"rows_{table}"] = float(await conn.scalar(text(count)))
    return took


def _pages(stores: int) -> dict[str, tuple[str, str]]:
    """Each page: its label and URL template ({store}, {day}, {first}, {last})."""
    return {
        "overview": ("fleet overview /", "/"),
        "reports_page": ("reports page, one store's day", "/reports?store_id={store}&first={day}"),
        "summary": (
            "summary, one store's day",
            "/api/reports/summary?store_id={store}&first={day}",
        ),
        "trends": (
            "trends by day, one store, 28 d vs 28 d",
            "/api/reports/trends?store_id={store}&first={first}&last={last}&granularity=day",
        ),
        "items": (
            "items, one store, 28 days",
            "/api/reports/items?store_id={store}&first={first}&last={last}",
        ),
        "summary_all": (
            f"summary, all {stores:,} stores, 28 days",
            "/api/reports/summary?first={first}&last={last}",
        ),
    }  # fmt: skip


async def page_round(
    client: httpx.AsyncClient, rounds: Rounds, *, stores: int, requests: int, slow_requests: int,
    rng: random.Random,
) -> None:  # fmt: skip
    last = FIRST + timedelta(days=DAYS - 1)
    for key, (label, template) in _pages(stores).items():
        times = []
        count = requests if key not in ("overview", "summary_all") else slow_requests
        for _ in range(count):
            url = template.format(
                store=f"bs{rng.randrange(stores):05d}",
                day=FIRST + timedelta(days=rng.randrange(DAYS)),
                first=FIRST,
                last=last,
            )
            began = time.perf_counter()
            answer = await client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
        p99 = statistics.quantiles(times, n=100, method="inclusive")[98]
        goal = Goal("<", 300) if key not in ("summary_all",) else None
        rounds.add(f"{key}_p99", p99, label=f"{label}: p99 of {count}", unit="ms", goal=goal)
        rounds.add(f"{key}_median", statistics.median(times), label=f"{label}: median", unit="ms")


def _signature(args: argparse.Namespace) -> str:
    """What a kept database was seeded with: reused only when a run asks for the same."""
    return json.dumps({"stores": args.stores, "sales": args.sales, "version": SEED_VERSION})


async def _admin(statement: str, *params: object) -> object:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return await conn.fetchval(statement, *params)
    finally:
        await conn.close()


async def _kept_database(name: str, signature: str) -> tuple[str, bool]:
    """The kept database ``name`` (its URL) and whether it holds this seed already; made empty
    when it is missing or was seeded otherwise."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    comment = await _admin(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
    )
    if comment == signature:
        engine = make_engine(url)
        try:
            await migrate(engine)  # a newer schema: migrated; the check below says if it kept
            async with engine.connect() as conn:  # the rows (an unlogged table after a crash)
                marks = await conn.scalar(text("SELECT count(*) FROM report_rollup_marks"))
                daily = await conn.scalar(text("SELECT count(*) FROM report_daily_rollups"))
                sold = await conn.scalar(text("SELECT EXISTS (SELECT 1 FROM sales)"))
            if marks and daily and sold:
                async with engine.begin() as conn:  # the harness makes its operators again
                    await conn.execute(text("TRUNCATE operators CASCADE"))
                return url, True
        except (DBAPIError, CommandError) as err:  # a revision this tree no longer has
            print(f"kept database {name} does not migrate ({err}): seeding it again", flush=True)
        else:
            print(f"kept database {name} lost its rows: seeding it again", flush=True)
        finally:
            await engine.dispose()
    await drop_pg_database(url)
    await _admin(f'CREATE DATABASE "{name}"')
    return url, False


async def pages(args: argparse.Namespace, rounds: Rounds) -> dict[str, float]:
    signature = _signature(args)
    reused = False
    if args.keep_db:
        url, reused = await _kept_database(args.keep_db, signature)
    else:
        url = await create_pg_database()
    seeded: dict[str, float] = {}
    try:
        engine = make_engine(url)
        await migrate(engine)
        if reused:
            print(f"reusing kept database {args.keep_db} ({signature})", flush=True)
            seeded = {"reused": 1.0}
        else:
            print(f"seeding {args.sales:,} sales in {args.stores:,} stores (SQL) …", flush=True)
            seeded = await seed(engine, stores=args.stores, sales=args.sales)
            if args.keep_db:  # marked seeded only once every row is in
                await _admin(f"COMMENT ON DATABASE \"{args.keep_db}\" IS '{signature}'")
        await engine.dispose()
        print(f"seeded: {seeded}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            broker = Mosquitto(Path(tmp))
            broker.start()
            try:
                async with served_control_plane(database_url=url, broker_url=broker.url) as cp:
                    login = await cp.log_in("owner@bench.example", Role.TENANT_ADMIN, TENANT)
                    headers = {"Cookie": f"sf_session={login.secret}"}
                    rng = random.Random(13)
                    async with cp.anonymous(headers=headers, timeout=600) as client:
                        for _ in rounds.each():
                            await page_round(
                                client, rounds, stores=args.stores, requests=args.requests,
                                slow_requests=args.slow_requests, rng=rng,
                            )  # fmt: skip
            finally:
                broker.kill()
    finally:
        if not args.keep_db:
            await drop_pg_database(url)
    return seeded


async def ingest_round(
    engine: AsyncEngine, wire: list[str], *, store: str, devices_n: int, with_rollups: bool
) -> tuple[float, float]:
    """Records per second while ``devices_n`` registers drain ``wire``, and (with rollups) the
    seconds from the drain's end until the rollups hold every record: with rollups, the fold
    worker runs in this process beside the ingest, as ``storefleet serve`` runs it; without,
    nothing folds (the devices are caught up after the clock stops, so no later round's worker
    folds them)."""
    heads = HeadVerifier(engine)
    todo = []
    for _ in range(devices_n):
        device_id = f"ing-{uuid.uuid4().hex[:8]}"
        await registry.register_device(engine, device_id=device_id, store_id=store)
        todo.append((device_id, batches(device_id, wire, None)))
    ids = [d for d, _ in todo]

    worker = FoldWorker(engine=engine)
    folding = asyncio.create_task(worker.run(), name="rollup-fold") if with_rollups else None
    try:
        began = time.perf_counter()
        await asyncio.gather(*(drain(engine, heads, d, w) for d, w in todo))
        ended = time.perf_counter()
        rate = devices_n * len(wire) / (ended - began)
        caught_up_s = 0.0
        if folding is not None:  # the rollups hold every record stored: how long after
            while await _marks(engine, ids) != [len(wire)] * devices_n:
                await asyncio.sleep(0.005)
            caught_up_s = time.perf_counter() - ended
    finally:
        if folding is not None:
            folding.cancel()
            await asyncio.gather(folding, return_exceptions=True)
    if folding is None:
        await rollups.catch_up(engine, ids)
    assert await rollups.verify(engine, ids[0]) == []
    return rate, caught_up_s


async def _marks(engine: AsyncEngine, device_ids: list[str]) -> list[int]:
    marks = rollups.report_rollup_marks
    async with engine.connect() as conn:
        found = await conn.execute(
            select(marks.c.device_id, marks.c.upto_seq).where(marks.c.device_id.in_(device_ids))
        )
        upto = dict(found.tuples().all())
    return [int(upto.get(d, 0)) for d in device_ids]


async def ingest(args: argparse.Namespace, rounds: Rounds) -> None:
    url = await create_pg_database()
    try:
        engine = make_engine(url)
        await migrate(engine)
        await registry.create_tenant(engine, tenant_id="ing", name="ingest")
        await registry.create_store(engine, store_id="ing-01", tenant_id="ing", name="ingest")
        with tempfile.TemporaryDirectory() as tmp:
            wire = await ring(Path(tmp) / "ledger.db", args.records)
        for number in rounds.each():
            order = (False, True) if number % 2 else (True, False)
            measured = {
                kind: await ingest_round(
                    engine, wire, store="ing-01", devices_n=args.devices, with_rollups=kind
                )
                for kind in order
            }
            rate = {kind: figures[0] for kind, figures in measured.items()}
            rounds.add("ingest_without", rate[False], label="ingest, no rollups", unit="rec/s")
            rounds.add("ingest_with", rate[True], label="ingest, fold worker running", unit="rec/s")
            rounds.add(
                "ingest_ratio", rate[True] / rate[False], label="with rollups / without",
                unit="x", goal=Goal(">=", 0.9),
            )  # fmt: skip
            rounds.add(
                "rollups_caught_up_ms", measured[True][1] * 1000,
                label="rollups caught up, after the ingest's end", unit="ms", digits=0,
            )  # fmt: skip
        async with engine.connect() as conn:
            stored = await conn.scalar(select(devices.c.hwm).where(devices.c.store_id == "ing-01"))
        assert stored == args.records
        await engine.dispose()
    finally:
        await drop_pg_database(url)


async def main(args: argparse.Namespace, rounds: Rounds) -> None:
    seeded: dict[str, float] = {}
    if not args.skip_ingest:
        await ingest(args, rounds)
    if not args.skip_pages:
        seeded = await pages(args, rounds)
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "reports.json",
        stores=args.stores,
        sales=args.sales,
        requests=args.requests,
        devices=args.devices,
        records=args.records,
        seeded=seeded,
        seeding="SQL generate_series and INSERT … SELECT … GROUP BY, not through the ingest",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--sales", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per page a round")
    parser.add_argument(
        "--slow-requests", type=int, default=10, help="requests a round of the fleet overview and"
        " of every store's summary (each reads every store)",
    )  # fmt: skip
    parser.add_argument("--devices", type=int, default=4, help="ingest: registers at once")
    parser.add_argument("--records", type=int, default=2000, help="ingest: records each")
    parser.add_argument(
        "--keep-db", metavar="NAME", help="keep the seeded PostgreSQL database NAME after the run,"
        " and reuse it when it holds the same seed (--stores, --sales): a re-measure skips seeding",
    )  # fmt: skip
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    add_rounds_argument(parser)
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Rounds("reports", rounds=arguments.rounds)))
