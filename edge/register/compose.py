"""The register composed once: ledger, replication, checkout, kiosk and peripherals from settings.

How it works: :func:`run_register` takes one validated :class:`RegisterSettings` and

1. finds out who it is (:func:`uplink_for`): a fixed device id, the enrolled certificate, or
   nobody yet (first boot: the kiosk shows the enrolment screen);
2. reads its store rules — the configuration the fleet agent applied, else a store file
   (:mod:`edge.register.store_source`; with neither, a register the agent runs waits for its
   first configuration) — and opens the catalog in the data directory — ``catalog.db``,
   read by index, never parsed at start (:mod:`edge.pos.catalog_store`); the first start stores
   it from a snapshot file or the control plane; a store document that is missing once the
   appliance is enrolled and not run by the agent, or a catalog that can be neither read nor
   fetched, is refused (:class:`SettingsRefused`, naming the setting) before anything opens;
3. opens everything as async context managers (ledger, peripherals, ``pos.db``, card terminal)
   and runs the long-lived loops as the register's :class:`~mqttlink.tasks.ServiceTasks` —
   replicator, catalog sync, the fleet agent link, the scanners, the kiosk's uvicorn — so a loop
   that dies is logged by name and takes the register down loudly, and the fleet agent restarts
   it.

``/healthz`` and ``/metrics`` are served beside the kiosk (:mod:`edge.register.health`); the
same snapshot is the heartbeat the agent watches (:mod:`edge.register.agent_link`).

First boot: without an identity the register sells nothing; an :class:`EnrolmentDesk` runs in
the register's tasks. When it enrols and the store document is already there (the demo, a re-imaged
till), replication starts on the new identity and the screen turns to selling, no restart.
Without the store document the register exits with :data:`EXIT_RESTART` and the agent starts it
again enrolled. The demo is this same composition, read from ``edge/register/demo.toml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from edge.agent.commands import CommandRunner
from edge.agent.contract import Hello
from edge.appliance import VERSION
from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR, DeviceAuth, device_auth_at
from edge.enrolment.errors import NotEnrolled
from edge.enrolment.first_boot import EnrolmentResult, load_enrolment, replication_identity
from edge.enrolment.settings import EnrolmentSettings
from edge.kiosk import api
from edge.kiosk.app import create_kiosk_app
from edge.kiosk.enrolment_desk import DeskBusy, EnrolmentDesk
from edge.kiosk.screen import Screen
from edge.kiosk.server import kiosk_server
from edge.peripherals.hub import PeripheralHub
from edge.peripherals.receipt_adapter import HubReceiptPrinter
from edge.peripherals.register_peripherals import open_register_peripherals
from edge.pos.catalog_source import CatalogFormatError
from edge.pos.catalog_store import CatalogStoreError, StoredCatalog, import_snapshot
from edge.pos.catalog_sync import CatalogSync
from edge.pos.loyalty_client import CloudBalances
from edge.pos.printer import ReceiptPrinter, fit_receipts_to_paper
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.simulated_cashier import CashierSettings, ring_at_register
from edge.register.agent_link import AgentLink
from edge.register.applied_devices import register_devices
from edge.register.config_desk import ConfigDesk
from edge.register.health import ObservedLedger, RegisterHealth, serve_health
from edge.register.hub_commands import hub_runner
from edge.register.settings import ENV_PREFIX, RegisterSettings, SettingsRefused
from edge.register.store_source import read_store
from edge.register.structured_log import WHO, Who
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.stock.on_hand import CatalogGtins
from mqttlink.tasks import ServiceTasks
from protocols.broker_url import BrokerAddress

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The register's exit code for "start me again": it enrolled and now needs its store document.
EXIT_RESTART = 75


class RestartNeeded(Exception):  # noqa: N818 - a request to the supervisor, not a failure
    """The register stops so that its supervisor starts it again (exit :data:`EXIT_RESTART`)."""


@dataclass(frozen=True, kw_only=True)
class Uplink:
    """Who this register replicates as, and where: the enrolled identity or fixed settings."""

    device_id: str
    broker: BrokerAddress
    tls_context: ssl.SSLContext | None
    control_plane_url: str | None
    tenant_id: str | None
    auth: httpx.Auth | None  # the device's own assertions on HTTPS calls (none: not issued)


def uplink_for(
    settings: RegisterSettings, *, tls_context: ssl.SSLContext | None = None
) -> Uplink | None:
    """The identity to start with; None when this appliance still has to enrol."""
    if settings.identity_dir is None:
        return Uplink(
            device_id=settings.device_id,
            broker=settings.broker,
            tls_context=tls_context,
            control_plane_url=settings.control_plane_url,
            tenant_id=settings.tenant_id,
            auth=device_auth_at(settings.data_dir / FIXED_IDENTITY_SUBDIR),  # the demo issues one
        )
    enrolment = load_enrolment(settings.identity_dir)
    if enrolment is None:
        return None
    enrolled = replication_identity(settings.identity_dir)
    tenant = enrolment.config.get("tenant_id")
    return Uplink(
        device_id=enrolled.device_id,
        broker=enrolled.broker,
        tls_context=enrolled.tls_context,
        control_plane_url=settings.control_plane_url or enrolment.control_plane_url,
        tenant_id=settings.tenant_id or (str(tenant) if tenant else None),
        auth=DeviceAuth(settings.identity_dir),
    )


def signing_dir(settings: RegisterSettings, up: Uplink) -> Path | None:
    """Where the key that signs journal heads is: the enrolled identity, or the one issued into
    a fixed-id register's data dir (the demo's; the cloud refuses unsigned batches from a
    device that has a certificate); None for a bench register without any."""
    if settings.identity_dir is not None:
        return settings.identity_dir
    return up.auth.identity.directory if isinstance(up.auth, DeviceAuth) else None


async def read_catalog(settings: RegisterSettings, uplink: Uplink | None) -> StoredCatalog | None:
    """The stored catalog (``catalog.db``); stored first from a snapshot if there is none.

    A register that has a catalog starts with it whatever the network does (the cloud is never
    a dependency of a sale) and without parsing it: only a register with no catalog yet reads
    a snapshot — ``catalog.file``, else the control plane's — and stores it, once.
    """
    stored = settings.catalog_db
    if stored.exists():
        try:
            return StoredCatalog(stored)
        except CatalogStoreError as err:
            log.warning("%s; storing the catalog again from its snapshot", err)
            stored.unlink()
    path = settings.catalog_path
    where = f"catalog.file ({ENV_PREFIX}CATALOG__FILE): {path}"
    if path.exists():
        try:
            snapshot = path.read_bytes()
        except OSError as err:
            raise SettingsRefused(f"{where} cannot be read ({err.strerror})") from err
    elif uplink is None:
        return None  # first boot: nothing to sell yet
    else:
        snapshot = await _fetch_catalog(uplink, path)
        where = f"the control plane's catalog ({uplink.control_plane_url})"
    try:
        await asyncio.to_thread(import_snapshot, stored, snapshot)
    except (CatalogFormatError, ValueError) as err:
        raise SettingsRefused(f"{where} is not a catalog snapshot ({err})") from err
    return StoredCatalog(stored)


async def _fetch_catalog(uplink: Uplink, path: Path) -> bytes:
    variable = f"control_plane_url ({ENV_PREFIX}CONTROL_PLANE_URL)"
    if not uplink.control_plane_url or not uplink.tenant_id:
        msg = (
            f"catalog.file ({ENV_PREFIX}CATALOG__FILE): {path} does not exist and there is no"
            f" control plane to fetch it from: set {variable} and tenant_id"
            f" ({ENV_PREFIX}TENANT_ID), or put a catalog snapshot there"
        )
        raise SettingsRefused(msg)
    url = uplink.control_plane_url.rstrip("/")
    try:
        async with _control_plane_client(uplink, timeout=10.0) as client:
            response = await client.get(
                "/api/catalog/snapshot", params={"tenant_id": uplink.tenant_id}
            )
            response.raise_for_status()
    except httpx.HTTPError as err:
        msg = (
            f"{variable}: the control plane at {url} cannot be reached"
            f" ({err or type(err).__name__}) and there is no catalog at {path} yet; set it to the"
            " control plane's URL (or catalog.file to a snapshot) and start again"
        )
        raise SettingsRefused(msg) from err
    log.info("catalog fetched from %s (%d bytes)", url, len(response.content))
    return response.content


def _control_plane_client(uplink: Uplink, *, timeout: float) -> httpx.AsyncClient:
    """HTTPS to the control plane as the device: the pinned root, the device's certificate."""
    if uplink.control_plane_url is None:
        raise RuntimeError("the control plane client needs the control plane's URL")
    verify: ssl.SSLContext | bool = uplink.tls_context or True
    return httpx.AsyncClient(
        base_url=uplink.control_plane_url, timeout=timeout, verify=verify, auth=uplink.auth
    )


async def run_register(
    settings: RegisterSettings,
    *,
    stop: asyncio.Event | None = None,
    printer: ReceiptPrinter | None = None,
    replication: ReplicationSettings | None = None,
    tls_context: ssl.SSLContext | None = None,
    code_settings: EnrolmentSettings | None = None,
) -> None:
    """Run the register until cancelled, or until ``stop`` is set (a graceful shutdown).

    ``printer`` replaces the receipt printer (tests); ``replication`` the replicator's tuning;
    ``tls_context`` is the mTLS identity of a register with a fixed device id (an enrolled one
    brings its own); ``code_settings`` overrides ``settings.enrolment`` for typed codes.
    """
    who = Who(device_id=settings.device_id, register_id=settings.register_id)
    WHO.set(who)
    health = RegisterHealth(register_id=settings.register_id)
    uplink = uplink_for(settings, tls_context=tls_context)
    config = read_store(settings, required=uplink is not None)
    if config is not None and config.log_level is not None:
        logging.getLogger().setLevel(config.log_level)  # the store configuration's log level
    catalog = None
    if config is not None:
        catalog = await _telling_the_agent(settings, health, read_catalog(settings, uplink))
    codes = code_settings or _codes(settings)
    tuning = replication or ReplicationSettings(
        ack_timeout=settings.replication.ack_timeout_s,
        backoff_max=settings.replication.backoff_max_s,
    )
    devices = register_devices(settings)  # the settings', with the configuration's (if any)
    async with contextlib.AsyncExitStack() as stack:
        if catalog is not None:
            stack.callback(catalog.close)
        ledger = await stack.enter_async_context(
            ObservedLedger(
                settings.ledger_path,
                register_id=settings.register_id,
                on_sale=health.sale_committed,
            )
        )
        health.ledger = ledger
        hub: PeripheralHub | None = None
        if devices.simulated or devices != type(devices)():
            hub = await stack.enter_async_context(
                open_register_peripherals(
                    devices, journal=ledger, data_dir=settings.data_dir / "devices"
                )
            )
            health.peripherals = hub.health
        register = None
        if config is not None and catalog is not None:
            if hub is not None and printer is None:
                printer = HubReceiptPrinter(
                    hub=hub, register_id=settings.register_id, store_name=config.store_name
                )
            config = fit_receipts_to_paper(config, printer)  # the paper, not the store, sets width
            db = await stack.enter_async_context(RegisterDb(settings.pos_db))
            register = Register(
                ledger=ledger,
                db=db,
                config=config,
                catalog=catalog,
                terminal=await _terminal(settings, stack, config.card_terminal),
                printer=printer,
            )
            await register.start()
            health.open_sale = register.open_sale  # the update lease a release waits for
            health.started = True
        runner: CommandRunner | None = None
        link: AgentLink | None = None
        # the agent's configuration commands (hold for a restart, reload live keys), then the hub's
        config_desk = ConfigDesk(
            data_dir=settings.data_dir,
            register=lambda: register,
            fit=lambda config: fit_receipts_to_paper(config, printer),
        )
        commands = config_desk.runner(device_id=settings.device_id, hub=lambda: runner)
        async with ServiceTasks(f"register {settings.register_id}") as tasks:

            def start(loop: Coroutine[object, object, None], name: str) -> None:
                tasks.spawn(loop, name=name)

            def connect(up: Uplink) -> None:
                """Replicate as ``up``, answer the agent's commands, then sell."""
                nonlocal runner
                who.device_id = health.device_id = up.device_id
                connected = None
                if settings.replication.enabled:
                    replicator = Replicator(
                        ledger=ledger,
                        device_id=up.device_id,
                        broker=up.broker,
                        settings=tuning,
                        versions={"app": VERSION},
                        tls_context=up.tls_context,
                        identity_dir=signing_dir(settings, up),  # signs each batch head
                        presence=settings.agent_socket is None,  # else the agent's (status)
                    )
                    health.replicator = replicator
                    connected = replicator.connected
                    start(replicator.run(), f"replicator-{up.device_id}")
                if hub is not None:
                    runner = hub_runner(
                        device_id=up.device_id,
                        hub=hub,
                        journal=ledger,
                        item_gtins=None if catalog is None else CatalogGtins(catalog),
                    )
                follow = settings.catalog.sync and up.control_plane_url and up.tenant_id
                if register is not None and follow:
                    start(_catalog_sync(register, up, settings), "catalog-sync")
                if register is not None and up.control_plane_url:
                    # loyalty balances online; offline the register redeems what it last saw
                    cloud = CloudBalances(
                        base_url=up.control_plane_url,
                        auth=up.auth,
                        transport=httpx.AsyncHTTPTransport(verify=up.tls_context or True),
                    )
                    register.loyalty.source = register.loyalty.finder = cloud
                health.enrolled = True
                screen.set_enrolled(True, connected=connected)
                if link is not None:
                    link.poke()

            async def enrolled(result: EnrolmentResult) -> None:
                up = uplink_for(settings)  # read back as a restart would
                if up is None or up.device_id != result.device_id:
                    raise NotEnrolled(str(settings.identity_dir))
                if register is None:
                    log.info("enrolled as %s; restarting to load the store", result.device_id)
                    raise RestartNeeded(result.device_id)
                connect(up)

            desk = None
            if uplink is None and settings.identity_dir is not None:
                desk = EnrolmentDesk(
                    identity_dir=settings.identity_dir, on_enrolled=enrolled, code_settings=codes
                )
                start(_first_boot(desk), "first-boot")
            app = create_kiosk_app(register=register, enrolled=False, first_boot=desk)
            serve_health(app, health)
            screen: Screen = app.state.screen
            if settings.agent_socket is not None:
                link = AgentLink(
                    path=settings.agent_socket,
                    hello=lambda: _hello(settings, health),
                    heartbeat=health.heartbeat,
                    commands=lambda: commands,
                    interval=settings.heartbeat_s,
                )
                start(link.run(), "agent-link")
            if uplink is not None:
                connect(uplink)
            if hub is not None:
                start(_hardware_scans(hub, app), "hardware-scans")
            if register is not None and settings.simulate.cashier_rate > 0:
                cashier = CashierSettings(
                    rate=settings.simulate.cashier_rate, seed=settings.simulate.cashier_seed
                )
                start(ring_at_register(register, cashier), "simulated-cashier")
            log.info(
                "register %s (%s): kiosk on http://%s:%d, ledger at seq %d, %d not yet replicated",
                settings.register_id,
                "first boot: not enrolled" if uplink is None else uplink.device_id,
                settings.kiosk.host,
                settings.kiosk.port,
                ledger.last_seq,
                ledger.backlog,
            )
            server = kiosk_server(app, host=settings.kiosk.host, port=settings.kiosk.port)
            serving = tasks.spawn(server.serve(), name="kiosk-http")
            start(_when_serving(server, serving, health, link), "kiosk-ready")
            if stop is not None:
                await stop.wait()
                server.should_exit = True  # lets the kiosk's lifespan finish its own loops
            await serving  # the register lives as long as its kiosk serves
            # leaving cancels the other loops: the replicator says "offline" on the way out


def _hello(settings: RegisterSettings, health: RegisterHealth) -> Hello:
    return Hello(
        pid=os.getpid(),
        release=VERSION,
        device_id=health.device_id,
        register_id=settings.register_id,
    )


async def _telling_the_agent(
    settings: RegisterSettings, health: RegisterHealth, work: Coroutine[object, object, T]
) -> T:
    """``work`` with the fleet agent told the register is alive and starting (not ready).

    Storing a first catalog takes seconds (minutes on a busy machine): hello and heartbeats go
    out meanwhile, so the agent's start timeout does not take a slow first start for a hung one
    and kill it, to start it storing the same catalog again.
    """
    if settings.agent_socket is None or settings.catalog_db.exists():
        return await work
    link = AgentLink(
        path=settings.agent_socket,
        hello=lambda: _hello(settings, health),
        heartbeat=health.heartbeat,
        commands=lambda: None,
        interval=settings.heartbeat_s,
    )
    async with ServiceTasks("register start") as tasks:
        tasks.spawn(link.run(), name="agent-link-while-starting")
        return await work


def _codes(settings: RegisterSettings) -> EnrolmentSettings | None:
    """What a typed code needs, from the settings; None: the QR scan only."""
    if settings.enrolment is None or settings.identity_dir is None:
        return None
    return EnrolmentSettings(
        control_plane_url=settings.enrolment.control_plane_url,
        ca_fingerprint=settings.enrolment.ca_fingerprint,
        identity_dir=settings.identity_dir,
    )


async def _terminal(
    settings: RegisterSettings,
    stack: contextlib.AsyncExitStack,
    configured: tuple[str, int] | None = None,
) -> TcpPaymentTerminal | None:
    """The configured card terminal, the simulator on loopback, or none (cards refused).

    ``configured`` is the store configuration's terminal: when it names one, it wins.
    """
    if configured is not None:
        return TcpPaymentTerminal(host=configured[0], port=configured[1])
    if settings.terminal.host is not None:
        return TcpPaymentTerminal(host=settings.terminal.host, port=settings.terminal.port)
    if settings.simulate.card_terminal:
        sim = await stack.enter_async_context(PaymentTerminalSimulator())
        log.info("card terminal simulator on %s:%d", sim.host, sim.port)
        return TcpPaymentTerminal(host=sim.host, port=sim.port)
    log.info("no card terminal configured: card payments are refused")
    return None


async def _catalog_sync(register: Register, up: Uplink, settings: RegisterSettings) -> None:
    if up.control_plane_url is None:
        raise RuntimeError("catalog sync needs the control plane's URL")
    if up.tenant_id is None:
        raise RuntimeError("catalog sync needs the enrolled tenant")
    transport = httpx.AsyncHTTPTransport(verify=up.tls_context or True)
    sync = CatalogSync(
        register=register,
        base_url=up.control_plane_url,
        tenant_id=up.tenant_id,
        auth=up.auth,
        interval=register.config.catalog_sync_s or settings.catalog.poll_s,
        transport=transport,
    )
    await sync.run()


async def _when_serving(
    server: uvicorn.Server,
    serving: asyncio.Task[None],
    health: RegisterHealth,
    link: AgentLink | None,
) -> None:
    """Mark the register as serving once uvicorn accepts connections (it has no event for it)."""
    while not server.started:
        if serving.done():
            return
        await asyncio.sleep(0.01)
    health.serving = True
    log.info("register ready: the kiosk accepts connections")
    if link is not None:
        link.poke()


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
