"""The agent's MQTT session: state and events up, commands down, on the device's own subtree.

How it works: :meth:`FleetAgent.run` connects (client id ``{device}.agent``, the CN of the agent's
own certificate, so it never kicks the replicator's ``{device}`` session off the broker) with
``offline`` as its last will, says ``online`` (:mod:`edge.agent.presence`), subscribes ``cmd``
at QoS 1 (and the retained ``config``, handed to ``on_config`` as it comes) and runs the state
publisher and the command loop in one TaskGroup. Every wait on the broker is bounded by
:class:`~mqttlink.link.MqttLink`, never by aiomqtt's ``wait_for``, which on Python 3.11
can swallow the cancel that stops the agent. A lost connection ends the session; the
next connect waits the fleet's one backoff (:func:`mqttlink.reconnect.reconnect_forever`: full
jitter, doubling, afresh once a session got going). The session is
clean: a command sent while the appliance was offline is not delivered hours later (a drawer
must not spring open at opening time because someone clicked yesterday); the control plane times
it out and the operator asks again. Commands run one at a time, in order: each is short, and
``stop`` after ``start`` must see the count the ``start`` made.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from edge.agent import metrics
from edge.agent.commands import CommandRunner
from edge.agent.events import EventOutbox
from edge.agent.presence import Presence
from edge.agent.state import StatePublisher
from mqttlink.backoff import Backoff
from mqttlink.link import MqttLink
from mqttlink.reconnect import reconnect_forever
from protocols.broker_url import BrokerAddress
from protocols.codec import encode
from protocols.topics import Channel, agent_client_id, device_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """Connection tuning; the defaults suit a store's uplink."""

    keepalive: int = 15
    timeout_s: float = 10.0  # longest wait for the broker to answer (connect, subscribe, ack)
    backoff_initial: float = 0.2
    backoff_max: float = 30.0
    state_interval_s: float = 60.0  # retained state at least this often
    state_check_s: float = 1.0  # how often health is compared for a change


class FleetAgent:
    """Run :meth:`run` in a task for the life of the appliance."""

    def __init__(
        self,
        *,
        device_id: str,
        broker: BrokerAddress,
        commands: CommandRunner,
        state: StatePublisher,
        tls_context: ssl.SSLContext | None = None,
        settings: AgentSettings | None = None,
        events: EventOutbox | None = None,
        on_config: Callable[[bytes, str], None] | None = None,
        on_release: Callable[[bytes, str], None] | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.device_id = device_id
        self.broker = broker
        self.commands = commands
        self.state = state
        self.events = events
        self.on_config = on_config  # the retained ``config`` (edge.agent.configuration)
        self.on_release = on_release  # the retained ``release`` (edge.agent.releases)
        self.presence = presence  # ``status`` and its last will (edge.agent.presence)
        self.tls_context = tls_context  # read at every connect: a renewal replaces it
        self.settings = settings or AgentSettings()
        self.connected = asyncio.Event()
        self._reconnect = asyncio.Event()
        self._cmd_topic = device_topic(device_id, Channel.CMD)
        self._result_topic = device_topic(device_id, Channel.CMD_RESULT)
        self._config_topic = device_topic(device_id, Channel.CONFIG)
        self._release_topic = device_topic(device_id, Channel.RELEASE)

    async def run(self) -> None:
        """Connect, serve, reconnect with jittered backoff; returns only when cancelled."""
        await reconnect_forever(
            self._session,
            backoff=Backoff.from_settings(self.settings),
            log=log,
            what=f"device {self.device_id} agent",
            url=self.broker.url,
            lost=self.connected.clear,
            on_error=self._count_loss,
        )

    async def _session(self, backoff: Backoff) -> None:
        async with self._link() as link:
            metrics.CONNECTS.labels(self.device_id, "ok").inc()
            backoff.up()  # connected: the next loss backs off from the start again
            await self._serve(link)

    def _count_loss(self, _err: Exception) -> None:
        metrics.CONNECTS.labels(self.device_id, "lost").inc()

    def reconnect(self) -> None:
        """End the current session and connect again (with a renewed certificate)."""
        self._reconnect.set()

    def _link(self) -> MqttLink:
        return MqttLink(
            broker=self.broker,
            # the agent certificate's CN: what the broker makes of it under client-id binding
            identifier=agent_client_id(self.device_id),
            clean_session=True,
            keepalive=self.settings.keepalive,
            timeout_s=self.settings.timeout_s,
            tls_context=self.tls_context,
            will=None if self.presence is None else self.presence.will(),
        )

    async def _serve(self, link: MqttLink) -> None:
        await link.subscribe(self._cmd_topic, qos=1)
        if self.on_config is not None:  # retained: the latest arrives at every (re)connect
            await link.subscribe(self._config_topic, qos=1)
        if self.on_release is not None:  # retained too: a device offline for a rollout catches up
            await link.subscribe(self._release_topic, qos=1)
        if self.presence is not None:
            await self.presence.online(link)
        self.connected.set()
        log.info("device %s: agent connected to %s", self.device_id, self.broker.url)
        self._reconnect.clear()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.state.run(link), name=f"agent-state:{self.device_id}")
                tasks.create_task(self._command_loop(link), name=f"agent-cmd:{self.device_id}")
                tasks.create_task(self._until_reconnect(), name=f"agent-renew:{self.device_id}")
                if self.events is not None:
                    tasks.create_task(self.events.run(link), name=f"agent-events:{self.device_id}")
        finally:
            if self.presence is not None:
                await self.presence.offline(link)  # a clean stop sends no last will

    async def _until_reconnect(self) -> None:
        await self._reconnect.wait()
        raise aiomqtt.MqttError("reconnecting as asked (a renewed certificate)")

    async def _command_loop(self, link: MqttLink) -> None:
        command_topic = device_topic(self.device_id, Channel.CMD)
        async for message in link.messages:
            if self.on_config is not None and str(message.topic) == self._config_topic:
                self.on_config(_payload(message.payload), self._config_topic)
                continue
            if self.on_release is not None and str(message.topic) == self._release_topic:
                self.on_release(_payload(message.payload), self._release_topic)
                continue
            if str(message.topic) != command_topic:
                # a broker that leaks other topics into our subscription (the embedded amqtt
                # does with retained messages) must not make us answer for someone else
                log.debug("agent %s: ignored a message on %s", self.device_id, message.topic)
                continue
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = str(payload).encode()
            result = await self.commands.handle(bytes(payload), topic=str(message.topic))
            await link.publish(self._result_topic, encode(result), qos=1)


def _payload(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
