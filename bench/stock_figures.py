"""Stock across stores at fleet scale (issue 14): the on-hand query over 1,000 stores × 100,000
items, and a catalog import of 100,000 rows. ``bench/customers.py`` runs these sections (the
issue's benchmark is one table); this module also runs alone.

1. **On-hand query** (goal: p99 < 300 ms). A PostgreSQL database is seeded **in SQL**:
   ``--stock-stores`` stores of one tenant with one register each, and ``stock_on_hand`` with a
   figure for every store × ``--stock-items`` GTINs (100,000,000 rows at full scale), written by
   ``INSERT … SELECT generate_series`` a store batch at a time with the table's keys dropped and
   built again afterwards (a sorted build instead of 100 M index inserts), each store's figures
   together in GTIN order as a store's deliveries put them (seed version 2: version 1 let the
   planner lay 20 stores' figures of a GTIN side by side, so the network view read one heap
   page for 20 stores, 62 pages instead of about 1,000); each register's stock
   mark stands at its high-water mark, so the projection is provably caught up and a read
   folds nothing (its check that nothing is behind is part of every timed call). Each round
   asks ``--stock-requests`` times each, through :mod:`control_plane.stock.service` (the code
   the API and the console call): one item across every store (the network view, by the
   ``(tenant_id, gtin)`` index), a page of 500 figures of one store, and one store's figure of
   one item. A figure is the round's p99 (and median). ``--keep-db NAME`` keeps the seeded
   database as ``NAME_stock`` (its seed in the database's comment) and reuses it when a later
   run asks for the same seed.
2. **Catalog import** (goal < 10 s): a storefleet catalog CSV of ``--import-rows`` items (names,
   prices, one EAN-13 each) imported with :func:`control_plane.catalog.import_service.
   import_catalog` — read, checked, and written as one version in one transaction — into a new
   tenant each round, on the same PostgreSQL server.

    .venv/bin/python bench/stock_figures.py [--stock-stores 1000] [--stock-items 100000]
        [--stock-requests 200] [--import-rows 100000] [--rounds N] [--keep-db NAME]

Results: a table on stdout and bench/results/stock_figures.json (alone; inside
``bench/customers.py`` in its customers.json under ``stock``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.catalog.import_service import import_catalog
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.stock import service as stock
from control_plane.tenancy import TenantScope
from protocols.epc import gtin_check_digit
from tests.harness.services import PG_ADMIN_DSN, create_pg_database, drop_pg_database

TENANT = "bench-stock"
SEED_VERSION = 2  # 2: store-major heap (see the docstring)
STORE_BATCH = 20  # stores per INSERT: 2,000,000 rows at full scale


def gtin(number: int) -> str:
    """The GTIN-14 of seeded item ``number`` (EAN-13 ``20…``: in-store numbers, check digit)."""
    stem = f"20{number:010d}"
    return "0" + stem + str(gtin_check_digit(stem))


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "stores": getattr(args, "stock_stores", 1000),
        "items": getattr(args, "stock_items", 100_000),
        "requests": getattr(args, "stock_requests", 200),
        "import_rows": getattr(args, "import_rows", 100_000),
        "keep_db": f"{args.keep_db}_stock" if getattr(args, "keep_db", None) else None,
    }


async def _admin(statement: str, *params: object) -> object:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return await conn.fetchval(statement, *params)
    finally:
        await conn.close()


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _kept(name: str, signature: str) -> tuple[str, bool]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    comment = await _admin(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
    )
    if comment == signature:
        return url, True
    await drop_pg_database(url)
    await _admin(f'CREATE DATABASE "{name}"')
    return url, False


async def seed(url: str, *, stores: int, items: int) -> float:
    """Stores, registers and every store's figure of every item; seconds it took."""
    began = time.perf_counter()
    conn = await asyncpg.connect(_dsn(url))
    try:
        now = int(time.time() * 1000)
        await conn.execute(
            "INSERT INTO tenants (id, name, currency, created_at) VALUES ($1, 'Bench', 'EUR', $2)",
            TENANT,
            now,
        )
        await conn.execute(
            "INSERT INTO stores (id, tenant_id, name, timezone, created_at) "
            "SELECT 'bs-' || lpad(n::text, 5, '0'), $1, 'Store ' || n, 'UTC', $2 "
            "FROM generate_series(1, $3) n",
            TENANT, now, stores,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO devices (id, tenant_id, store_id, created_at, hwm) "
            "SELECT 'bs-' || lpad(n::text, 5, '0') || '-r1', $1, 'bs-' || lpad(n::text, 5, '0'),"
            " $2, 100 FROM generate_series(1, $3) n",
            TENANT, now, stores,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO stock_marks (device_id, upto_seq) SELECT id, hwm FROM devices "
            "WHERE tenant_id = $1",
            TENANT,
        )
        # the GTINs once, then store × GTIN with the keys dropped (built sorted afterwards)
        await conn.execute("CREATE UNLOGGED TABLE bench_gtins (n int, gtin text)")
        await conn.executemany(
            "INSERT INTO bench_gtins VALUES ($1, $2)", [(n, gtin(n)) for n in range(items)]
        )
        await conn.execute("ALTER TABLE stock_on_hand DROP CONSTRAINT pk_stock_on_hand")
        await conn.execute("DROP INDEX ix_stock_on_hand_tenant_gtin")
        await conn.execute("ALTER TABLE stock_on_hand DROP CONSTRAINT IF EXISTS "
                           "fk_stock_on_hand_store_id_stores")  # fmt: skip
        await conn.execute("SET work_mem = '256MB'")  # a batch's ORDER BY sorts in memory
        for first in range(1, stores + 1, STORE_BATCH):
            last = min(stores, first + STORE_BATCH - 1)
            await conn.execute(
                "INSERT INTO stock_on_hand (tenant_id, store_id, gtin, on_hand, updated_at) "
                "SELECT $1, 'bs-' || lpad(s::text, 5, '0'), g.gtin, (s * 7 + g.n) % 60, $2 "
                "FROM generate_series($3::int, $4::int) s CROSS JOIN bench_gtins g "
                "ORDER BY s, g.n",
                TENANT, now, first, last,
            )  # fmt: skip
            print(f"  stock: {last * items:,} figures ({time.perf_counter() - began:.0f} s)",
                  flush=True)  # fmt: skip
        await conn.execute("DROP TABLE bench_gtins")
        print("  stock: building the keys …", flush=True)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(
            "ALTER TABLE stock_on_hand ADD CONSTRAINT pk_stock_on_hand PRIMARY KEY (store_id, gtin)"
        )
        await conn.execute(
            "CREATE INDEX ix_stock_on_hand_tenant_gtin ON stock_on_hand (tenant_id, gtin)"
        )
        await conn.execute(
            "ALTER TABLE stock_on_hand ADD CONSTRAINT fk_stock_on_hand_store_id_stores "
            "FOREIGN KEY (store_id) REFERENCES stores (id) NOT VALID"
        )
        await conn.execute("ANALYZE stock_on_hand; ANALYZE devices; ANALYZE stock_marks")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def _remember_seed(url: str, seconds: float) -> None:
    """The seed's duration, kept in the database so a run that reuses it still reports it."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute("CREATE TABLE bench_seed (seconds double precision, at timestamptz)")
        await conn.execute("INSERT INTO bench_seed VALUES ($1, now())", seconds)
    finally:
        await conn.close()


async def _sizes(url: str) -> dict[str, Any]:
    """The seed's duration and the figures' table as PostgreSQL holds it (rows, bytes)."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        seeded = None
        if await conn.fetchval("SELECT to_regclass('bench_seed') IS NOT NULL"):
            seeded = await conn.fetchrow("SELECT seconds, at FROM bench_seed")
        sizes = await conn.fetchrow(
            "SELECT c.reltuples::bigint AS rows, pg_table_size(c.oid) AS heap,"
            " pg_indexes_size(c.oid) AS indexes FROM pg_class c WHERE c.relname = 'stock_on_hand'"
        )
        per_index = await conn.fetch(
            "SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS bytes"
            " FROM pg_index WHERE indrelid = 'stock_on_hand'::regclass ORDER BY 1"
        )
    finally:
        await conn.close()
    gib = 1024**3
    return {
        "seed_s": None if seeded is None else round(seeded["seconds"], 1),
        "seeded_at": None if seeded is None else seeded["at"].isoformat(),
        "figures_seeded": sizes["rows"],
        "table_gib": round(sizes["heap"] / gib, 2),
        "indexes_gib": round(sizes["indexes"] / gib, 2),
        "index_gib": {r["name"]: round(r["bytes"] / gib, 2) for r in per_index},
    }


def _p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def on_hand_round(
    url: str, rounds: Rounds, *, stores: int, items: int, requests: int, rng: random.Random
) -> None:
    engine = make_engine(url)
    scope = TenantScope(TENANT)
    try:
        asks: dict[str, Any] = {
            "network": lambda: stock.on_hand(
                engine, scope=scope, gtin=gtin(rng.randrange(items)), limit=stores
            ),
            "store_page": lambda: stock.on_hand(
                engine, scope=scope, store_id=f"bs-{rng.randrange(1, stores + 1):05d}", limit=500
            ),
            "one": lambda: stock.on_hand(
                engine, scope=scope, store_id=f"bs-{rng.randrange(1, stores + 1):05d}",
                gtin=gtin(rng.randrange(items)),
            ),
        }  # fmt: skip
        labels = {
            "network": f"on-hand: one item in {stores:,} stores",
            "store_page": "on-hand: a page of 500 of one store",
            "one": "on-hand: one store's item",
        }
        for key, ask in asks.items():
            await ask()  # warm: connections, statement cache
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                found = await ask()
                times.append((time.perf_counter() - began) * 1000)
                if not found:
                    raise RuntimeError(f"{key}: the seeded figures were not found")
            rounds.add(f"stock_{key}_p99", _p99(times), label=labels[key] + " p99", unit="ms",
                       goal=Goal("<", 300))  # fmt: skip
            rounds.add(f"stock_{key}_median", statistics.median(times),
                       label=labels[key] + " median", unit="ms")  # fmt: skip
    finally:
        await engine.dispose()


def catalog_csv(rows: int) -> str:
    lines = ["id,name,price,tax_class,department,gtins"]
    for n in range(rows):
        ean = gtin(n)[1:]
        lines.append(f"B{n:07d},Bench item {n},{n % 5000 / 100:.2f},A,Dept {n % 40},{ean}")
    return "\n".join(lines) + "\n"


async def import_round(url: str, rounds: Rounds, *, text_file: str, rows: int, n: int) -> None:
    engine = make_engine(url)
    tenant = f"bench-import-{n}-{time.time_ns()}"
    try:
        await registry.create_tenant(engine, tenant_id=tenant, name="Import")
        began = time.perf_counter()
        report = await import_catalog(
            engine, tenant_id=tenant, text=text_file, fmt="csv", commit=True
        )
        took = time.perf_counter() - began
        if report.items != rows or report.refused:
            raise RuntimeError(f"import: {report.items} items, {report.refused} refused")
        rounds.add("catalog_import_s", took, label=f"catalog import of {rows:,} rows", unit="s",
                   goal=Goal("<", 10), digits=2)  # fmt: skip
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace, rounds: Rounds) -> dict[str, Any]:
    """Both sections, every round; the detail for the JSON."""
    s = _settings(args)
    signature = json.dumps(
        {"stores": s["stores"], "items": s["items"], "version": SEED_VERSION}, sort_keys=True
    )
    detail: dict[str, Any] = dict(s)
    if s["keep_db"]:
        url, reused = await _kept(s["keep_db"], signature)
    else:
        url, reused = await create_pg_database(), False
    try:
        engine = make_engine(url)
        await migrate(engine)
        await engine.dispose()
        if reused:
            print(f"stock: reusing kept database {s['keep_db']} ({signature})", flush=True)
        else:
            print(f"stock: seeding {s['stores']:,} stores × {s['items']:,} items (SQL) …",
                  flush=True)  # fmt: skip
            seconds = await seed(url, stores=s["stores"], items=s["items"])
            await _remember_seed(url, seconds)
            if s["keep_db"]:
                await _admin(f"COMMENT ON DATABASE \"{s['keep_db']}\" IS '{signature}'")
        detail.update(await _sizes(url))
        detail["seed_reused"] = reused
        print(f"stock: {detail['figures_seeded']:,} figures, table {detail['table_gib']} GiB,"
              f" indexes {detail['indexes_gib']} GiB, seeded in {detail['seed_s']} s",
              flush=True)  # fmt: skip
        csv_text = catalog_csv(s["import_rows"])
        rng = random.Random(14)
        for n in rounds.each():
            await on_hand_round(url, rounds, stores=s["stores"], items=s["items"],
                                requests=s["requests"], rng=rng)  # fmt: skip
            await import_round(url, rounds, text_file=csv_text, rows=s["import_rows"], n=n)
    finally:
        if not s["keep_db"]:
            await drop_pg_database(url)
    return detail


async def main(args: argparse.Namespace) -> None:
    rounds = Rounds("stock figures", rounds=args.rounds)
    detail = await run(args, rounds)
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "stock_figures.json",
        seeding="INSERT … SELECT generate_series, keys built after (not through the ingest)",
        **detail,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stock-stores", type=int, default=1000)
    parser.add_argument("--stock-items", type=int, default=100_000)
    parser.add_argument("--stock-requests", type=int, default=200, help="queries of each kind")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument(
        "--keep-db", metavar="NAME", help="keep the seeded database as NAME_stock and reuse it"
        " when it holds the same seed (--stock-stores, --stock-items)",
    )  # fmt: skip
    add_rounds_argument(parser)
    asyncio.run(main(parser.parse_args()))
