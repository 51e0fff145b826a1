"""Search by name through the service on SQLite and PostgreSQL (issue 14): whole words then a
begun one find exactly the customers with them, a begun word before the last falls back to
prefixes, erasure removes every term; customers written before the word-pair terms (terms
version 1) are found by prefixes until re-indexed, then by pairs; no name word in clear."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import service
from control_plane.customers.blind_index import TERMS_VERSION, profile_terms
from control_plane.customers.keyring import Keyring
from control_plane.customers.schemas import CustomerIn
from control_plane.customers.tables import customer_search_terms, customers
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.operators.service import cli_actor
from control_plane.tenancy import EVERY_TENANT
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = pytest.mark.services

REINDEXED = "storefleet_customers_reindexed_total"
KEY = "a master key for the name search test, 0123456789"
NAMES = {
    "a": "Anna Kowalska",
    "b": "Anna Kowalski",
    "c": "Annabel Kowalska",
    "d": "Maria Anna Kowalczyk",
    "e": "Anna Meier",
    "f": "Kowalska-Nowak Zofia",
}
SEARCHES = {
    "anna kowa": {"a", "b", "d"},  # the word anna, then a word beginning kowa
    "KOWALSKA ANNA": {"a", "c"},  # either order; the last word begun (annabel)
    "maria anna kow": {"d"},
    "anna kowalska": {"a"},
    "nowak zof": {"f"},  # a hyphen parts words
    "annab kow": {"c"},  # no whole word annab: every word a prefix
    "ann kowalsk": {"a", "b", "c"},
    "anna": {"a", "b", "c", "d", "e"},  # one word: a prefix
    "kowalsk": {"a", "b", "c", "f"},
    "anna nowak": set(),
    "zz kowa": set(),
}


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> (
    AsyncIterator[AsyncEngine]
):  # fmt: skip
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('names') / 'cloud.db'}"
    else:
        url = await create_pg_database()
    engine = make_engine(url)
    try:
        await migrate(engine)
        for tenant in ("acme", "globex"):
            await registry.create_tenant(engine, tenant_id=tenant, name=tenant.title())
        yield engine
    finally:
        await engine.dispose()
        if request.param != "sqlite":
            await drop_pg_database(url)


async def _create(engine: AsyncEngine, keyring: Keyring, tenant: str = "acme") -> dict[str, str]:
    """The customers of NAMES in ``tenant``, their ids by letter."""
    ids = {}
    for letter, name in NAMES.items():
        made = await service.create_customer(
            engine, keyring=keyring, tenant_id=tenant, body=CustomerIn(name=name),
            actor=cli_actor(),
        )  # fmt: skip
        ids[letter] = made.id
    return ids


async def _found(engine: AsyncEngine, keyring: Keyring, typed: str, tenant: str = "acme") -> (
    list[str]
):  # fmt: skip
    return [
        customer.id
        for customer in await service.search_customers(
            engine, keyring=keyring, tenant_id=tenant, text=typed, actor=cli_actor()
        )
    ]


async def test_a_name_search_finds_exactly_the_customers_with_those_words(
    engine: AsyncEngine,
) -> None:
    keyring = Keyring(KEY)
    ids = await _create(engine, keyring)
    await _create(engine, keyring, tenant="globex")  # same names, another tenant

    found = {typed: await _found(engine, keyring, typed) for typed in SEARCHES}

    assert found == {typed: sorted(ids[n] for n in letters) for typed, letters in SEARCHES.items()}


async def test_a_search_answers_at_most_its_limit_in_id_order(engine: AsyncEngine) -> None:
    keyring = Keyring(KEY)
    ids = await _create(engine, keyring)
    register = await service.search_for_register(
        engine, keyring=keyring, tenant_id="acme", text="anna kowa"
    )
    limited = await service.search_customers(
        engine, keyring=keyring, tenant_id="acme", text="kowa", actor=cli_actor(), limit=2
    )

    assert [(c.id, c.display_name) for c in register] == sorted(
        (ids[n], "Anna K." if n != "d" else "Maria K.") for n in "abd"
    )
    assert [c.id for c in limited] == sorted(ids[n] for n in "abcdf")[:2]


async def _terms_of(engine: AsyncEngine, customer_id: str) -> set[bytes]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(customer_search_terms.c.term).where(
                customer_search_terms.c.customer_id == customer_id
            )
        )
        return set(rows.scalars())


async def test_erasure_removes_every_term_and_no_name_word_is_stored_in_clear(
    engine: AsyncEngine,
) -> None:
    keyring = Keyring(KEY)
    ids = await _create(engine, keyring)
    keys = await keyring.tenant_for_writing(engine, "acme")
    stored = await _terms_of(engine, ids["d"])
    expected = {keys.term(t) for t in profile_terms(name=NAMES["d"], email=None, phone=None)}
    cells = []
    async with engine.connect() as conn:
        for table in (customers, customer_search_terms):
            for row in await conn.execute(select(table)):
                for cell in row:  # bytes as hex too: a name's bytes in a blob would show
                    cells.append(f"{cell!r}{cell.hex()}" if isinstance(cell, bytes) else str(cell))
    raw = "\n".join(cells).casefold()

    await service.erase_customer(engine, scope=EVERY_TENANT, customer_id=ids["d"],
                                 actor=cli_actor())  # fmt: skip

    assert stored == expected
    assert any(t.startswith("w:") for t in profile_terms(name=NAMES["d"], email=None, phone=None))
    assert await _terms_of(engine, ids["d"]) == set()
    assert await _found(engine, keyring, "maria anna kow") == []
    for word in ("maria", "anna", "kowalczyk", "kowal"):
        assert word not in raw, word
        assert word.encode().hex() not in raw, word


async def _make_version_1(engine: AsyncEngine, keyring: Keyring, customer_id: str) -> None:
    """The customer as written before migration 0025: name prefixes, no word pairs."""
    keys = await keyring.tenant_for_writing(engine, "acme")
    async with engine.begin() as conn:
        row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).one()
        profile = service._profile(keys, row)
        old = {
            t
            for t in profile_terms(name=profile["name"] or "", email=None, phone=None)
            if not t.startswith("w:")
        }
        await conn.execute(
            delete(customer_search_terms).where(customer_search_terms.c.customer_id == customer_id)
        )
        await conn.execute(
            insert(customer_search_terms),
            [{"tenant_id": "acme", "term": keys.term(t), "customer_id": customer_id} for t in old],
        )
        await conn.execute(
            update(customers).where(customers.c.id == customer_id).values(terms_version=1)
        )


async def test_older_customers_are_found_by_prefixes_until_reindexed_then_by_pairs(
    engine: AsyncEngine,
) -> None:
    keyring = Keyring(KEY)
    ids = await _create(engine, keyring)
    for letter in "ab":
        await _make_version_1(engine, keyring, ids[letter])
    await _make_version_1(engine, keyring, ids["e"])
    await service.erase_customer(engine, scope=EVERY_TENANT, customer_id=ids["e"],
                                 actor=cli_actor())  # fmt: skip
    async with engine.begin() as conn:  # erased before 0025: still version 1, no terms
        await conn.execute(
            update(customers).where(customers.c.id == ids["e"]).values(terms_version=1)
        )
    before = await _found(engine, keyring, "anna kowa")

    passes = []
    after: str | None = ""
    while after is not None:
        after = await service.reindex_customers(engine, keyring, after=after, batch=2)
        passes.append(after)
    keys = await keyring.tenant_for_writing(engine, "acme")
    async with engine.connect() as conn:
        versions = dict(
            (await conn.execute(select(customers.c.id, customers.c.terms_version))).all()
        )

    assert before == sorted(ids[n] for n in "abcd")  # the prefixes' answer (annabel begins anna)
    assert len(passes) == 3  # a, b then e: two batches of two, then none left
    assert set(versions.values()) == {TERMS_VERSION}
    for letter in "ab":
        assert await _terms_of(engine, ids[letter]) == {
            keys.term(t) for t in profile_terms(name=NAMES[letter], email=None, phone=None)
        }
    assert await _terms_of(engine, ids["e"]) == set()
    assert await _found(engine, keyring, "anna kowa") == sorted(ids[n] for n in "abd")
    async with engine.connect() as conn:
        assert await service._reindexed(conn, "acme")


async def test_a_profile_another_master_key_sealed_keeps_its_terms_and_is_counted(
    engine: AsyncEngine,
) -> None:
    keyring = Keyring(KEY)
    ids = await _create(engine, keyring)
    await _make_version_1(engine, keyring, ids["a"])
    counted = REGISTRY.get_sample_value(REINDEXED, {"outcome": "unopened"}) or 0.0

    last = await service.reindex_customers(
        engine, Keyring("another master key entirely, 0123456789")
    )

    assert last == ids["a"]
    assert REGISTRY.get_sample_value(REINDEXED, {"outcome": "unopened"}) == counted + 1
    async with engine.connect() as conn:
        assert (
            await conn.scalar(select(customers.c.terms_version).where(customers.c.id == ids["a"]))
            == 1
        )
        assert not await service._reindexed(conn, "acme")
    keys = await keyring.tenant_for_writing(engine, "acme")
    assert await _terms_of(engine, ids["a"]) == {  # its version 1 terms, as they were
        keys.term(t) for t in profile_terms(name=NAMES["a"], email=None, phone=None) if t[0] != "w"
    }
    assert await _found(engine, keyring, "anna kowa") == sorted(ids[n] for n in "abcd")  # prefixes
