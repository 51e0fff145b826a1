"""The fleet agent process: identity, the MQTT session, and supervision of the register.

How it works: :func:`run_agent` runs, as the agent's :class:`~mqttlink.tasks.ServiceTasks`
(named tasks: one that dies is logged by name and stops the agent),

* ``register-link`` — the local socket the register reports to (:mod:`edge.agent.register_link`);
* ``supervisor`` — the register as a child process, restarted with backoff, crash loops called
  (:mod:`edge.agent.supervisor`);
* ``fleet-session`` — once the appliance has an identity (at once for a fixed device id; after
  first-boot enrolment for an enrolling one, which the register's first-boot screen performs
  into the shared identity directory), the MQTT session, with the agent's own certificate
  (CN ``<id>.agent``), for ``status`` (online, and offline as
  its last will: the appliance's presence is the agent's), ``state``, ``events`` and ``cmd``;
* ``metrics`` — the agent's own Prometheus counters on ``metrics_host:metrics_port``
  (:mod:`edge.agent.metrics_http`), served whether or not the register runs;
* ``renewal`` — the certificates renewed before they expire, then the session reconnects with
  them; an appliance enrolled before the agent had a certificate of its own asks at once.
* ``releases`` — the retained ``release`` desire carried out into the inactive app slot, the
  register restarted from it and watched through a health window, committed or reverted
  (:mod:`edge.agent.releases`); a slot left on trial by a stopped agent is reverted before the
  register first starts.
* ``os-update`` — on the appliance image, the OS slot that booted and how its last update ended
  (committed, or reverted by the boot loader: a failure), in the state and as ``os.update``
  events (:mod:`edge.agent.os_update`).

Commands are the agent's own (:mod:`edge.agent.own_commands`) or passed to the register. None of
this imports the register, the ledger, the kiosk or the peripherals: the agent must keep running
— and answering — when the register will not start at all, and it is what rolls a bad release
back, so it is small and changes rarely (ARCHITECTURE.md, "Owners"). Small in memory too (goal:
40 MB): what only a certificate renewal or a log upload needs (``cryptography`` to sign,
``httpx`` to send, ~15 MB together) is imported when first used, not at start; the identity is
read with ``json`` and ``ssl`` alone (:mod:`edge.enrolment.stored`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.agent.commands import CommandRefused, CommandRunner
from edge.agent.configuration.applier import ConfigApplier
from edge.agent.configuration.local_commands import LOCAL_ONLY
from edge.agent.configuration.register_control import LinkedRegister
from edge.agent.events import EventOutbox
from edge.agent.log_upload import LogTail, upload_logs
from edge.agent.metrics_http import serve_metrics
from edge.agent.notify import Notifier, child_environment
from edge.agent.os_install import OsInstaller
from edge.agent.os_update import OsUpdateReporter
from edge.agent.own_commands import AGENT_VERSION, own_handlers
from edge.agent.presence import Presence
from edge.agent.register_link import RegisterLink
from edge.agent.releases.manager import ReleaseManager
from edge.agent.session import AgentSettings, FleetAgent
from edge.agent.settings import FleetAgentSettings
from edge.agent.state import StatePublisher
from edge.agent.supervisor import Supervisor, SupervisorSettings
from edge.enrolment.stored import (
    agent_tls_context,
    has_agent_certificate,
    load_enrolment,
    mqtt_tls_context,
    pinned_context,
)
from protocols.broker_url import BrokerAddress, parse_broker_url
from protocols.messages import Command, CommandResult

if TYPE_CHECKING:
    import httpx
from mqttlink.tasks import ServiceTasks

log = logging.getLogger(__name__)

IDENTITY_POLL_S = 1.0
#: How soon an appliance enrolled before agents had their own certificate asks again for it.
AGENT_CERTIFICATE_RETRY_S = 60.0


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who the appliance is and how it reaches the cloud."""

    device_id: str
    broker: BrokerAddress
    tls_context: ssl.SSLContext | None
    control_plane_url: str | None
    verify: ssl.SSLContext | bool
    identity_dir: Path | None  # signs HTTPS calls as the device (enrolled appliances)


def identity_now(settings: FleetAgentSettings, *, fallback: bool = False) -> Identity | None:
    """The identity as of now; None while an enrolling appliance has not enrolled, or has no
    agent certificate yet (enrolled before there were two: `_renewal` asks for it at once).

    The agent's broker session presents its own certificate (CN `<id>.agent`), never the
    register's: where the broker binds client ids to CNs the two sessions would knock each
    other off, and the register's certificate is granted none of the agent's channels.
    `fallback` (the control plane answered a renewal without an agent certificate: it is
    older than them, and so is its broker's access list) uses the device certificate, as
    before there were two.
    """
    if settings.identity_dir is None:
        return Identity(
            device_id=settings.device_id,
            broker=settings.broker,
            tls_context=None,
            control_plane_url=settings.control_plane_url,
            verify=True,
            identity_dir=None,
        )
    enrolment = load_enrolment(settings.identity_dir)
    if enrolment is None:
        return None
    if has_agent_certificate(settings.identity_dir):
        tls_context = agent_tls_context(settings.identity_dir)
    elif fallback:
        tls_context = mqtt_tls_context(settings.identity_dir)
    else:
        return None
    return Identity(
        device_id=enrolment.device_id,
        broker=parse_broker_url(enrolment.broker_url),
        tls_context=tls_context,
        control_plane_url=settings.control_plane_url or enrolment.control_plane_url,
        verify=pinned_context(settings.identity_dir),
        identity_dir=settings.identity_dir,
    )


def active_slot(settings: FleetAgentSettings) -> Path | None:
    """The active app slot (``<app_dir>/current`` resolved), or None: the installed package."""
    current = settings.apps / "current"
    return current.resolve() if current.exists() else None


def register_argv(settings: FleetAgentSettings) -> list[str]:
    """How the register is started: the setting, else the active slot's (or this) Python."""
    if settings.register_argv:
        return list(settings.register_argv)
    slot = active_slot(settings)
    python = slot / "bin" / "python" if slot is not None else None
    interpreter = str(python) if python is not None and python.exists() else sys.executable
    return [interpreter, "-m", "edge.cli", "register"]


def register_environment(
    settings: FleetAgentSettings, environ: Mapping[str, str]
) -> dict[str, str]:
    """The register's environment: the agent's, minus its own settings, plus who and where."""
    # only the agent speaks to systemd: the register does not get its notify socket
    env = {
        k: v for k, v in child_environment(environ).items() if not k.startswith("STOREFLEET_AGENT_")
    }
    env["STOREFLEET_EDGE_DATA_DIR"] = str(settings.data_dir)
    env["STOREFLEET_EDGE_AGENT_SOCKET"] = str(settings.socket)
    if settings.identity_dir is not None:
        env["STOREFLEET_EDGE_IDENTITY_DIR"] = str(settings.identity_dir)
        env.pop("STOREFLEET_EDGE_DEVICE_ID", None)
    else:
        env["STOREFLEET_EDGE_DEVICE_ID"] = settings.device_id
        env["STOREFLEET_EDGE_BROKER_URL"] = settings.broker_url
        env.pop("STOREFLEET_EDGE_IDENTITY_DIR", None)
    if settings.control_plane_url:
        env["STOREFLEET_EDGE_CONTROL_PLANE_URL"] = settings.control_plane_url
    if settings.register_settings is not None:
        env["STOREFLEET_EDGE_SETTINGS_FILE"] = str(settings.register_settings)
    env.setdefault("PYTHONUNBUFFERED", "1")  # its log file is read while it runs
    # python-escpos parses its 0.5 s printer database at every import unless it may keep the
    # parsed copy somewhere that lasts (by default a new temporary directory each time)
    env.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(settings.data_dir / "cache"))
    return env


class FleetAgentProcess:
    """The parts of one agent process, wired; :meth:`run` runs them."""

    def __init__(
        self,
        settings: FleetAgentSettings,
        *,
        environ: Mapping[str, str] | None = None,
        supervise: bool = True,
    ) -> None:
        self.settings = settings
        self.supervise = supervise  # False: the register runs elsewhere (the demo, in-process)
        self.link = RegisterLink(path=settings.socket)
        self.outbox = EventOutbox(device_id="")  # named once the identity is known
        self.identity: Identity | None = None
        #: The control plane renewed without an agent certificate (it is older than them): the
        #: agent's session then presents the device certificate, as before there were two.
        self.agent_certificate_refused = False
        self.session: FleetAgent | None = None
        self.started_at = time.monotonic()
        self.supervisor = Supervisor(
            argv=register_argv(settings),
            env=register_environment(settings, os.environ if environ is None else environ),
            log_path=settings.logs_dir / "register.log",
            link=self.link,
            settings=SupervisorSettings(
                heartbeat_timeout_s=settings.heartbeat_timeout_s,
                start_timeout_s=settings.start_timeout_s,
                stop_timeout_s=settings.stop_timeout_s,
                backoff_initial_s=settings.backoff_initial_s,
                backoff_max_s=settings.backoff_max_s,
                crash_loop_after=settings.crash_loop_after,
                stable_after_s=settings.stable_after_s,
                log_max_bytes=settings.log_max_bytes,
            ),
            emit=self.outbox.emit,
            on_change=self._poke,
            cwd=settings.data_dir,
        )
        self._state: StatePublisher | None = None
        self.config = ConfigApplier(  # the store configuration (edge.agent.configuration)
            data_dir=settings.data_dir,
            register=LinkedRegister(
                link=self.link, supervisor=self.supervisor if supervise else None
            ),
            emit=self.outbox.emit,
            on_change=self._config_applied,
        )
        self.notifier = Notifier.from_environment(os.environ if environ is None else environ)
        self.releases = ReleaseManager(  # app releases into A/B slots (edge.agent.releases)
            settings=settings,
            supervisor=self.supervisor,
            link=self.link,
            emit=self.outbox.emit,
            http=self._http,
            image_version=AGENT_VERSION,
            base_env=self.supervisor.env,
            on_change=self._release_changed,
        )
        self.os_update = OsUpdateReporter(  # the OS slot and its updates (edge.agent.os_update)
            boot_state=settings.os_boot_state,
            data_dir=settings.data_dir,
            emit=self.outbox.emit,
            on_change=self._poke,
        )

    async def run(self) -> None:
        """Until cancelled."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        (self.settings.data_dir / "cache").mkdir(exist_ok=True)
        log.info(
            "fleet agent %s: data %s, register %s",
            AGENT_VERSION,
            self.settings.data_dir,
            " ".join(self.supervisor.argv),
        )
        async with ServiceTasks("fleet agent") as tasks:
            tasks.spawn(self.link.serve(), name="register-link")
            tasks.spawn(self._systemd(), name="systemd-notify")
            if self.settings.metrics_port:
                metrics = serve_metrics(
                    host=self.settings.metrics_host, port=self.settings.metrics_port
                )
                tasks.spawn(metrics, name="metrics")
            if self.supervise:
                tasks.spawn(self.supervisor.run(), name="supervisor")
            tasks.spawn(self._fleet_session(), name="fleet-session")
            tasks.spawn(self.config.run(), name="configuration")
            if self.supervise:
                tasks.spawn(self.releases.run(), name="releases")
            tasks.spawn(self._poke_on_link_change(), name="link-watch")
            tasks.spawn(self.os_update.run(), name="os-update")
            if self.settings.identity_dir is not None:
                tasks.spawn(self._renewal(), name="renewal")
            await asyncio.Event().wait()  # until cancelled: leaving stops every task

    # -- the MQTT session -----------------------------------------------------------------------

    async def _fleet_session(self) -> None:
        # the identity appears as files the register's first-boot screen writes: look for them
        while (  # noqa: ASYNC110
            identity := identity_now(self.settings, fallback=self.agent_certificate_refused)
        ) is None:
            await asyncio.sleep(IDENTITY_POLL_S)
        self.identity = identity
        self.outbox.device_id = self.config.device_id = identity.device_id
        log.info("fleet agent is %s on %s", identity.device_id, identity.broker.url)
        session_settings = AgentSettings(state_interval_s=self.settings.state_interval_s)
        self._state = StatePublisher(
            device_id=identity.device_id,
            health=self.health,
            app_release=self.releases.running_version,
            slot=self.releases.slot,
            interval_s=session_settings.state_interval_s,
            check_s=session_settings.state_check_s,
            config_version=self.config.version,
        )
        self._state.config_hashes = self.config.hashes
        runner = CommandRunner(
            device_id=identity.device_id,
            handlers=own_handlers(
                supervisor=self.supervisor,
                link=self.link,
                upload=self._upload,
                upload_max_bytes=self.settings.upload_max_bytes,
                slot=self._slot,
                os_installer=OsInstaller(
                    data_dir=self.settings.data_dir, boot_state=self.settings.os_boot_state
                ),
            ),
            forward=self._forward,
            on_done=self._state.poke,
        )
        self.session = FleetAgent(
            device_id=identity.device_id,
            broker=identity.broker,
            commands=runner,
            state=self._state,
            tls_context=identity.tls_context,
            settings=session_settings,
            events=self.outbox,
            on_config=self.config.receive,
            on_release=self.releases.receive if self.supervise else None,
            presence=Presence(device_id=identity.device_id, versions=self._versions),
        )
        await self.session.run()

    def _versions(self) -> dict[str, str]:
        """What ``status`` reports: the agent's version, and the register's once it said hello."""
        hello = self.link.hello
        app = {"app": hello.release} if hello is not None and hello.release else {}
        return {"agent": AGENT_VERSION} | app

    async def _systemd(self) -> None:
        """READY=1 once the register's socket listens (not waiting for the broker: an offline
        store still sells), then the watchdog from this loop; STOPPING=1 on the way out."""
        await self.link.listening.wait()
        self.notifier.ready(status="supervising the register")
        try:
            await self.notifier.run_watchdog()
            await asyncio.Event().wait()  # unwatched: nothing more to say until we stop
        finally:
            self.notifier.stopping(status="stopping the register")

    async def _forward(self, command: Command) -> CommandResult:
        if command.name in LOCAL_ONLY:  # the agent's own questions to the register, not remote
            raise CommandRefused(f"{command.name} is sent by the agent only")
        return await self.link.call(command, timeout=self.settings.command_timeout_s)

    async def _upload(self, tail: LogTail) -> dict[str, Any]:
        identity = self.identity
        if identity is None or not identity.control_plane_url:
            raise CommandRefused(
                "no control plane to upload to: set STOREFLEET_AGENT_CONTROL_PLANE_URL"
            )
        auth, verify = self._http()  # imports cryptography when first used (module docstring)
        return await upload_logs(
            control_plane_url=identity.control_plane_url,
            device_id=identity.device_id,
            tail=tail,
            verify=verify,
            auth=auth,
        )

    def health(self) -> dict[str, dict[str, Any]]:
        """The ``state`` peripherals: the register's own, and the register itself (``register``)."""
        beat = self.link.heartbeat
        out = {name: dict(h) for name, h in (beat.peripherals if beat else {}).items()}
        status = self.supervisor.status
        error = None
        if status.crash_loop:
            error = f"crash loop: {status.failures} failed starts in a row, last {status.last_exit}"
        elif status.last_exit and not self.link.ready:
            error = f"not running: last {status.last_exit}"
        out["register"] = {
            "device": "register",
            "kind": "app",
            "connected": self.link.ready,
            "error": error,
            "last_seen": None if beat is None else beat.ts / 1000,
            "detail": {
                "phase": status.phase.value if self.supervise else self._unsupervised_phase(),
                "pid": status.pid or 0,
                "crash_loop": status.crash_loop,
                "last_exit": status.last_exit[:200],
            },
            "counters": {"starts": status.starts, "failures": status.failures},
        }
        if self.supervise:
            out["release"] = self.releases.health()
        if (os_slot := self.os_update.health()) is not None:
            out["os"] = os_slot
        return out

    def _unsupervised_phase(self) -> str:
        """The register's phase when another runs it (the demo): from the socket alone."""
        if self.link.ready:
            return "ready"
        return "running" if self.link.connected else "stopped"

    def _slot(self) -> str:
        slot = active_slot(self.settings)
        return "" if slot is None else slot.name[:16]

    def _release_changed(self) -> None:
        """A release moved (a state, a switch, a lease): the state reports it at once."""
        if self._state is not None:
            self._state.app_release = self.releases.running_version
            self._state.slot = self.releases.slot
            self._state.poke()

    def _http(self) -> tuple[httpx.Auth | None, ssl.SSLContext | bool]:
        """How the agent proves who it is over HTTPS (device assertion) and whom it trusts.

        An enrolled appliance trusts only its pinned root. A fixed device id signs with the
        identity issued into its data directory (the demo's) and, when that identity holds the
        fleet's root, trusts only it too: a control plane serving HTTPS under the fleet CA is
        reached, one under any other certificate is refused like an enrolled appliance would.
        """
        # imported when first used: signing needs cryptography (~9 MB the agent does not
        # carry between uploads; see the module docstring)
        from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR, DeviceAuth, device_auth_at
        from edge.enrolment.stored import CA_FILE

        identity = self.identity
        if identity is not None and identity.identity_dir is not None:
            return DeviceAuth(identity.identity_dir), identity.verify
        fixed = self.settings.data_dir / FIXED_IDENTITY_SUBDIR
        if (fixed / CA_FILE).exists():
            return device_auth_at(fixed), pinned_context(fixed)
        return device_auth_at(fixed), True if identity is None else identity.verify

    def _config_applied(self) -> None:
        """A configuration version was applied: the state reports it at once."""
        if self._state is not None:
            self._state.config_version = self.config.version
            self._state.config_hashes = self.config.hashes
            self._state.poke()

    def _poke(self) -> None:
        if self._state is not None:
            self._state.poke()
        status = self.supervisor.status
        loop = ", crash loop" if status.crash_loop else ""
        self.notifier.status(f"register {status.phase.value}{loop} (starts {status.starts})")

    async def _poke_on_link_change(self) -> None:
        while True:
            await self.link.changed.wait()
            self.link.changed.clear()
            self._poke()

    # -- identity -------------------------------------------------------------------------------

    async def _renewal(self) -> None:
        """Renew the certificates when due; the session then reconnects presenting the new ones.

        An appliance enrolled before agents had a certificate of their own renews at once (and
        every `AGENT_CERTIFICATE_RETRY_S` while that fails): its agent stays off the broker
        meanwhile, because on a broker that binds client ids the device certificate's session
        is the register's. A control plane that renews without an agent certificate is older
        than them (its broker binds nothing): the agent then uses the device certificate, and
        asks again at the usual rhythm.
        """
        identity_dir = self.settings.identity_dir
        if identity_dir is None:
            raise RuntimeError("certificate renewal started without an identity directory")
        retry_s = min(self.settings.renewal_check_s, AGENT_CERTIFICATE_RETRY_S)
        urgent = True  # a missing agent certificate is asked for at once
        while True:
            if load_enrolment(identity_dir) is None:  # the first-boot screen enrols
                await asyncio.sleep(IDENTITY_POLL_S)
                continue
            missing = not has_agent_certificate(identity_dir)
            if not (missing and urgent):
                await asyncio.sleep(self.settings.renewal_check_s)
                missing = not has_agent_certificate(identity_dir)
            # imported when first used (see the module docstring): cryptography and httpx
            from edge.enrolment.renewal import due, renew_certificate

            if not missing and not due(identity_dir):
                continue
            if missing:
                log.warning(
                    "this appliance has no agent certificate (enrolled before agents had their "
                    "own); renewing now to get one"
                )
            try:
                await renew_certificate(identity_dir)
            except Exception as err:  # renewal is retried, never fatal to the agent
                log.warning("certificate renewal failed (%s); trying again later", err)
                if missing and urgent:
                    await asyncio.sleep(retry_s)
                continue
            if not has_agent_certificate(identity_dir):
                log.warning(
                    "the control plane renewed without an agent certificate (it is older than "
                    "this agent); the agent uses the device certificate until one renews with it"
                )
                urgent = False
                self.agent_certificate_refused = True
                continue
            log.info("certificates renewed; reconnecting with them")
            if self.session is not None:
                self.session.tls_context = agent_tls_context(identity_dir)
                self.session.reconnect()


async def run_agent(settings: FleetAgentSettings, *, stop: asyncio.Event) -> None:
    """Run the agent until ``stop`` is set; the register is stopped in order on the way out."""
    agent = FleetAgentProcess(settings)
    async with ServiceTasks("fleet agent process") as tasks:
        tasks.spawn(agent.run(), name="fleet-agent")
        await stop.wait()  # leaving cancels the agent, which stops the register in order
