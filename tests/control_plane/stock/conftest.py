"""One migrated store per module (SQLite file and PostgreSQL) and journals written as the ingest
stores them, for the stock projection's tests; each test makes its own tenant."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from tests.harness.control_plane import migrated_store

_tenants = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated store for every test of the module (each test has its own tenant)."""
    with migrated_store(request.param, tmp_path_factory.mktemp("stock")) as url:
        yield url


async def new_tenant(engine: AsyncEngine, stores: Sequence[str]) -> str:
    """A fresh tenant with the stores ``<tenant>-<name>``, one register each (its id the same)."""
    tenant = f"t{next(_tenants)}"
    await registry.create_tenant(engine, tenant_id=tenant, name=tenant)
    for store in stores:
        store_id = f"{tenant}-{store}"
        await registry.create_store(engine, store_id=store_id, tenant_id=tenant, name=store)
        await registry.register_device(engine, device_id=store_id, store_id=store_id)
    return tenant


async def append(
    engine: AsyncEngine,
    device_id: str,
    records: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    ts: int,
    first_seq: int = 1,
    hwm: bool = True,
) -> int:
    """Store records from ``first_seq`` as the ingest does (chain not checked here); returns the
    last seq, and moves the device's high-water mark to it unless ``hwm`` is False."""
    rows = [
        {"device_id": device_id, "seq": seq, "kind": str(kind), "ts": ts,
         "prev_hash": "0" * 64, "hash": f"{seq:064x}", "received_at": ts,
         "body": json.dumps(body)}
        for seq, (kind, body) in enumerate(records, start=first_seq)
    ]  # fmt: skip
    last = first_seq + len(records) - 1
    async with engine.begin() as conn:
        if rows:
            await conn.execute(insert(journal), rows)
        if hwm:
            await conn.execute(update(devices).where(devices.c.id == device_id).values(hwm=last))
    return last
