"""Running the register: ledger, ``pos.db``, replicator, catalog sync and the kiosk in one process.

How it works: :func:`run_register` opens everything as async context managers and runs the
long-lived loops (replicator, catalog sync, the kiosk's uvicorn server) in one TaskGroup, so a
loop that dies takes the register down loudly and the fleet agent restarts it. ``serve_kiosk``
is the piece tests reuse: uvicorn on a loopback port, started and stopped with the context.
Without a configured card terminal the demo starts the terminal simulator on loopback.

Identity: with ``settings.identity_dir`` the appliance is who its enrolled certificate says
(device id, broker, mTLS). Without one yet, the kiosk shows the first-boot screen and an
:class:`EnrolmentDesk` runs in the TaskGroup; when it enrols, the replicator and the fleet agent
start in the same TaskGroup on the new identity and the screen turns to selling, no restart.
Without ``identity_dir`` (bench, demo) the fixed ``device_id`` and ``broker_url`` are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from edge.agent.session import agent_for_hub
from edge.appliance import VERSION
from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.enrolment.errors import NotEnrolled
from edge.enrolment.first_boot import EnrolmentResult, load_enrolment, replication_identity
from edge.enrolment.settings import EnrolmentSettings
from edge.kiosk import api
from edge.kiosk.app import create_kiosk_app
from edge.kiosk.enrolment_desk import DeskBusy, EnrolmentDesk
from edge.kiosk.screen import Screen
from edge.ledger import Ledger
from edge.peripherals.hub import PeripheralHub
from edge.peripherals.receipt_adapter import HubReceiptPrinter
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.register_peripherals import open_register_peripherals
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.catalog_sync import CatalogSync
from edge.pos.printer import ReceiptPrinter, fit_receipts_to_paper
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.simulated_cashier import CashierSettings, ring_at_register
from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE, load_store_config
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.settings import EdgeSettings
from edge.stock.on_hand import catalog_gtins
from protocols.broker_url import BrokerAddress

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


@dataclass(frozen=True, kw_only=True)
class Uplink:
    """Who this register replicates as, and where: the enrolled identity or fixed settings."""

    device_id: str
    broker: BrokerAddress
    tls_context: ssl.SSLContext | None


def uplink_for(settings: EdgeSettings, *, tls_context: ssl.SSLContext | None) -> Uplink | None:
    """The identity to start with; None when this appliance still has to enrol."""
    if settings.identity_dir is None:
        return Uplink(device_id=settings.device_id, broker=settings.broker, tls_context=tls_context)
    if load_enrolment(settings.identity_dir) is None:
        return None
    enrolled = replication_identity(settings.identity_dir)
    return Uplink(
        device_id=enrolled.device_id, broker=enrolled.broker, tls_context=enrolled.tls_context
    )


class KioskServer(uvicorn.Server):
    """uvicorn that leaves signal handling to the process around it.

    uvicorn's own handlers would make Ctrl-C or SIGTERM stop only the kiosk; the register's
    TaskGroup (and the fleet agent above it) must see them and close everything in order.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        """Install no handlers: the signals stay with whoever runs the register."""
        yield


def kiosk_server(app: FastAPI, *, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app`` that leaves signal handling to the process around it."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    return KioskServer(config)


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
    code_settings: EnrolmentSettings | None = None,
) -> None:
    """Run the register until cancelled, or until ``stop`` is set (a graceful shutdown).

    ``peripherals`` brings the register's hardware (printer, drawer, scanners, RFID) and the fleet
    agent that reports its health and runs remote commands; ``cashier`` rings sales by itself
    (the demo); ``tls_context`` is the mTLS identity of an appliance with a fixed device id (with
    ``settings.identity_dir`` the enrolled identity brings its own); ``code_settings`` lets the
    first-boot screen take a typed enrolment code.
    """
    opts = options or RegisterOptions()
    uplink = uplink_for(settings, tls_context=tls_context) if opts.enrolled else None
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
        config = fit_receipts_to_paper(config, printer)  # the paper, not the store, sets width
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
        async with asyncio.TaskGroup() as group:
            loops: list[asyncio.Task[None]] = []

            def start(loop: Coroutine[object, object, None], name: str) -> None:
                loops.append(group.create_task(loop, name=name))

            def connect(up: Uplink) -> None:
                """Replicate and run the fleet agent as ``up``, then sell (at start or enrolled)."""
                connected = None
                if opts.replicate:
                    replicator = Replicator(
                        ledger=ledger,
                        device_id=up.device_id,
                        broker=up.broker,
                        settings=replication,
                        versions={"app": VERSION},
                        tls_context=up.tls_context,
                    )
                    connected = replicator.connected
                    start(replicator.run(), f"replicator-{up.device_id}")
                if opts.replicate and hub is not None:
                    agent = agent_for_hub(
                        device_id=up.device_id,
                        broker=up.broker,
                        hub=hub,
                        journal=ledger,
                        item_gtins=catalog_gtins(register.catalog),
                        app_release=VERSION,
                        tls_context=up.tls_context,
                    )
                    start(agent.run(), "fleet-agent")
                screen.set_enrolled(True, connected=connected)

            async def enrolled(result: EnrolmentResult) -> None:
                up = uplink_for(settings, tls_context=None)  # read back as a restart would
                if up is None or up.device_id != result.device_id:
                    raise NotEnrolled(str(settings.identity_dir))
                connect(up)

            desk = None
            if uplink is None and settings.identity_dir is not None:
                desk = EnrolmentDesk(
                    identity_dir=settings.identity_dir,
                    on_enrolled=enrolled,
                    code_settings=code_settings,
                )
                start(_first_boot(desk), "first-boot")
            app = create_kiosk_app(register=register, enrolled=False, first_boot=desk)
            screen: Screen = app.state.screen
            if uplink is not None:
                connect(uplink)
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
            if cashier is not None:
                start(ring_at_register(register, cashier), "simulated-cashier")
            log.info(
                "register %s (%s): kiosk on http://%s:%d, ledger at seq %d, %d not yet replicated",
                settings.register_id,
                "first boot: not enrolled" if uplink is None else uplink.device_id,
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


async def _first_boot(desk: EnrolmentDesk) -> None:
    await desk.run()


async def _hardware_scans(hub: PeripheralHub, app: FastAPI) -> None:
    """Scans from the register's own scanners go the same way as the kiosk's wedge input.

    Before enrolment that is the first-boot desk: a 2D scanner reads the enrolment QR.
    """
    screen: Screen = app.state.screen
    async for scan in hub.scans():
        if not screen.enrolled and screen.first_boot is not None:
            try:
                screen.first_boot.submit(scan.text)
            except DeskBusy as err:
                log.info("scan ignored on the first-boot screen: %s", err)
            continue
        if screen.register is None or not screen.enrolled:
            continue
        await api.run(screen, screen.register.scan(scan.text, cart_id=None), scanned=scan.text)
