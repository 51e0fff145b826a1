"""The fold worker keeps the reports' rollups caught up off the ack path, exactly once.

Registers' ledgers (the simulated register's sales: lines, split tenders, two tax rates) are
stored by the real ingest (``ingest_batch``) on SQLite and PostgreSQL. The worker, woken by the
ingest (its poll is set to an hour, so only the wake-up can start its rounds), folds them while
the ingest still stores; at the end every device's rollups equal a recomputation from its
journal (``rollups.verify``), every store's days equal their quarter hours
(``rollups.verify_daily``), and a report from the rollups equals the same report folded from the
journal. Folds racing on one device (several catch-ups and two workers at once) and folds
cancelled at every point of their run leave the rollups exact: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.journal_heads import HeadVerifier
from control_plane.ingest.service import ingest_batch
from control_plane.reports import rollups
from control_plane.reports.fold_worker import FoldSettings, FoldWorker
from control_plane.reports.period import Period
from control_plane.reports.rollup_tables import report_rollup_marks, report_rollups
from control_plane.reports.service import Filters, build
from control_plane.tenancy import TenantScope
from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from protocols.codec import decode
from protocols.journal_wire import batch_bytes
from protocols.messages import JournalBatch
from protocols.topics import Channel, device_topic
from tests.harness.services import wait_until

pytestmark = [pytest.mark.services]

STORE, TENANT = "fw-01", "fw"
SALES = 60
#: Small pages and chunks, so a run folds many pages, each in several chunks.
SMALL = FoldSettings(interval_s=0.05, poll_s=3600, page=7, chunk=3)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id=TENANT, name="Fold")
    await registry.create_store(
        engine, store_id=STORE, tenant_id=TENANT, name="Main", timezone="Europe/Zurich"
    )
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One simulated register's records on the wire (the journal does not name its device)."""

    async def ring() -> list[str]:
        path = tmp_path_factory.mktemp("ledger") / "ledger.db"
        async with Ledger(path, register_id="1") as ledger:
            await ring_sales(ledger, RingSettings(rate=0, count=SALES, seed=5))
            return [r.record for r in await ledger.read_records(1, SALES)]

    return asyncio.run(ring())


def batches(device_id: str, wire: list[str], size: int) -> list[JournalBatch]:
    """The batches a replicator sends, decoded as the ingest receives them."""
    out = []
    for start in range(0, len(wire), size):
        payload = batch_bytes(wire[start : start + size], sent_at=0)
        message = decode(device_topic(device_id, Channel.JOURNAL), payload).message
        assert isinstance(message, JournalBatch)
        out.append(message)
    return out


async def ingest(engine: AsyncEngine, device_id: str, wire: list[str], size: int = 4) -> None:
    heads = HeadVerifier(engine)
    for batch in batches(device_id, wire, size):
        outcome = await ingest_batch(
            engine=engine, device_id=device_id, batch=batch, now_ms=0, heads=heads
        )
        assert outcome.problem is None
        await asyncio.sleep(0.01)  # a register's pace: the worker folds while records arrive


async def register(engine: AsyncEngine, count: int) -> list[str]:
    ids = [f"{STORE}-r{n}" for n in range(1, count + 1)]
    for device_id in ids:
        await registry.register_device(engine, device_id=device_id, store_id=STORE)
    return ids


async def marks(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(report_rollup_marks.c.device_id, report_rollup_marks.c.upto_seq)
        )
        return {str(d): int(m) for d, m in rows}


async def hwms(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(devices.c.id, devices.c.hwm).where(devices.c.hwm > 0))
        return {str(d): int(h) for d, h in rows}


async def sales_counted(engine: AsyncEngine, device_id: str) -> int:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(report_rollups.c.sales_count).where(report_rollups.c.device_id == device_id)
        )
        return sum(int(n) for (n,) in rows)


async def exact(engine: AsyncEngine, ids: list[str]) -> None:
    """Every device's rollups are its journal's sums, and the store's days their buckets'."""
    for device_id in ids:
        assert await rollups.verify(engine, device_id) == [], device_id
    assert await rollups.verify_daily(engine, STORE) == []


async def test_the_worker_folds_what_the_ingest_stores_while_it_stores(
    engine: AsyncEngine, wire: list[str]
) -> None:
    ids = await register(engine, 3)
    worker = FoldWorker(engine=engine, settings=SMALL)
    folding = asyncio.create_task(worker.run(), name="rollup-fold")
    try:
        await asyncio.gather(*(ingest(engine, device_id, wire) for device_id in ids))
        stored = await hwms(engine)
        assert stored == dict.fromkeys(ids, SALES)
        await wait_until(  # a guard against a hang, not a speed test: generous under load
            lambda: _caught_up(engine, stored), timeout=180, what="the worker to catch up"
        )
    finally:
        folding.cancel()
        await asyncio.gather(folding, return_exceptions=True)
    assert worker.rounds > 1  # woken by the ingest while it stored, not once at the end
    await exact(engine, ids)
    for device_id in ids:
        assert await sales_counted(engine, device_id) == SALES
    today = datetime.now(UTC).date()  # the simulated register sells now
    asked = Filters(Period.of(today - timedelta(days=2), today + timedelta(days=2)), store_id=STORE)
    scope = TenantScope(TENANT)
    for name in ("summary", "items", "tenders", "staff"):  # (its sales carry no taxes)
        rolled = await build(engine, scope=scope, name=name, filters=asked)
        folded = await build(engine, scope=scope, name=name, filters=replace(asked, rollups=False))
        assert rolled.rows == folded.rows, name
        assert rolled.rows, name  # an empty report would prove nothing


async def _caught_up(engine: AsyncEngine, stored: dict[str, int]) -> bool:
    return await marks(engine) == stored


async def test_folds_racing_on_one_device_sum_each_record_once(
    engine: AsyncEngine, wire: list[str]
) -> None:
    """Five catch-ups of different page sizes and two workers' rounds, all at once."""
    (device_id,) = await register(engine, 1)
    await ingest(engine, device_id, wire, size=20)
    workers = [FoldWorker(engine=engine, settings=SMALL) for _ in range(2)]
    await asyncio.gather(
        *(rollups.catch_up(engine, [device_id], page=page, chunk=2) for page in (3, 5, 7, 11, 60)),
        *(worker.fold_round() for worker in workers),
    )
    assert await marks(engine) == {device_id: SALES}
    assert await sales_counted(engine, device_id) == SALES
    await exact(engine, [device_id])


async def test_a_cancel_inside_a_pages_write_waits_for_its_commit(
    engine: AsyncEngine, wire: list[str]
) -> None:
    """The cancel lands just after the claim moved the mark, inside the page's transaction: the
    page is committed (mark and sums), and the fold still ends cancelled. A transaction cut off
    there would be left to the pool and the driver to unwind while it holds SQLite's write lock
    (once seen in CI: the next fold's write found the database locked)."""
    (device_id,) = await register(engine, 1)
    await ingest(engine, device_id, wire, size=20)
    fold = asyncio.create_task(rollups.fold_page(engine, device_id, page=10, chunk=2))
    claims: list[str] = []

    def cancel_after_the_claim(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "report_rollup_marks" in statement and not statement.lstrip().startswith("SELECT"):
            claims.append(statement)
            if len(claims) == 1:  # the claim: a cancel, once (the greenlet runs on the loop)
                fold.cancel()

    event.listen(engine.sync_engine, "after_cursor_execute", cancel_after_the_claim)
    try:
        with pytest.raises(asyncio.CancelledError):
            await fold
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", cancel_after_the_claim)
    assert claims  # the cancel came inside the write, after the claim
    assert await marks(engine) == {device_id: 10}
    assert await sales_counted(engine, device_id) == 10
    await exact(engine, [device_id])


async def test_a_fold_cancelled_anywhere_loses_and_doubles_nothing(
    engine: AsyncEngine, wire: list[str]
) -> None:
    """A fold cancelled after 0, 1, 2 … turns of the event loop: each time the rollups hold
    exactly the records up to the mark (a page is all in or all out), and the next fold goes
    on from there."""
    (device_id,) = await register(engine, 1)
    await ingest(engine, device_id, wire, size=20)
    cancelled_mid_way = 0
    for turns in range(60):
        fold = asyncio.create_task(rollups.catch_up(engine, [device_id], page=4, chunk=2))
        for _ in range(turns):
            await asyncio.sleep(0)
        cancelled_mid_way += fold.cancel()
        await asyncio.gather(fold, return_exceptions=True)
        await exact(engine, [device_id])
        if (await marks(engine)).get(device_id) == SALES:
            break
    assert cancelled_mid_way > 0  # the folds were cut short, not finished before the cancel
    await rollups.catch_up(engine, [device_id])
    assert await marks(engine) == {device_id: SALES}
    assert await sales_counted(engine, device_id) == SALES
    await exact(engine, [device_id])
