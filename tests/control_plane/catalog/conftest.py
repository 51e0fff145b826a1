"""The catalog API on a real store (SQLite file and PostgreSQL), migrated by Alembic.

The client is a register: an enrolled device of ``TENANT`` whose every request carries its own
assertion (``edge.enrolment.device_auth``), as the snapshot and changes routes require.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog.router import router
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.problems import install_problem_handlers
from edge.enrolment.device_auth import DeviceAuth
from provisioning.ca import CertificateAuthority
from tests.control_plane.devices.device_harness import issued_identity

TENANT = "t-catalog"


def catalog_app(engine: object) -> FastAPI:
    """Just the catalog router on an engine, as the control plane mounts it (with its handlers)."""
    app = FastAPI()
    app.state.engine = engine
    app.include_router(router)
    install_problem_handlers(app)
    return app


async def registered_register(
    engine: AsyncEngine, ca: CertificateAuthority, identity_dir: Path, *, tenant_id: str = TENANT
) -> DeviceAuth:
    """A store of ``tenant_id`` with one register whose identity the fleet CA issued."""
    store, device = f"{tenant_id}-01", f"{tenant_id}-01-r1"
    await registry.create_store(engine, store_id=store, tenant_id=tenant_id, name="Store")
    await registry.register_device(engine, device_id=device, store_id=store)
    await issued_identity(engine, ca, device_id=device, identity_dir=identity_dir)
    return DeviceAuth(identity_dir)


@pytest.fixture
async def api(
    database_url: str, fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    engine = make_engine(database_url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id=TENANT, name="Catalog tenant", currency="CHF")
    auth = await registered_register(engine, fleet_ca, tmp_path / "register")
    transport = httpx.ASGITransport(app=catalog_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud", auth=auth) as client:
        yield client
    await engine.dispose()
