"""The cloud's half of ``storefleet demo``: the demo tenant's control plane, its seed and its
administrator.

``storefleet.demo`` composes this with the appliance's registers; this half imports no ``edge``
module, so what the console shows (the register's name, the catalog) is handed in by the caller,
which reads it from the same store document the kiosks read. There is no default password: each
run gives the demo's platform admin a new random one and an API token, which the demo prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.app import create_app
from control_plane.catalog import service as catalog
from control_plane.catalog.schemas import CatalogItem
from control_plane.customers.settings import CustomerSettings, load_customer_settings
from control_plane.devices import service as registry
from control_plane.operators import service as operators
from control_plane.operators.errors import OperatorNotFound
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from control_plane.operators.settings import OperatorSettings
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.settings import ControlPlaneSettings

TENANT = "demo-retail"
STORE_NAMES = ("Bahnhofstrasse", "Harbour Mall", "Station Kiosk", "Old Town", "Airport", "Campus")


ADMIN_EMAIL = "admin@demo.storefleet.example"
#: The demo's customer master key (issue 14): a development key, public in this file, so the
#: demo keeps customers without setup; a real control plane refuses to keep any without its own.
DEMO_CUSTOMERS_MASTER_KEY = "storefleet demo only: customer master key, never in production"


@dataclass(frozen=True, slots=True)
class DemoAdmin:
    """The demo's platform admin as the demo prints it: login and a read-only API token."""

    email: str
    password: str
    token: str


async def demo_admin(engine: AsyncEngine) -> DemoAdmin:
    """Create the demo's platform admin (or give it a new random password on a later run) and
    mint a read-only API token for scripts; both are printed, never stored in clear."""
    settings = OperatorSettings()
    passwords = Passwords(settings)
    now = wall_clock_ms()
    try:
        owner = await operators.find_operator(engine, email=ADMIN_EMAIL)
    except OperatorNotFound:
        owner, password = await operators.create_operator(
            engine,
            passwords=passwords,
            by=None,
            email=ADMIN_EMAIL,
            role=Role.PLATFORM_ADMIN,
            tenant_id=None,
            display_name="Demo admin",
            now=now,
            client="demo",
        )
    else:
        password = await operators.reset_password(
            engine, passwords=passwords, email=ADMIN_EMAIL, now=now, client="demo"
        )
    _, token = await operators.create_token(
        engine,
        settings=settings,
        owner=owner,
        actor=operators.cli_actor(),
        name="demo",
        scopes=["read"],
        now=now,
        client="demo",
    )
    return DemoAdmin(email=ADMIN_EMAIL, password=password, token=token)


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
    customers = load_customer_settings()
    if customers.master_key is None:
        customers = CustomerSettings(master_key=DEMO_CUSTOMERS_MASTER_KEY)
    app.state.customer_settings = customers
    app.state.provisioning_settings = ProvisioningSettings(
        demo=True,
        directory=data_dir / "ca",
        public_url=f"http://{host}:{port}",
        device_broker_url=settings.broker.url,
    )
    return app, settings
