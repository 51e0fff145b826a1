"""A batch's rows on PostgreSQL: each column goes as one joined text and comes back value for value.

The statement splits every column with ``string_to_array`` on a control character; these check
that what lands in the journal and sales tables is exactly what was accepted (an absent
``customer_id`` as NULL, a record that is not a sale without a sales row), and that a batch
holding the separator anyway is stored row by row, not split wrongly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.rows import SEPARATOR, Accepted, joined, store_rows
from control_plane.ingest.tables import journal
from control_plane.sales.tables import sales
from protocols.canonical import canonical_text
from protocols.chain import GENESIS, record_hash
from protocols.messages import JournalRecord
from protocols.sale_body import SaleBody
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = pytest.mark.services


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    url = await create_pg_database()
    engine = make_engine(url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id="t-rows", name="Rows")
    await registry.create_store(engine, store_id="s-rows", tenant_id="t-rows", name="Rows")
    yield engine
    await engine.dispose()
    await drop_pg_database(url)


def sale_body(sale_id: str, description: str) -> dict[str, object]:
    return {
        "sale_id": sale_id,
        "register_id": "1",
        "receipt_no": 7,
        "currency": "EUR",
        "total_minor": 258,
        "tendered_minor": 300,
        "change_minor": 42,
        "lines": [
            {
                "sku": "4006381333931",
                "description": description,
                "quantity": "2",
                "unit_price_minor": 129,
                "amount_minor": 258,
            }
        ],
        "tenders": [{"kind": "cash", "amount_minor": 300, "reference": None}],
    }


def accepted(bodies: list[tuple[str, dict[str, object]]]) -> list[Accepted]:
    out, prev = [], GENESIS
    for seq, (kind, body) in enumerate(bodies, start=1):
        digest = record_hash(prev_hash=prev, seq=seq, kind=kind, ts=1000 + seq, body=body)
        record = JournalRecord(
            seq=seq, kind=kind, ts=1000 + seq, prev_hash=prev, hash=digest, body=body
        )
        sale = SaleBody.from_body(body) if kind == "sale.completed" else None
        out.append(Accepted(record, canonical_text(body), sale))
        prev = digest
    return out


async def stored(engine: AsyncEngine, device_id: str) -> tuple[list[tuple], list[tuple]]:  # type: ignore[type-arg]
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                journal.c.seq,
                journal.c.kind,
                journal.c.ts,
                journal.c.prev_hash,
                journal.c.hash,
                journal.c.body,
            )
            .where(journal.c.device_id == device_id)
            .order_by(journal.c.seq)
        )
        booked = await conn.execute(
            select(
                sales.c.seq,
                sales.c.sale_id,
                sales.c.receipt_no,
                sales.c.currency,
                sales.c.total_minor,
                sales.c.ts,
                sales.c.customer_id,
            )
            .where(sales.c.device_id == device_id)
            .order_by(sales.c.seq)
        )
        return [tuple(row) for row in rows], [tuple(row) for row in booked]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("raw_separator", [False, True], ids=["joined", "row-by-row"])
async def test_rows_stored_are_the_values_accepted(
    engine: AsyncEngine, raw_separator: bool
) -> None:
    device_id = f"rows-{raw_separator}"
    await registry.register_device(engine, device_id=device_id, store_id="s-rows")
    description = f'Café "Ürün" \\ , {{}} ☕ \U0001f600 {SEPARATOR}'
    items = accepted(
        [
            ("sale.completed", sale_body(f"{device_id}-a", description)),
            ("shift.opened", {"cashier": "E01", "note": description}),
            ("sale.completed", sale_body(f"{device_id}-b", "Cola 0.5 l")),
        ]
    )
    # canonical JSON escapes a control character inside a string: a body text never holds one
    assert all(SEPARATOR not in i.body_text for i in items)
    if raw_separator:  # as if it did: the batch must still be stored value for value
        items[1] = Accepted(items[1].record, f'{{"note":"{SEPARATOR}"}}', None)
    async with engine.begin() as conn:
        await store_rows(
            conn,
            device_id=device_id,
            tenant_id="t-rows",
            store_id="s-rows",
            accepted=items,
            now_ms=5000,
            device_update=update(devices).where(devices.c.id == device_id).values(hwm=3),
        )

    rows, booked = await stored(engine, device_id)
    assert rows == [
        (i.record.seq, i.record.kind, i.record.ts, i.record.prev_hash, i.record.hash, i.body_text)
        for i in items
    ]
    assert booked == [
        (i.record.seq, i.sale.sale_id, 7, "EUR", 258, i.record.ts, None)
        for i in items
        if i.sale is not None
    ]


def test_a_column_holding_the_separator_is_not_joined() -> None:
    assert joined(["a", None, 3]) == f"a{SEPARATOR}{SEPARATOR}3"
    assert joined(["a", f"b{SEPARATOR}c"]) is None
