"""The configuration tests' world: two tenants, stores and registers on a real SQL store, and the
keys a store needs before its registers have a complete document."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service
from control_plane.configuration.layers import Layer
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices, stores, tenants
from control_plane.operators.audit import Actor

OWN, FOREIGN = "acme", "globex"
ANA = Actor(actor="ana@acme.example", via="cli")

#: The sections with no platform default, set on the tenant layer.
TENANT_KEYS: dict[str, Any] = {
    "currency": {"code": "CHF", "exponent": 2, "cash_increment_minor": 5},
    "tax": {"classes": [{"code": "A", "rate": "0.081", "label": "MWST"}]},
    "hours": {
        "time_zone": "Europe/Zurich",
        "week": {"mon": [{"opens": "08:00", "closes": "18:30"}]},
    },
}


def store_identity(store_id: str) -> dict[str, Any]:
    """The ``store`` key of a store: its identity and address."""
    return {
        "id": store_id,
        "name": f"Store {store_id}",
        "address": {
            "lines": ["Bahnhofstrasse 1"],
            "postcode": "8001",
            "city": "Zurich",
            "country": "CH",
        },
    }


async def seed_tenant(
    engine: AsyncEngine, tenant: str, *, stores: int = 2, registers: int = 2
) -> None:
    """A tenant with ``stores`` stores of ``registers`` registers each, every document complete."""
    await registry.create_tenant(engine, tenant_id=tenant, name=tenant.title())
    for s in range(1, stores + 1):
        store = f"{tenant}-0{s}"
        await registry.create_store(engine, store_id=store, tenant_id=tenant, name=f"Store {s}")
        for r in range(1, registers + 1):
            await registry.register_device(engine, device_id=f"{store}-r{r}", store_id=store)
    for key, value in TENANT_KEYS.items():
        await service.set_setting(
            engine, actor=ANA, layer=Layer.TENANT, target=tenant, key=key, value=value
        )
    for s in range(1, stores + 1):
        store = f"{tenant}-0{s}"
        await service.set_setting(
            engine,
            actor=ANA,
            layer=Layer.STORE,
            target=store,
            key="store",
            value=store_identity(store),
        )


async def seed_fleet(
    engine: AsyncEngine, tenant: str, *, registers: int, per_store: int = 10
) -> list[str]:
    """A large tenant, fast: its stores and ``registers`` registers inserted in bulk (as many
    enrolments would have made them), then every document completed like `seed_tenant` does.
    The registers' ids, ``{tenant}-s{n}-r{m}``."""
    stores_n = max(1, -(-registers // per_store))
    ids = [f"{tenant}-s{n // per_store}-r{n % per_store}" for n in range(registers)]
    async with engine.begin() as conn:
        await conn.execute(insert(tenants).values(id=tenant, name=tenant.title(), created_at=0))
        await conn.execute(
            insert(stores),
            [
                {"id": f"{tenant}-s{s}", "tenant_id": tenant, "name": f"S{s}", "created_at": 0}
                for s in range(stores_n)
            ],
        )
        await conn.execute(
            insert(devices),
            [
                {"id": d, "tenant_id": tenant, "store_id": d.rsplit("-", 1)[0], "created_at": 0}
                for d in ids
            ],
        )
    for key, value in TENANT_KEYS.items():
        await service.set_setting(
            engine, actor=ANA, layer=Layer.TENANT, target=tenant, key=key, value=value
        )
    for s in range(stores_n):
        store = f"{tenant}-s{s}"
        await service.set_setting(
            engine,
            actor=ANA,
            layer=Layer.STORE,
            target=store,
            key="store",
            value=store_identity(store),
        )
    return ids


@dataclass(frozen=True)
class World:
    """Two fresh tenants of one test: ``own`` with two stores of two registers, ``foreign``."""

    engine: AsyncEngine
    own: str
    foreign: str

    @property
    def store1(self) -> str:
        return f"{self.own}-01"

    @property
    def store2(self) -> str:
        return f"{self.own}-02"

    @property
    def r1(self) -> str:
        return f"{self.own}-01-r1"

    @property
    def r2(self) -> str:
        return f"{self.own}-01-r2"

    @property
    def other_r1(self) -> str:
        return f"{self.own}-02-r1"

    @property
    def foreign_store(self) -> str:
        return f"{self.foreign}-01"

    @property
    def foreign_r1(self) -> str:
        return f"{self.foreign}-01-r1"


_numbers = itertools.count(1)


async def fresh_world(engine: AsyncEngine) -> World:
    """Seed two tenants no other test uses, so tests share one migrated store."""
    n = next(_numbers)
    world = World(engine=engine, own=f"{OWN}{n}", foreign=f"{FOREIGN}{n}")
    await seed_tenant(engine, world.own)
    await seed_tenant(engine, world.foreign, stores=1, registers=1)
    return world


@contextlib.asynccontextmanager
async def migrated(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated store."""
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
