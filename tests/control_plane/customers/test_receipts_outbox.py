"""The digital receipts' outbox leases and finishes through the notifications outbox's lease.

On a migrated store (SQLite file and PostgreSQL): a due receipt is leased to one mailer at a
time, a lease that runs out is taken over and the first mailer's late outcome is refused, a retry
waits for its time and counts an attempt, a skip is final and counts none. These are the
behaviours the mailer relies on (control_plane/customers/mailer.py), whichever module holds the
mechanism.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import receipts
from control_plane.customers.tables import customer_receipts
from control_plane.db.engine import make_engine
from protocols.customer_card import new_customer_id
from tests.harness.control_plane import migrated_store

NOW = 1_800_000_000_000
LEASE = 60_000
_seq = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_store(request.param, tmp_path_factory.mktemp("receipts")) as url:
        yield url


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    """The store with an empty outbox (each test owes its own receipts)."""
    made = make_engine(database)
    async with made.begin() as conn:
        await conn.execute(delete(customer_receipts))
    yield made
    await made.dispose()


async def _owe(engine: AsyncEngine, *, next_at: int = NOW) -> str:
    receipt_id = uuid.uuid4().hex
    async with engine.begin() as conn:
        await conn.execute(
            insert(customer_receipts).values(
                id=receipt_id,
                tenant_id="acme",
                customer_id=new_customer_id(),
                device_id="acme-01-r1",
                seq=next(_seq),
                sale_id=uuid.uuid4().hex,
                status="pending",
                attempts=0,
                next_at=next_at,
                created_at=NOW,
            )
        )
    return receipt_id


async def _row(engine: AsyncEngine, receipt_id: str) -> tuple[str, int, int, str | None]:
    c = customer_receipts.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(c.status, c.attempts, c.next_at, c.lease_owner).where(c.id == receipt_id)
            )
        ).one()
    return str(row.status), int(row.attempts), int(row.next_at), row.lease_owner


async def _claim(engine: AsyncEngine, owner: str, now_ms: int, limit: int = 10) -> list[str]:
    due = await receipts.claim(engine, owner=owner, now_ms=now_ms, lease_ms=LEASE, limit=limit)
    return sorted(d.id for d in due)


async def test_a_due_receipt_is_leased_to_one_mailer_at_a_time(engine: AsyncEngine) -> None:
    first, second = sorted([await _owe(engine), await _owe(engine)])
    later = await _owe(engine, next_at=NOW + 10_000)

    assert len(await _claim(engine, "a", NOW, limit=1)) == 1
    taken = await _claim(engine, "b", NOW)
    assert len(taken) == 1
    assert taken[0] in (first, second)
    assert await _claim(engine, "c", NOW) == []  # both leased; the later one is not due
    assert await _claim(engine, "c", NOW + 10_000) == [later]


async def test_a_lease_that_ran_out_is_taken_over_and_the_late_outcome_refused(
    engine: AsyncEngine,
) -> None:
    receipt = await _owe(engine)
    assert await _claim(engine, "crashed", NOW) == [receipt]
    assert await _claim(engine, "other", NOW + LEASE - 1) == []  # still leased
    assert await _claim(engine, "other", NOW + LEASE + 1) == [receipt]

    late = NOW + LEASE + 2
    assert not await receipts.finish(
        engine, receipt_id=receipt, owner="crashed", outcome="sent", now_ms=late
    )
    assert await receipts.finish(
        engine, receipt_id=receipt, owner="other", outcome="sent", now_ms=late
    )
    assert await _row(engine, receipt) == ("sent", 1, NOW, None)
    assert not await receipts.finish(  # finished: nobody records another outcome
        engine, receipt_id=receipt, owner="other", outcome="failed", now_ms=late
    )


async def test_a_retry_waits_and_counts_an_attempt_a_skip_counts_none(
    engine: AsyncEngine,
) -> None:
    retried, skipped = await _owe(engine), await _owe(engine)
    assert await _claim(engine, "m", NOW) == sorted([retried, skipped])

    assert await receipts.finish(
        engine,
        receipt_id=retried,
        owner="m",
        outcome="retry",
        now_ms=NOW + 1,
        error="smtp: 451 try later",
        retry_at=NOW + 5_000,
    )
    assert await receipts.finish(
        engine, receipt_id=skipped, owner="m", outcome="skipped", now_ms=NOW + 1
    )
    assert await _row(engine, retried) == ("pending", 1, NOW + 5_000, None)
    assert await _row(engine, skipped) == ("skipped", 0, NOW, None)
    assert await _claim(engine, "m", NOW + 4_999) == []
    assert await _claim(engine, "m", NOW + 5_000) == [retried]


async def test_mailers_claiming_at_once_lease_disjoint_batches_of_their_limit(
    engine: AsyncEngine,
) -> None:
    owed = sorted([await _owe(engine) for _ in range(6)])
    batches = await asyncio.gather(*(_claim(engine, owner, NOW, limit=2) for owner in "xyz"))
    assert [len(b) for b in batches] == [2, 2, 2]  # PostgreSQL leased all 6 to one before
    assert sorted(itertools.chain(*batches)) == owed
