"""The cloud's half of ``storefleet demo``: the demo tenant's control plane and its seed.

``storefleet.demo`` composes this with the appliance's registers; this half imports no ``edge``
module, so what the console shows (the register's name, the catalog) is handed in by the caller,
which reads it from the same store document the kiosks read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.app import create_app
from control_plane.catalog import service as catalog
from control_plane.catalog.schemas import CatalogItem
from control_plane.devices import service as registry
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.settings import ControlPlaneSettings

TENANT = "demo-retail"
STORE_NAMES = ("Bahnhofstrasse", "Harbour Mall", "Station Kiosk", "Old Town", "Airport", "Campus")


def device_id_for(store: int) -> str:
    """The appliance at register 1 of store ``store``."""
    return f"demo-s{store:02d}-r1"


async def seed(
    engine: AsyncEngine, *, stores: int, register_name: str, items: Sequence[CatalogItem]
) -> None:
    """The demo tenant, its stores, one register each and the catalog; idempotent across runs."""
    with contextlib.suppress(registry.AlreadyExists):
        await registry.create_tenant(engine, tenant_id=TENANT, name="Demo Retail", currency="CHF")
    for number in range(1, stores + 1):
        store_id = f"demo-s{number:02d}"
        name = STORE_NAMES[(number - 1) % len(STORE_NAMES)]
        with contextlib.suppress(registry.AlreadyExists):
            await registry.create_store(engine, store_id=store_id, tenant_id=TENANT, name=name)
        with contextlib.suppress(registry.AlreadyExists):
            await registry.register_device(
                engine,
                device_id=device_id_for(number),
                store_id=store_id,
                register_name=register_name,
            )
    current = await catalog.snapshot(engine, tenant_id=TENANT)
    if current.version == 0:
        await catalog.upsert_items(engine, tenant_id=TENANT, items=list(items))


def demo_control_plane(
    *,
    data_dir: Path,
    host: str,
    port: int,
    broker_url: str | None,
    database_url: str | None,
) -> tuple[FastAPI, ControlPlaneSettings]:
    """The control plane on the demo's data directory, with a throw-away CA for enrolment QRs."""
    settings = ControlPlaneSettings(
        database_url=database_url
        or f"sqlite+aiosqlite:///{(data_dir / 'control-plane.db').resolve()}",
        broker_url=broker_url,
        host=host,
        port=port,
        identity_dir=data_dir / "control-plane-identity",
    )
    app = create_app(settings)
    app.state.provisioning_settings = ProvisioningSettings(
        demo=True,
        directory=data_dir / "ca",
        public_url=f"http://{host}:{port}",
        device_broker_url=settings.broker.url,
    )
    return app, settings
