"""Prices change in the cloud while the store sells: the register follows, carts keep theirs.

The register signs every catalog call with its own identity (a certificate of the fleet CA);
a register without one is refused and keeps selling from the catalog it has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog import service as catalog
from control_plane.catalog.schemas import CatalogItem
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from edge.checkout.catalog import Catalog
from edge.checkout.errors import UnknownItem
from edge.enrolment.device_auth import DeviceAuth
from edge.pos.catalog_source import item_to_json, load_snapshot_file
from edge.pos.catalog_store import StoredCatalog, write_catalog
from edge.pos.catalog_sync import CatalogSync
from edge.pos.register import Register
from edge.pos.store_config import DEMO_CATALOG
from provisioning.ca import CertificateAuthority
from tests.control_plane.catalog.conftest import catalog_app, registered_register
from tests.edge.pos.conftest import MILK, signed_in_with_shift

TENANT, OTHER = "t-sync", "t-other"


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}")
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id=TENANT, name="Sync", currency="CHF")
    await registry.create_tenant(engine, tenant_id=OTHER, name="Other", currency="CHF")
    yield engine
    await engine.dispose()


@pytest.fixture
def cloud_transport(cloud: AsyncEngine) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=catalog_app(cloud))


@pytest.fixture
async def auth(cloud: AsyncEngine, fleet_ca: CertificateAuthority, tmp_path: Path) -> DeviceAuth:
    """This register's identity, issued by the fleet CA and known to the registry."""
    return await registered_register(cloud, fleet_ca, tmp_path / "identity", tenant_id=TENANT)


async def _upsert(
    engine: AsyncEngine,
    *,
    tenant_id: str = TENANT,
    items: Sequence[dict[str, Any]] = (),
    deletes: Sequence[str] = (),
) -> int:
    """The back office changes the catalog (its own route is the operators'; not tested here)."""
    return await catalog.upsert_items(
        engine,
        tenant_id=tenant_id,
        items=[CatalogItem.model_validate(item) for item in items],
        deletes=deletes,
    )


async def test_register_follows_price_changes_and_deletes(
    register: Register, cloud: AsyncEngine, cloud_transport: httpx.ASGITransport, auth: DeviceAuth
) -> None:
    demo = [item_to_json(i) for i in load_snapshot_file(DEMO_CATALOG)]
    await _upsert(cloud, items=demo)
    sync = CatalogSync(
        register=register, base_url="http://cloud", auth=auth, transport=cloud_transport
    )
    register.replace_catalog(Catalog(version=0))
    assert await sync.sync_once() == 1
    assert len(register.catalog) == len(demo)

    await signed_in_with_shift(register)
    await register.scan(MILK)
    milk = next(i for i in demo if MILK in i["gtins"])
    await _upsert(cloud, items=[{**milk, "price_minor": 149}])
    assert await sync.sync_once() == 2
    await register.scan(MILK)
    assert [line.unit_price_minor for line in register.cart.lines] == [175, 149]

    await _upsert(cloud, deletes=[milk["id"]])
    assert await sync.sync_once() == 3
    with pytest.raises(UnknownItem):
        await register.scan(MILK)


async def test_a_register_ahead_of_the_cloud_reloads_the_snapshot(
    register: Register, cloud: AsyncEngine, cloud_transport: httpx.ASGITransport, auth: DeviceAuth
) -> None:
    await _upsert(cloud, items=[item_to_json(next(iter(register.catalog)))])
    register.replace_catalog(Catalog(version=99))  # e.g. the cloud was restored from a backup
    sync = CatalogSync(
        register=register, base_url="http://cloud", auth=auth, transport=cloud_transport
    )
    assert await sync.sync_once() == 1
    assert len(register.catalog) == 1


async def test_a_register_without_its_identity_is_refused_and_keeps_its_catalog(
    register: Register, cloud: AsyncEngine, cloud_transport: httpx.ASGITransport, auth: DeviceAuth
) -> None:
    await _upsert(cloud, items=[item_to_json(next(iter(register.catalog)))])
    before = register.catalog.version
    sync = CatalogSync(register=register, base_url="http://cloud", transport=cloud_transport)

    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sync.sync_once()

    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["reason"] == "device_token_missing"
    assert register.catalog.version == before


async def test_a_register_naming_another_tenant_gets_nothing_of_it(
    register: Register, cloud: AsyncEngine, cloud_transport: httpx.ASGITransport, auth: DeviceAuth
) -> None:
    await _upsert(cloud, tenant_id=OTHER, items=[item_to_json(next(iter(register.catalog)))])
    before = register.catalog.version
    sync = CatalogSync(
        register=register,
        base_url="http://cloud",
        auth=auth,
        tenant_id=OTHER,
        transport=cloud_transport,
    )

    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sync.sync_once()

    assert refused.value.response.status_code == 404
    assert register.catalog.version == before


async def test_a_stored_catalog_reloads_whole_then_follows_changes_on_disk(
    register: Register,
    cloud: AsyncEngine,
    cloud_transport: httpx.ASGITransport,
    auth: DeviceAuth,
    tmp_path: Path,
) -> None:
    """The register's catalog.db: a full reload rewrites the file, a change set lands in it."""
    demo = [item_to_json(i) for i in load_snapshot_file(DEMO_CATALOG)]
    await _upsert(cloud, items=demo)
    path = tmp_path / "catalog.db"
    write_catalog(path, Catalog(version=99))  # ahead of the cloud: it was restored from a backup
    register.replace_catalog(StoredCatalog(path))
    sync = CatalogSync(
        register=register, base_url="http://cloud", auth=auth, transport=cloud_transport
    )
    assert await sync.sync_once() == 1
    assert len(register.catalog) == len(demo)
    milk = next(i for i in demo if MILK in i["gtins"])
    await _upsert(cloud, items=[{**milk, "price_minor": 149}])
    assert await sync.sync_once() == 2
    await signed_in_with_shift(register)
    await register.scan(MILK)
    after_restart = StoredCatalog(path)  # what the next start opens, without parsing anything
    assert [line.unit_price_minor for line in register.cart.lines] == [149]
    assert (after_restart.version, after_restart.by_id(milk["id"]).price_minor) == (2, 149)
