"""The device broker's access list, kept in step with the registry over `$CONTROL`.

How it works
- The broker devices are told to use (`STOREFLEET_CA_DEVICE_BROKER_URL`) runs Mosquitto's
  dynamic-security plugin (`provisioning.broker_config`, `provisioning.dynamic_security`). A
  device certificate alone gets nothing there: the control plane grants each device its own
  subtree when it enrols, and deletes the grant when the device is decommissioned or replaced,
  which also closes the device's open connection at once.
- Each call is one short mTLS session as `control-plane` (the broker-admin role): subscribe to
  the plugin's response topic, publish one command document, wait for the answer that carries
  our correlation tag. Every command is idempotent ("already exists" / "not found" are success),
  so a repeat is harmless and the reconcile can simply say again what the registry says.
- `reconcile` reads the broker's list first, then the registry, and fixes the difference:
  a device granted while the reconcile read the registry is therefore never taken away. A device
  granted late is kicked once, so it reconnects and subscribes again with its grant.
- A device broker without TLS (`mqtt://`: the embedded amqtt of one-machine installs and the
  dev broker) has no certificates to bind and no plugin: every call is a no-op with one log
  line. A broker that does not answer is an error the caller logs; enrolment and decommission
  carry on, and the next reconcile heals the broker.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import Counter, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.provisioning.errors import ProvisioningServiceError
from control_plane.provisioning.mqtt_identity import ControlPlaneIdentity
from control_plane.provisioning.settings import ProvisioningSettings
from protocols.broker_url import BrokerAddress, parse_broker_url
from provisioning import dynamic_security as dynsec
from provisioning.ca import CertificateAuthority
from provisioning.errors import ProvisioningError

log = logging.getLogger(__name__)

#: Where, inside the CA directory, the control plane keeps the key it administers the broker with.
IDENTITY_DIRECTORY = Path("control-plane-identity")
#: Good enough for a loopback or LAN broker; a broker slower than this is treated as unreachable.
COMMAND_TIMEOUT = 5.0
#: Added per command: 2.0.11's plugin rewrites its whole file after each change, so a command
#: costs more the bigger the fleet (2,000 devices: a first reconcile took 105 s here).
PER_COMMAND_SECONDS = 0.2
#: Devices fixed per command document when a reconcile has many to fix (first start, restore).
RECONCILE_BATCH = 25
_GRANTED = (0, 1, 2)
_NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

COMMANDS = Counter(
    "storefleet_broker_access_total",
    "Access-list changes sent to the device broker, by action and outcome",
    ["action", "outcome"],
)
RECONCILED = Counter(
    "storefleet_broker_access_reconciled_total",
    "Devices whose broker grant a reconcile had to fix, by fix",
    ["fix"],
)
COMMAND_SECONDS = Histogram(
    "storefleet_broker_access_seconds",
    "One access-list session with the broker (connect, command, answer)",
    buckets=(0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class BrokerAccessError(Exception):
    """The broker's access list could not be changed or read; says which broker and why."""

    def __init__(self, broker_url: str, why: str) -> None:
        super().__init__(f"broker access on {broker_url}: {why}")
        self.broker_url = broker_url
        self.why = why


class Outcome(enum.StrEnum):
    """What a grant or withdrawal did."""

    APPLIED = "applied"
    SKIPPED = "skipped"  # the device broker is not an mTLS, dynamic-security broker
    FAILED = "failed"  # logged and counted; the next reconcile retries


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one reconcile changed on the broker."""

    granted: tuple[str, ...]
    repaired: tuple[str, ...]
    withdrawn: tuple[str, ...]
    invalid: tuple[str, ...]


class BrokerAccess:
    """The device broker's access list, changed by dynamic-security commands over MQTT."""

    def __init__(
        self,
        *,
        broker_url: str,
        tls_context: Callable[[], Awaitable[ssl.SSLContext]],
        timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.broker: BrokerAddress = parse_broker_url(broker_url)
        self.timeout = timeout
        self._tls_context = tls_context

    @property
    def managed(self) -> bool:
        """Whether there is a broker access list to keep (an mqtts:// device broker)."""
        return self.broker.tls

    async def grant(self, device_id: str) -> Outcome:
        """Let the device use its own subtree (at enrolment, before it gets its certificate)."""
        return await self._change("grant", device_id, dynsec.grant_commands(device_id))

    async def withdraw(self, device_id: str) -> Outcome:
        """Delete the device's grant and close its open connection (decommission, replacement)."""
        return await self._change("withdraw", device_id, dynsec.withdraw_commands(device_id))

    async def _change(self, action: str, device_id: str, commands: list[dynsec.Command]) -> Outcome:
        if not self.managed:
            log.info(
                "broker access: %s of %s skipped: the device broker %s has no mTLS and no "
                "access list to change",
                action,
                device_id,
                self.broker.url,
            )
            COMMANDS.labels(action, Outcome.SKIPPED.value).inc()
            return Outcome.SKIPPED
        try:
            await self.execute(commands)
        except BrokerAccessError as err:
            COMMANDS.labels(action, Outcome.FAILED.value).inc()
            log.warning(
                "broker access: %s of %s failed (%s); the control plane's reconcile retries it, "
                "check that the broker runs the dynamic-security plugin and is reachable",
                action,
                device_id,
                err.why,
            )
            return Outcome.FAILED
        COMMANDS.labels(action, Outcome.APPLIED.value).inc()
        log.info("broker access: %s of %s applied on %s", action, device_id, self.broker.url)
        return Outcome.APPLIED

    async def reconcile(self, *, engine: AsyncEngine) -> Reconciled:
        """Make the broker's device grants match the registry's active devices.

        Raises BrokerAccessError when the broker cannot be read or changed.
        """
        listing = await self.execute(dynsec.list_commands())
        try:
            view = dynsec.broker_view(listing[0], listing[1])
        except ValueError as err:
            raise BrokerAccessError(self.broker.url, str(err)) from err
        async with engine.connect() as conn:  # after the broker's list: see the module's notes
            rows = await conn.execute(
                select(devices.c.id).where(devices.c.decommissioned_at.is_(None))
            )
            active = [str(device_id) for device_id in rows.scalars()]
        todo = dynsec.plan(view, active=active)
        fixes = [dynsec.withdraw_commands(device_id) for device_id in todo.withdraw]
        fixes += [
            dynsec.withdraw_commands(device_id) + dynsec.grant_commands(device_id)
            for device_id in todo.repair
        ]
        fixes += [
            dynsec.grant_commands(device_id) + dynsec.kick_commands(device_id)
            for device_id in todo.grant
        ]
        for start in range(0, len(fixes), RECONCILE_BATCH):  # a whole fleet at once is megabytes
            await self.execute([c for fix in fixes[start : start + RECONCILE_BATCH] for c in fix])
        for fix, ids in (
            ("grant", todo.grant),
            ("repair", todo.repair),
            ("withdraw", todo.withdraw),
        ):
            RECONCILED.labels(fix).inc(len(ids))
        if todo.invalid:
            RECONCILED.labels("invalid").inc(len(todo.invalid))
            log.warning(
                "broker access: registry device ids %s cannot be a certificate CN or a topic "
                "level and get no broker grant; decommission them and enrol the appliances again",
                ", ".join(todo.invalid),
            )
        if not todo.empty:
            log.warning(
                "broker access: reconciled %s with the registry: granted %s, repaired %s, "
                "withdrew %s",
                self.broker.url,
                ", ".join(todo.grant) or "-",
                ", ".join(todo.repair) or "-",
                ", ".join(todo.withdraw) or "-",
            )
        return Reconciled(
            granted=todo.grant, repaired=todo.repair, withdrawn=todo.withdraw, invalid=todo.invalid
        )

    async def execute(self, commands: Sequence[dynsec.Command]) -> list[dynsec.Answer]:
        """Send one command document and return the answers, in order.

        Raises BrokerAccessError if the broker is unreachable, refuses the admin topics, does
        not answer in time, or answers a command with a real error.
        """
        url = self.broker.url
        batch = uuid.uuid4().hex
        started = time.perf_counter()
        try:
            tls_context = await self._tls_context()
        except (ProvisioningError, ProvisioningServiceError, OSError, ValueError) as err:
            raise BrokerAccessError(url, f"no control-plane identity to present: {err}") from err
        allowed = self.timeout + PER_COMMAND_SECONDS * len(commands)
        try:
            async with asyncio.timeout(allowed):
                answers = await self._session(tls_context, commands, batch=batch, within=allowed)
        except TimeoutError as err:
            why = (
                f"no answer on {dynsec.RESPONSE_TOPIC} within {allowed:g} s "
                "(is the dynamic-security plugin loaded?)"
            )
            raise BrokerAccessError(url, why) from err
        except (aiomqtt.MqttError, OSError, ssl.SSLError) as err:
            raise BrokerAccessError(url, f"cannot reach it as control-plane: {err}") from err
        finally:
            COMMAND_SECONDS.observe(time.perf_counter() - started)
        failed = [f"{a.command}: {a.error}" for a in answers if not a.ok]
        if failed:
            raise BrokerAccessError(url, "refused " + "; ".join(failed))
        return answers

    async def _session(
        self,
        tls_context: ssl.SSLContext,
        commands: Sequence[dynsec.Command],
        *,
        batch: str,
        within: float,
    ) -> list[dynsec.Answer]:
        async with aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=f"control-plane-access-{batch[:12]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=tls_context,
            timeout=within,  # the broker is busy while it saves an earlier batch
            socket_options=_NO_DELAY,  # one small request and its answer: no Nagle delay
        ) as client:
            granted = await client.subscribe(dynsec.RESPONSE_TOPIC, qos=0)
            codes = [code.value if isinstance(code, ReasonCode) else int(code) for code in granted]
            if not codes or codes[0] not in _GRANTED:
                why = (
                    f"the broker refused control-plane the topic {dynsec.RESPONSE_TOPIC} "
                    f"(SUBACK {codes}): its dynamic-security.json lacks the broker-admin role; "
                    "render it with provisioning.broker_config"
                )
                raise BrokerAccessError(self.broker.url, why)
            await client.publish(
                dynsec.CONTROL_TOPIC, dynsec.encode_commands(commands, batch=batch), qos=1
            )
            async for message in client.messages:
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    continue
                try:
                    answers = dynsec.decode_answers(
                        bytes(payload), batch=batch, count=len(commands)
                    )
                except ValueError as err:
                    raise BrokerAccessError(self.broker.url, str(err)) from err
                if answers is not None:
                    return answers
        raise BrokerAccessError(self.broker.url, "the session ended before the answer")


def device_broker_access(
    settings: ProvisioningSettings, *, ca: Callable[[], Awaitable[CertificateAuthority]]
) -> BrokerAccess:
    """The access list of the broker devices are told to use, administered as `control-plane`
    on the broker's service listener when one is set (`STOREFLEET_CA_SERVICE_BROKER_URL`): on
    the device listener, where client ids are bound to certificates, every control-plane
    session is named `control-plane` and would close the one before it.

    The identity lives in the CA's directory (it is issued by that CA and has no other home
    that provisioning knows of); the CA is opened only when a command is first sent.
    """
    identity = ControlPlaneIdentity(ca=ca, directory=settings.directory / IDENTITY_DIRECTORY)
    return BrokerAccess(broker_url=settings.admin_broker_url, tls_context=identity.tls_context)
