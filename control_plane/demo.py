"""``storefleet demo``: a control plane and simulated store appliances on one machine.

Each appliance runs the real edge code (its own SQLite ledger and its own MQTT connection); only
the cashier is simulated. Everything lives in one event loop, so Ctrl-C stops it all and leaves
nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.app import create_app
from control_plane.devices import service as registry
from control_plane.settings import ControlPlaneSettings
from edge.appliance import run_appliance
from edge.settings import EdgeSettings
from edge.simulated_register import RingSettings

log = logging.getLogger(__name__)

TENANT = "demo-retail"
STORE_NAMES = ("Main Street", "Harbour Mall", "Station Kiosk", "Old Town", "Airport", "Campus")


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """What the demo runs."""

    stores: int = 3
    rate: float = 1.0
    data_dir: Path = Path(".storefleet/demo")
    host: str = "127.0.0.1"
    port: int = 8080
    broker_url: str | None = None
    database_url: str | None = None


def device_id_for(store: int) -> str:
    """The simulated appliance at register 1 of store ``store``."""
    return f"demo-s{store:02d}-r1"


async def seed(engine: AsyncEngine, stores: int) -> None:
    """Create the demo tenant, its stores and one register each; idempotent across runs."""
    with contextlib.suppress(registry.AlreadyExists):
        await registry.create_tenant(engine, tenant_id=TENANT, name="Demo Retail", currency="EUR")
    for number in range(1, stores + 1):
        store_id = f"demo-s{number:02d}"
        name = STORE_NAMES[(number - 1) % len(STORE_NAMES)]
        try:
            await registry.create_store(engine, store_id=store_id, tenant_id=TENANT, name=name)
            await registry.register_device(
                engine,
                device_id=device_id_for(number),
                store_id=store_id,
                register_name="Register 1",
            )
        except registry.AlreadyExists:
            pass


async def run_demo(demo: DemoSettings) -> None:
    """Run until Ctrl-C."""
    demo.data_dir.mkdir(parents=True, exist_ok=True)
    settings = ControlPlaneSettings(
        database_url=demo.database_url
        or f"sqlite+aiosqlite:///{(demo.data_dir / 'control-plane.db').resolve()}",
        broker_url=demo.broker_url,
        host=demo.host,
        port=demo.port,
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host=demo.host, port=demo.port, log_level="warning", lifespan="on")
    )
    async with asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(server.serve(), name="control-plane")
        while not server.started:
            if serving.done():
                return
            await asyncio.sleep(0.05)
        await seed(app.state.engine, demo.stores)
        appliances = [
            tasks.create_task(
                run_appliance(
                    EdgeSettings(
                        device_id=device_id_for(number),
                        ledger_path=demo.data_dir / f"{device_id_for(number)}.db",
                        broker_url=settings.broker.url,
                    ),
                    ring=RingSettings(rate=demo.rate),
                ),
                name=f"appliance-{number}",
            )
            for number in range(1, demo.stores + 1)
        ]
        print(  # noqa: T201 - the demo talks to a person at a terminal
            f"storefleet demo: {demo.stores} stores ringing {demo.rate:g} sales/s each\n"
            f"  console  http://{demo.host}:{demo.port}/\n"
            f"  API      http://{demo.host}:{demo.port}/docs\n"
            f"  broker   {settings.broker.url}"
            f"{' (embedded)' if settings.embedded_broker else ''}\n"
            "  Ctrl-C stops everything.",
            flush=True,
        )
        await serving
        for task in appliances:
            task.cancel()
