"""The catalog API on a real store (SQLite file and PostgreSQL), migrated by Alembic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from control_plane.catalog.router import router
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.problems import install_problem_handlers

TENANT = "t-catalog"


def catalog_app(engine: object) -> FastAPI:
    """Just the catalog router on an engine, as the control plane mounts it (with its handlers)."""
    app = FastAPI()
    app.state.engine = engine
    app.include_router(router)
    install_problem_handlers(app)
    return app


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    engine = make_engine(database_url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id=TENANT, name="Catalog tenant", currency="CHF")
    transport = httpx.ASGITransport(app=catalog_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as client:
        yield client
    await engine.dispose()
