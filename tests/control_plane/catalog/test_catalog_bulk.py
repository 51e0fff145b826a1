"""A big catalog upsert is a few statements, not two per item (both stores).

schemathesis' long run sent ``POST /api/catalog/items`` with 10,000 deletes: one ``UPDATE`` per
id took longer than the client's 10 s on a loaded machine. Writes now go in batches; what the
register reads back is unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog import service
from control_plane.catalog.schemas import CatalogItem
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry

pytestmark = pytest.mark.services

TENANT = "t-bulk"


def item(item_id: str, price_minor: int = 100) -> CatalogItem:
    return CatalogItem(id=item_id, name=f"Item {item_id}", price_minor=price_minor, tax_class="B")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id=TENANT, name="Bulk", currency="EUR")
    yield engine
    await engine.dispose()


def _count_statements(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_thousands_of_items_and_deletes_take_a_few_statements(engine: AsyncEngine) -> None:
    first = [item(f"I{n:05}") for n in range(2_000)]
    await service.upsert_items(engine, tenant_id=TENANT, items=first)
    statements = _count_statements(engine)

    version = await service.upsert_items(
        engine,
        tenant_id=TENANT,
        items=[item(f"I{n:05}", 250) for n in range(1_000, 3_000)],  # half new, half changed
        deletes=[f"I{n:05}" for n in range(0, 1_000)],
    )

    assert len(statements) < 40
    changes = await service.changes(engine, tenant_id=TENANT, since=version - 1)
    assert len(changes.upserts) == 2_000
    assert {i.price_minor for i in changes.upserts} == {250}
    assert len(changes.deletes) == 1_000
    snapshot = await service.snapshot(engine, tenant_id=TENANT)
    assert [i.id for i in snapshot.items] == [f"I{n:05}" for n in range(1_000, 3_000)]


async def test_the_last_of_several_items_with_one_id_wins(engine: AsyncEngine) -> None:
    await service.upsert_items(engine, tenant_id=TENANT, items=[item("A", 1), item("A", 2)])
    await service.upsert_items(engine, tenant_id=TENANT, items=[item("A", 3), item("A", 4)])

    snapshot = await service.snapshot(engine, tenant_id=TENANT)
    assert [(i.id, i.price_minor, i.version) for i in snapshot.items] == [("A", 4, 2)]
