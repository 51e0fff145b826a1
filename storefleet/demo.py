"""``storefleet demo``: a control plane and simulated stores on one machine.

Each store runs the real appliance: its own SQLite ledger and MQTT connections, the register
service with its touchscreen kiosk, simulated peripherals (an ESC/POS printer on raw TCP, an
LLRP RFID reader, a serial scanner on a pty) driven by the real drivers, and the fleet agent.
Store 1's kiosk is left for a person; the other stores have a simulated cashier ringing sales
through the same register API the kiosk calls. Everything lives in one event loop, so Ctrl-C
stops it all and leaves nothing running.

The demo is the one command that needs both sides, so it lives here rather than in
``control_plane`` (which never imports the edge): the cloud's half (the control plane and its
seed) is ``control_plane.demo``; the register's name and the catalog it seeds come from the
store document the kiosks read, so console and kiosk agree. Each register gets a device
identity from the demo's CA at every start (``storefleet.demo_identities``), so its catalog
sync, its log uploads and its journal heads are signed like an enrolled appliance's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog.schemas import CatalogItem
from control_plane.demo import TENANT, demo_admin, demo_control_plane, device_id_for, seed
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from edge.register.demo import demo_register_settings, run_demo_store
from edge.register.settings import RegisterSettings
from mqttlink.tasks import ServiceTasks
from storefleet.demo_identities import issue_demo_identity


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """What the demo runs."""

    stores: int = 3
    rate: float = 1.0
    data_dir: Path = Path(".storefleet/demo")
    host: str = "127.0.0.1"
    port: int = 8080
    kiosk_base_port: int = 8100
    broker_url: str | None = None
    database_url: str | None = None
    peripherals: bool = True


async def seed_demo(engine: AsyncEngine, stores: int) -> None:
    """Seed the control plane with what the demo's kiosks show: register name and catalog."""
    register_name = load_store_config().register_name(
        RegisterSettings.model_fields["register_id"].default
    )
    items = [CatalogItem.model_validate(i) for i in json.loads(DEMO_CATALOG.read_text())["items"]]
    await seed(engine, stores=stores, register_name=register_name, items=items)


async def run_demo(demo: DemoSettings) -> None:
    """Run until Ctrl-C."""
    demo.data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://{demo.host}:{demo.port}"
    app, settings = demo_control_plane(
        data_dir=demo.data_dir,
        host=demo.host,
        port=demo.port,
        broker_url=demo.broker_url,
        database_url=demo.database_url,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=demo.host, port=demo.port, log_level="warning", lifespan="on")
    )
    # Ctrl-C asks every part to stop in order (registers first, so appliances say goodbye
    # while the broker is still there), rather than cancelling servers mid-request.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with ServiceTasks("demo") as tasks:
        serving = tasks.spawn(server.serve(), name="control-plane")
        while not server.started:
            if serving.done():
                return
            await asyncio.sleep(0.05)
        await seed_demo(app.state.engine, demo.stores)
        admin = await demo_admin(app.state.engine)
        for number in range(1, demo.stores + 1):  # each register signs like an appliance
            signer = device_id_for(number)
            await issue_demo_identity(app, device_id=signer, register_dir=demo.data_dir / signer)
        registers = []
        for number in range(1, demo.stores + 1):
            device_id = device_id_for(number)
            register = demo_register_settings(  # edge/register/demo.toml, plus this store's
                device_id=device_id,
                data_dir=demo.data_dir / device_id,
                broker_url=settings.broker.url,
                kiosk_host=demo.host,
                kiosk_port=demo.kiosk_base_port + number,
                control_plane_url=base_url,
                tenant_id=TENANT,
                peripherals=demo.peripherals,
                cashier_rate=0.0 if number == 1 else demo.rate,
                cashier_seed=None if number == 1 else number,
            )
            registers.append(
                tasks.spawn(run_demo_store(register, stop=stop), name=f"register-{device_id}")
            )
        kiosks = "\n".join(
            f"  kiosk    http://{demo.host}:{demo.kiosk_base_port + n}/  store {n}"
            + ("  (yours: sign in as Anna, PIN 1234)" if n == 1 else "  (simulated cashier)")
            for n in range(1, demo.stores + 1)
        )
        print(  # noqa: T201 - the demo talks to a person at a terminal
            f"storefleet demo: {demo.stores} stores, simulated cashiers ringing "
            f"{demo.rate:g} sales/s\n"
            f"  console  {base_url}/\n"
            f"           log in as {admin.email}, password {admin.password}\n"
            "           (new on every run; set up an authenticator app at the first login)\n"
            f"  API      {base_url}/docs\n"
            f"           read-only token: {admin.token}\n"
            f"{kiosks}\n"
            f"  broker   {settings.broker.url}"
            f"{' (embedded)' if settings.embedded_broker else ''}\n"
            "  Ctrl-C stops everything.",
            flush=True,
        )
        await stop.wait()
        print("storefleet demo: stopping…", flush=True)  # noqa: T201
        await asyncio.gather(*registers)
        server.should_exit = True
        await asyncio.wait([serving])  # the control plane's own graceful stop, then leave
