"""Prices change in the cloud while the store sells: the register follows, carts keep theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from edge.checkout.catalog import Catalog
from edge.checkout.errors import UnknownItem
from edge.pos.catalog_source import item_to_json, load_snapshot_file
from edge.pos.catalog_sync import CatalogSync
from edge.pos.register import Register
from edge.pos.store_config import DEMO_CATALOG
from tests.control_plane.catalog.conftest import catalog_app
from tests.edge.pos.conftest import MILK, signed_in_with_shift

TENANT = "t-sync"


@pytest.fixture
async def cloud_transport(tmp_path: Path) -> AsyncIterator[httpx.ASGITransport]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}")
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id=TENANT, name="Sync", currency="CHF")
    yield httpx.ASGITransport(app=catalog_app(engine))
    await engine.dispose()


async def _upsert(transport: httpx.ASGITransport, **body: Any) -> int:
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as client:
        answer = await client.post("/api/catalog/items", json={"tenant_id": TENANT, **body})
        answer.raise_for_status()
        return int(answer.json()["version"])


async def test_register_follows_price_changes_and_deletes(
    register: Register, cloud_transport: httpx.ASGITransport
) -> None:
    demo = [item_to_json(i) for i in load_snapshot_file(DEMO_CATALOG)]
    await _upsert(cloud_transport, items=demo)
    sync = CatalogSync(
        register=register, base_url="http://cloud", tenant_id=TENANT, transport=cloud_transport
    )
    register.replace_catalog(Catalog(version=0))
    assert await sync.sync_once() == 1
    assert len(register.catalog) == len(demo)

    await signed_in_with_shift(register)
    await register.scan(MILK)
    milk = next(i for i in demo if MILK in i["gtins"])
    await _upsert(cloud_transport, items=[{**milk, "price_minor": 149}])
    assert await sync.sync_once() == 2
    await register.scan(MILK)
    assert [line.unit_price_minor for line in register.cart.lines] == [175, 149]

    await _upsert(cloud_transport, deletes=[milk["id"]])
    assert await sync.sync_once() == 3
    with pytest.raises(UnknownItem):
        await register.scan(MILK)


async def test_a_register_ahead_of_the_cloud_reloads_the_snapshot(
    register: Register, cloud_transport: httpx.ASGITransport
) -> None:
    await _upsert(cloud_transport, items=[item_to_json(next(iter(register.catalog)))])
    register.replace_catalog(Catalog(version=99))  # e.g. the cloud was restored from a backup
    sync = CatalogSync(
        register=register, base_url="http://cloud", tenant_id=TENANT, transport=cloud_transport
    )
    assert await sync.sync_once() == 1
    assert len(register.catalog) == 1
