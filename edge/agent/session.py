"""The agent's MQTT session: state up, commands down, on the device's own subtree.

How it works: :meth:`FleetAgent.run` connects (client id ``{device}-agent``, so it never kicks
the replicator's ``{device}`` session off the broker), subscribes ``cmd`` at QoS 1 and runs the
state publisher and the command loop in one TaskGroup. Every wait on the broker is bounded by
:class:`~edge.agent.mqtt_link.MqttLink`, never by aiomqtt's ``wait_for``, which on Python 3.11
can swallow the cancel that stops the agent. A lost connection ends the session; the
next connect waits a jittered, doubling backoff (reset once a session got going). The session is
clean: a command sent while the appliance was offline is not delivered hours later (a drawer
must not spring open at opening time because someone clicked yesterday); the control plane times
it out and the operator asks again. Commands run one at a time, in order: each is short, and
``stop`` after ``start`` must see the count the ``start`` made.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiomqtt

from edge.agent import metrics
from edge.agent.commands import CommandRunner
from edge.agent.mqtt_link import MqttLink
from edge.agent.state import StatePublisher
from edge.peripherals.hub import PeripheralHub
from edge.stock.on_hand import JournalSource, OnHandProjection
from protocols.broker_url import BrokerAddress
from protocols.codec import encode
from protocols.topics import Channel, device_topic

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
    ) -> None:
        self.device_id = device_id
        self.broker = broker
        self.commands = commands
        self.state = state
        self.tls_context = tls_context
        self.settings = settings or AgentSettings()
        self.connected = asyncio.Event()
        self._cmd_topic = device_topic(device_id, Channel.CMD)
        self._result_topic = device_topic(device_id, Channel.CMD_RESULT)

    async def run(self) -> None:
        """Connect, serve, reconnect with jittered backoff; returns only when cancelled."""
        delay = self.settings.backoff_initial
        while True:
            served = False
            try:
                async with self._link() as link:
                    metrics.CONNECTS.labels(self.device_id, "ok").inc()
                    served = True
                    await self._serve(link)
            except* (aiomqtt.MqttError, OSError) as group:
                metrics.CONNECTS.labels(self.device_id, "lost").inc()
                log.warning(
                    "device %s: agent lost broker %s (%s); retrying",
                    self.device_id,
                    self.broker.url,
                    group.exceptions[0],
                )
            finally:
                self.connected.clear()
            if served:
                delay = self.settings.backoff_initial
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(self.settings.backoff_max, delay * 2)

    def _link(self) -> MqttLink:
        return MqttLink(
            broker=self.broker,
            identifier=f"{self.device_id}-agent",
            clean_session=True,
            keepalive=self.settings.keepalive,
            timeout_s=self.settings.timeout_s,
            tls_context=self.tls_context,
        )

    async def _serve(self, link: MqttLink) -> None:
        await link.subscribe(self._cmd_topic, qos=1)
        self.connected.set()
        log.info("device %s: agent connected to %s", self.device_id, self.broker.url)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.state.run(link), name=f"agent-state:{self.device_id}")
            tasks.create_task(self._command_loop(link), name=f"agent-cmd:{self.device_id}")

    async def _command_loop(self, link: MqttLink) -> None:
        command_topic = device_topic(self.device_id, Channel.CMD)
        async for message in link.messages:
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


def agent_for_hub(
    *,
    device_id: str,
    broker: BrokerAddress,
    hub: PeripheralHub,
    journal: JournalSource,
    item_gtins: Mapping[str, str] | None = None,
    app_release: str = "",
    tls_context: ssl.SSLContext | None = None,
    settings: AgentSettings | None = None,
) -> FleetAgent:
    """The agent for one register's hub; expected on-hand comes from ``journal`` (the ledger).

    ``item_gtins`` maps the register's item ids to GTINs (``catalog_gtins(catalog)``) for sales
    whose lines carry item ids rather than barcodes.
    """
    s = settings or AgentSettings()
    projection = OnHandProjection(journal=journal, item_gtins=item_gtins)
    state = StatePublisher(
        device_id=device_id,
        health=hub.health,
        app_release=app_release,
        interval_s=s.state_interval_s,
        check_s=s.state_check_s,
    )
    commands = CommandRunner(
        device_id=device_id, hub=hub, expected_on_hand=projection.refresh, on_done=state.poke
    )
    return FleetAgent(
        device_id=device_id,
        broker=broker,
        commands=commands,
        state=state,
        tls_context=tls_context,
        settings=s,
    )
