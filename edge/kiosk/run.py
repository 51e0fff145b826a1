"""Running the register: ledger, ``pos.db``, replicator, catalog sync and the kiosk in one process.

How it works: :func:`run_register` opens everything as async context managers and runs the
long-lived loops (replicator, catalog sync, the kiosk's uvicorn server) in one TaskGroup, so a
loop that dies takes the register down loudly and the fleet agent restarts it. ``serve_kiosk``
is the piece tests reuse: uvicorn on a loopback port, started and stopped with the context.
Without a configured card terminal the demo starts the terminal simulator on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from edge.agent.session import agent_for_hub
from edge.appliance import VERSION
from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.kiosk import api
from edge.kiosk.app import create_kiosk_app
from edge.ledger import Ledger
from edge.peripherals.hub import PeripheralHub
from edge.peripherals.receipt_adapter import HubReceiptPrinter
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.register_peripherals import open_register_peripherals
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.catalog_sync import CatalogSync
from edge.pos.printer import ReceiptPrinter
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.simulated_cashier import CashierSettings, ring_at_register
from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE, load_store_config
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.settings import EdgeSettings
from edge.stock.on_hand import catalog_gtins

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RegisterOptions:
    """How to run the register; the defaults run the demo store with a simulated terminal."""

    kiosk_host: str = "127.0.0.1"
    kiosk_port: int = 8080
    store_config: Path = DEMO_STORE
    catalog_snapshot: Path = DEMO_CATALOG
    pos_db: Path | None = None  # beside the ledger unless given
    terminal_host: str | None = None  # None: run the simulator on loopback
    terminal_port: int = 0
    enrolled: bool = True
    replicate: bool = True
    catalog_url: str | None = None  # the control plane, for catalog changes while selling
    tenant_id: str | None = None
    catalog_poll: float = 30.0


def kiosk_server(app: FastAPI, *, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app`` that leaves signal handling to the process around it."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


@contextlib.asynccontextmanager
async def serve_kiosk(app: FastAPI, *, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """uvicorn serving ``app`` until the context exits; yields once it accepts connections.

    For tests and tools; the register itself runs the server in its TaskGroup.
    """
    server = kiosk_server(app, host=host, port=port)
    task = asyncio.create_task(server.serve(), name=f"kiosk-http-{port}")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError(f"kiosk server on port {port} stopped during start")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        await task


async def run_register(
    settings: EdgeSettings,
    options: RegisterOptions | None = None,
    *,
    printer: ReceiptPrinter | None = None,
    replication: ReplicationSettings | None = None,
    peripherals: RegisterDevices | None = None,
    cashier: CashierSettings | None = None,
    tls_context: ssl.SSLContext | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the register until cancelled, or until ``stop`` is set (a graceful shutdown).

    ``peripherals`` brings the register's hardware (printer, drawer, scanners, RFID) and the fleet
    agent that reports its health and runs remote commands; ``cashier`` rings sales by itself
    (the demo); ``tls_context`` is the device's mTLS identity once it is enrolled.
    """
    opts = options or RegisterOptions()
    config = load_store_config(opts.store_config)
    catalog = load_snapshot_file(opts.catalog_snapshot)
    pos_db = opts.pos_db or settings.ledger_path.with_name("pos.db")
    async with contextlib.AsyncExitStack() as stack:
        ledger = await stack.enter_async_context(
            Ledger(settings.ledger_path, register_id=settings.register_id)
        )
        hub = None
        if peripherals is not None:
            hub = await stack.enter_async_context(
                open_register_peripherals(
                    peripherals, journal=ledger, data_dir=settings.ledger_path.parent / "devices"
                )
            )
            printer = printer or HubReceiptPrinter(
                hub=hub, register_id=settings.register_id, store_name=config.store_name
            )
        db = await stack.enter_async_context(RegisterDb(pos_db))
        host, port = opts.terminal_host, opts.terminal_port
        if host is None:
            sim = await stack.enter_async_context(PaymentTerminalSimulator())
            host, port = sim.host, sim.port
            log.info("card terminal simulator on %s:%d", host, port)
        register = Register(
            ledger=ledger,
            db=db,
            config=config,
            catalog=catalog,
            terminal=TcpPaymentTerminal(host=host, port=port),
            printer=printer,
        )
        await register.start()
        replicator = None
        if opts.replicate and opts.enrolled:
            replicator = Replicator(
                ledger=ledger,
                device_id=settings.device_id,
                broker=settings.broker,
                settings=replication,
                versions={"app": VERSION},
                tls_context=tls_context,
            )
        app = create_kiosk_app(
            register=register,
            enrolled=opts.enrolled,
            connected=None if replicator is None else replicator.connected,
        )
        async with asyncio.TaskGroup() as group:
            loops: list[asyncio.Task[None]] = []

            def start(loop: Coroutine[object, object, None], name: str) -> None:
                loops.append(group.create_task(loop, name=name))

            if replicator is not None:
                start(replicator.run(), f"replicator-{settings.device_id}")
            if opts.catalog_url and opts.tenant_id:
                sync = CatalogSync(
                    register=register,
                    base_url=opts.catalog_url,
                    tenant_id=opts.tenant_id,
                    interval=opts.catalog_poll,
                )
                start(sync.run(), "catalog-sync")
            if hub is not None:
                start(_hardware_scans(hub, app), "hardware-scans")
                if opts.replicate and opts.enrolled:
                    agent = agent_for_hub(
                        device_id=settings.device_id,
                        broker=settings.broker,
                        hub=hub,
                        journal=ledger,
                        item_gtins=catalog_gtins(register.catalog),
                        app_release=VERSION,
                        tls_context=tls_context,
                    )
                    start(agent.run(), "fleet-agent")
            if cashier is not None:
                start(ring_at_register(register, cashier), "simulated-cashier")
            log.info(
                "register %s: kiosk on http://%s:%d, ledger at seq %d, %d not yet replicated",
                settings.register_id,
                opts.kiosk_host,
                opts.kiosk_port,
                ledger.last_seq,
                ledger.backlog,
            )
            server = kiosk_server(app, host=opts.kiosk_host, port=opts.kiosk_port)
            serving = group.create_task(server.serve(), name="kiosk-http")
            if stop is not None:
                await stop.wait()
                server.should_exit = True  # lets the kiosk's lifespan finish its own loops
                await serving
                for task in loops:
                    task.cancel()  # the replicator and the agent say "offline" on the way out


async def _hardware_scans(hub: PeripheralHub, app: FastAPI) -> None:
    """Scans from the register's own scanners go the same way as the kiosk's wedge input."""
    screen = app.state.screen
    async for scan in hub.scans():
        if screen.register is None or not screen.enrolled:
            continue
        await api.run(screen, screen.register.scan(scan.text, cart_id=None), scanned=scan.text)
