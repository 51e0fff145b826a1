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
``create_customer`` writes them (``blind_index.profile_terms``: name prefixes, word pairs,
e-mail, phone). Names are drawn from 200 first names × 1,000 surnames, but both follow the
customer's number modulo 1,000, so there are 1,000 distinct full names of 1,000 customers each
(a common first name: 10,000 customers begin ``Anna``; 50,000 a surname ``Kowa…``); phones and
e-mails are unique. Besides the goals, two name searches off the word pairs' path are measured:
a begun first word (``Ann Kowa``) and a name no one has, both answered by intersecting prefixes.
The database is dropped afterwards, or with ``--keep-db NAME`` kept (its seed, terms version and
the master key's id in the database's comment) and reused by the next run that asks for the same.

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
from control_plane.customers.blind_index import TERMS_VERSION, profile_terms
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
    """What a kept database holds: another seed, key or kind of search terms is not reused."""
    return json.dumps({"customers": customers, "version": SEED_VERSION, "terms": TERMS_VERSION,
                       "master_key": key_id})  # fmt: skip


async def _admin(statement: str, *params: object) -> object:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return await conn.fetchval(statement, *params)
    finally:
        await conn.close()


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


#: The search terms' indexes, dropped while seeding and built once after (far faster than
#: COPY keeping a B-tree of random HMACs up to date row by row), as migration 0021 makes them.
TERM_INDEXES = (
    ("ALTER TABLE customer_search_terms DROP CONSTRAINT pk_customer_search_terms",
     "ALTER TABLE customer_search_terms ADD CONSTRAINT pk_customer_search_terms"
     " PRIMARY KEY (tenant_id, term, customer_id)"),
    ("DROP INDEX ix_customer_search_terms_customer",
     "CREATE INDEX ix_customer_search_terms_customer ON customer_search_terms (customer_id)"),
)  # fmt: skip


async def seed(
    engine: AsyncEngine, url: str, keyring: Keyring, customers: int
) -> tuple[list[str], dict[str, int]]:
    """``customers`` customers of TENANT with their search terms; their ids, in order, and how
    many terms of each kind (``n``, ``w``, ``e``, ``p``: the database sees only hashes)."""
    await registry.create_tenant(engine, tenant_id=TENANT, name="Bench customers")
    keys = await keyring.tenant_for_writing(engine, TENANT)
    conn = await asyncpg.connect(_dsn(url))
    ids: list[str] = []
    kinds: dict[str, int] = {}
    began = time.perf_counter()
    try:
        for drop, _ in TERM_INDEXES:
            await conn.execute(drop)
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
                             "in_store", now, now, None, TERMS_VERSION))  # fmt: skip
                for term in profile_terms(name=name, email=email, phone=phone):
                    terms.append((TENANT, keys.term(term), customer_id))
                    kinds[term[0]] = kinds.get(term[0], 0) + 1
                ids.append(customer_id)
            await conn.copy_records_to_table(
                "customers",
                records=rows,
                columns=["id", "tenant_id", "wrapped_key", "sealed_profile", "marketing_consent",
                         "receipt_consent", "consent_at", "consent_via", "created_at",
                         "updated_at", "erased_at", "terms_version"],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "customer_search_terms", records=terms, columns=["tenant_id", "term", "customer_id"]
            )
            done = start + len(rows)
            if done % (CHUNK * 10) == 0 or done == customers:
                print(f"  {done:,} customers ({time.perf_counter() - began:.0f} s)", flush=True)
        print(f"  indexing the search terms ({time.perf_counter() - began:.0f} s)", flush=True)
        for _, create in TERM_INDEXES:
            await conn.execute(create)
        # what autovacuum does to a table after this many inserts: without it an index-only
        # scan of the terms visits the heap for every row
        await conn.execute("VACUUM (ANALYZE) customers")
        await conn.execute("VACUUM (ANALYZE) customer_search_terms")
    finally:
        await conn.close()
    return ids, kinds


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


async def _timed(
    engine: AsyncEngine, keyring: Keyring, queries: list[str], *, exist: bool = True
) -> list[float]:
    times = []
    for query in queries:
        began = time.perf_counter()
        found = await service.search_for_register(
            engine, keyring=keyring, tenant_id=TENANT, text=query
        )
        times.append((time.perf_counter() - began) * 1000)
        assert bool(found) == exist, query  # a query names a customer that exists, or none
    return times


def _slower_names(rng: random.Random, count: int) -> tuple[list[str], list[str]]:
    """Name searches off the word-pair terms' path, which fall back to intersecting prefixes:
    a begun first word ('Ann Kowa', finds customers) and a first name with the beginning of a
    surname no one of that first name has (finds no one: both prefix lists read to the end).

    Every full name of the seed is one of ``person(0..999)``'s (first and surname both follow
    the number modulo 1,000), so which searches find no one is known without the database.
    """
    held = [[token.casefold() for token in person(n)[0].split()] for n in range(1000)]

    def anyone(typed: list[str]) -> bool:
        return any(all(any(w.startswith(t) for w in name) for t in typed) for name in held)

    begun, absent = [], []
    while len(begun) < count or len(absent) < count:
        first, last = rng.choice(FIRST_NAMES).casefold(), rng.choice(SURNAMES).casefold()
        typed = [first, last[: rng.randint(3, len(last))]]
        if len(absent) < count and not anyone(typed):
            absent.append(" ".join(typed))
        begun_first = first[: len(first) - 1]
        if len(begun) < count and anyone([begun_first, typed[1]]):
            begun.append(f"{begun_first} {typed[1]}")
    return begun, absent


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
            ids, detail["terms_by_kind"] = await seed(engine, url, keyring, args.customers)
            detail["seed_s"] = round(time.perf_counter() - began, 1)
            if args.keep_db:
                await _admin(f"COMMENT ON DATABASE \"{args.keep_db}\" IS '{signature}'")
        async with engine.connect() as conn:
            detail["search_terms"] = await conn.scalar(
                text("SELECT count(*) FROM customer_search_terms")
            )
            detail["search_terms_mb"] = round(
                await conn.scalar(
                    text("SELECT pg_total_relation_size('customer_search_terms')")
                ) / 2**20, 1)  # fmt: skip
        rng, slower_rng = random.Random(14), random.Random(1414)
        for _ in rounds.each():
            numbers = [rng.randrange(len(ids)) for _ in range(args.requests)]
            cards = [format_customer_card(ids[n]) for n in numbers]
            names = []
            for n in numbers:
                first, last = person(n)[0].split()
                names.append(f"{first} {last[: rng.randint(3, len(last))]}")
            phones = ["0" + person(n)[2].removeprefix("+41 ").replace(" ", "") for n in numbers]
            emails = [person(n)[1].upper() for n in numbers]
            begun, absent = _slower_names(slower_rng, args.requests)
            for key, label, queries, goal in (
                ("card", "lookup by card (SFC1:<id>)", cards, Goal("<", 5)),
                ("name", "search by name ('Anna Kowa…')", names, Goal("<", 200)),
                ("phone", "search by phone (079…)", phones, Goal("<", 200)),
                ("email", "search by e-mail", emails, Goal("<", 200)),
                ("name_begun", "search by name, first word begun ('Ann Kowa…')", begun, None),
                ("name_absent", "search by name no one has", absent, None),
            ):
                times = await _timed(engine, keyring, queries, exist=key != "name_absent")
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
