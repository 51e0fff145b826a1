"""Customers at scale: a register's lookup by card and the online search, over 1,000,000 customers.

Issue 14's goals, each figure ``--rounds`` times through ``bench/rounds.py`` (median and spread):

- lookup by card at the register (``SFC1:<id>``): p99 < 5 ms
- online search by name and by phone: p99 < 200 ms (e-mail measured beside them)

What is measured is the register's search as the control plane serves it
(``control_plane.customers.service.search_for_register``: the card's id or the search text's
blind-index terms looked up in PostgreSQL, then each profile found opened with its customer's
key) on a real PostgreSQL, in process; ``--http`` adds the same card lookup over HTTP as a
register sends it (``POST /api/customers/lookup`` with its signed device assertion).

Seeding: ``--customers`` customers of one tenant are bulk-loaded with PostgreSQL's COPY, not
through the API: each profile must be sealed with AES-256-GCM under its own key (which SQL
cannot do), and its blind-index terms keyed with the tenant's HMAC key, exactly as
``create_customer`` writes them. Names are drawn from 200 first names × 1,000 surnames, so a
full name is shared by about five customers (a realistic result list), phones and e-mails are
unique. The database is dropped afterwards, or with ``--keep-db NAME`` kept (its seed and the
master key's id in the database's comment) and reused by the next run that asks for the same.

If ``bench/stock_figures.py`` exists (issue 14, stock across stores), its sections run too
(on-hand over ``--stock-stores`` × ``--stock-items``, a catalog import of ``--import-rows``;
``--keep-db NAME`` keeps theirs as ``NAME_stock``), unless ``--skip-stock``.

    .venv/bin/python bench/customers.py [--customers 1000000] [--requests 500] [--rounds N]
                                        [--keep-db NAME] [--skip-stock] [--stock-stores 1000]
                                        [--stock-items 100000] [--import-rows 100000]

Results: a table on stdout and bench/results/customers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.customers import service
from control_plane.customers.blind_index import profile_terms
from control_plane.customers.keyring import Keyring, seal
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from protocols.customer_card import format_customer_card, new_customer_id
from tests.harness.services import PG_ADMIN_DSN, create_pg_database, drop_pg_database

TENANT = "bench-customers"
MASTER_KEY = "bench only: customers master key 0123456789abcdef"
SEED_VERSION = 1
CHUNK = 20_000
FIRST_NAMES = [
    f"{a}{b}" for a in ("An", "Be", "Ca", "Da", "El", "Fi", "Ga", "Ha", "Il", "Jo")
    for b in ("na", "rt", "ra", "vid", "ena", "ona", "bor", "nna", "ka", "nas",
              "lia", "mon", "ris", "tta", "nie", "sto", "ida", "ren", "lla", "ndy")
]  # fmt: skip
SURNAME_STEMS = ("Kowal", "Meier", "Novak", "Lind", "Weber", "Rossi", "Dubois", "Horvat", "Berg",
                 "Smit", "Costa", "Keller", "Nagy", "Fischer", "Bauer", "Moreau", "Ivanov",
                 "Janssen", "Silva", "Brun")  # fmt: skip
SURNAME_ENDS = ("ska", "ski", "er", "qvist", "ström", "ini", "ovic", "sen", "ova", "mann",
                "elli", "ard", "ic", "son", "ek", "ez", "ov", "berg", "ich", "o", "at", "in",
                "ey", "y", "us", "os", "el", "an", "um", "ax", "et", "ol", "ur", "im", "ag",
                "ek", "ud", "if", "og", "ap", "eb", "it", "ow", "uz", "ad", "ib", "om", "yr",
                "ef", "ut")  # fmt: skip
SURNAMES = [stem + end for stem in SURNAME_STEMS for end in SURNAME_ENDS]


def person(number: int) -> tuple[str, str, str]:
    """The name, e-mail and phone of customer ``number`` (deterministic, so runs agree)."""
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = SURNAMES[(number * 7919) % len(SURNAMES)]
    return (
        f"{first} {last}",
        f"{first.lower()}.{number}@bench.example",
        f"+41 79 {number // 10000 % 1000:03d} {number // 100 % 100:02d} {number % 100:02d}"
        if number < 10_000_000
        else f"+41 78 {number}",
    )


def _signature(customers: int, key_id: str) -> str:
    return json.dumps({"customers": customers, "version": SEED_VERSION, "master_key": key_id})


async def _admin(statement: str, *params: object) -> object:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return await conn.fetchval(statement, *params)
    finally:
        await conn.close()


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(engine: AsyncEngine, url: str, keyring: Keyring, customers: int) -> list[str]:
    """``customers`` customers of TENANT with their search terms; their ids, in order."""
    await registry.create_tenant(engine, tenant_id=TENANT, name="Bench customers")
    keys = await keyring.tenant_for_writing(engine, TENANT)
    conn = await asyncpg.connect(_dsn(url))
    ids: list[str] = []
    began = time.perf_counter()
    try:
        for start in range(0, customers, CHUNK):
            rows, terms = [], []
            now = int(time.time() * 1000)
            for number in range(start, min(start + CHUNK, customers)):
                customer_id = new_customer_id()
                name, email, phone = person(number)
                aead, wrapped = keys.new_customer_key(customer_id)
                profile = json.dumps({"name": name, "email": email, "phone": phone}).encode()
                sealed = seal(aead, profile, bound_to=f"profile:{customer_id}")
                rows.append((customer_id, TENANT, wrapped, sealed, False, number % 3 == 0, now,
                             "in_store", now, now, None))  # fmt: skip
                for term in profile_terms(name=name, email=email, phone=phone):
                    terms.append((TENANT, keys.term(term), customer_id))
                ids.append(customer_id)
            await conn.copy_records_to_table(
                "customers",
                records=rows,
                columns=["id", "tenant_id", "wrapped_key", "sealed_profile", "marketing_consent",
                         "receipt_consent", "consent_at", "consent_via", "created_at",
                         "updated_at", "erased_at"],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "customer_search_terms", records=terms, columns=["tenant_id", "term", "customer_id"]
            )
            done = start + len(rows)
            if done % (CHUNK * 10) == 0 or done == customers:
                print(f"  {done:,} customers ({time.perf_counter() - began:.0f} s)", flush=True)
        await conn.execute("ANALYZE customers; ANALYZE customer_search_terms")
    finally:
        await conn.close()
    return ids


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


async def _ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM customers WHERE tenant_id = :t ORDER BY created_at, id"),
            {"t": TENANT},
        )
        return list(rows.scalars())


async def _timed(engine: AsyncEngine, keyring: Keyring, queries: list[str]) -> list[float]:
    times = []
    for query in queries:
        began = time.perf_counter()
        found = await service.search_for_register(
            engine, keyring=keyring, tenant_id=TENANT, text=query
        )
        times.append((time.perf_counter() - began) * 1000)
        assert found, query  # every query names a customer that exists
    return times


def _p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


async def lookups(args: argparse.Namespace, rounds: Rounds) -> dict[str, Any]:
    keyring = Keyring(MASTER_KEY)
    signature = _signature(args.customers, keyring.master_key_id)
    reused = False
    if args.keep_db:
        url, reused = await _kept(args.keep_db, signature)
    else:
        url = await create_pg_database()
    detail: dict[str, Any] = {}
    try:
        engine = make_engine(url)
        await migrate(engine)
        if reused:
            print(f"reusing kept database {args.keep_db} ({signature})", flush=True)
            ids = await _ids(engine)
            detail["seed_s"] = 0.0
        else:
            print(f"seeding {args.customers:,} customers (COPY) …", flush=True)
            began = time.perf_counter()
            ids = await seed(engine, url, keyring, args.customers)
            detail["seed_s"] = round(time.perf_counter() - began, 1)
            if args.keep_db:
                await _admin(f"COMMENT ON DATABASE \"{args.keep_db}\" IS '{signature}'")
        async with engine.connect() as conn:
            detail["search_terms"] = await conn.scalar(
                text("SELECT count(*) FROM customer_search_terms")
            )
        rng = random.Random(14)
        for _ in rounds.each():
            numbers = [rng.randrange(len(ids)) for _ in range(args.requests)]
            cards = [format_customer_card(ids[n]) for n in numbers]
            names = []
            for n in numbers:
                first, last = person(n)[0].split()
                names.append(f"{first} {last[: rng.randint(3, len(last))]}")
            phones = ["0" + person(n)[2].removeprefix("+41 ").replace(" ", "") for n in numbers]
            emails = [person(n)[1].upper() for n in numbers]
            for key, label, queries, goal in (
                ("card", "lookup by card (SFC1:<id>)", cards, Goal("<", 5)),
                ("name", "search by name ('Anna Kowa…')", names, Goal("<", 200)),
                ("phone", "search by phone (079…)", phones, Goal("<", 200)),
                ("email", "search by e-mail", emails, Goal("<", 200)),
            ):
                times = await _timed(engine, keyring, queries)
                rounds.add(f"{key}_p99", _p99(times), label=f"{label}: p99 of {len(times)}",
                           unit="ms", goal=goal, digits=2)  # fmt: skip
                rounds.add(f"{key}_median", statistics.median(times), label=f"{label}: median",
                           unit="ms", digits=2)  # fmt: skip
        await engine.dispose()
    finally:
        if not args.keep_db:
            await drop_pg_database(url)
    return detail


async def main(args: argparse.Namespace, rounds: Rounds) -> None:
    detail = await lookups(args, rounds)
    if not args.skip_stock and importlib.util.find_spec("bench.stock_figures") is not None:
        stock_figures = importlib.import_module("bench.stock_figures")
        detail["stock"] = await stock_figures.run(args, rounds)
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "customers.json",
        customers=args.customers,
        requests=args.requests,
        seeding="asyncpg COPY of sealed profiles and HMAC search terms (not through the API)",
        **detail,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500, help="queries of each kind a round")
    parser.add_argument(
        "--keep-db", metavar="NAME", help="keep the seeded PostgreSQL database NAME after the run,"
        " and reuse it when it holds the same seed (--customers): a re-measure skips seeding",
    )  # fmt: skip
    # bench/stock_figures.py's sections (issue 14, stock across stores) and their sizes
    parser.add_argument("--skip-stock", action="store_true", help="only the customers' figures")
    parser.add_argument("--stock-stores", type=int, default=1000)
    parser.add_argument("--stock-items", type=int, default=100_000)
    parser.add_argument("--stock-requests", type=int, default=200, help="queries of each kind")
    parser.add_argument("--import-rows", type=int, default=100_000)
    add_rounds_argument(parser)
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Rounds("customers", rounds=arguments.rounds)))
