"""A real Mosquitto between the agent and a test playing the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiomqtt

from edge.agent.session import AgentSettings, FleetAgent
from edge.peripherals.hub import PeripheralHub
from edge.register.hub_commands import agent_for_hub
from edge.stock.on_hand import JournalSource
from protocols.broker_url import parse_broker_url
from protocols.codec import decode, encode
from protocols.messages import Command, CommandResult, Message, State
from protocols.topics import Channel, device_topic


def new_device_id() -> str:
    """Metrics are process-wide: each test gets its own device."""
    return f"reg-{uuid.uuid4().hex[:10]}"


@dataclass
class ControlPlane:
    """Subscribed to the device's status, state, events and command results; sends commands."""

    client: aiomqtt.Client
    device_id: str
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)

    async def send(self, command: Command | bytes) -> None:
        payload = command if isinstance(command, bytes) else encode(command)
        await self.client.publish(device_topic(self.device_id, Channel.CMD), payload, qos=1)

    async def next(self, predicate: Callable[[Message], bool]) -> Message:
        """The next message (in arrival order) that satisfies ``predicate``."""
        while not predicate(message := await self.inbox.get()):
            pass
        return message

    async def result(self, command_id: str) -> CommandResult:
        found = await self.next(lambda m: isinstance(m, CommandResult) and m.id == command_id)
        assert isinstance(found, CommandResult)
        return found

    async def state(self, predicate: Callable[[State], bool]) -> State:
        found = await self.next(lambda m: isinstance(m, State) and predicate(m))
        assert isinstance(found, State)
        return found

    async def call(self, name: str, **args: object) -> CommandResult:
        command = Command(id=uuid.uuid4().hex, name=name, args=args)
        await self.send(command)
        return await self.result(command.id)


@contextlib.asynccontextmanager
async def control_plane(broker_url: str, device_id: str) -> AsyncIterator[ControlPlane]:
    broker = parse_broker_url(broker_url)
    # timeout=math.inf: aiomqtt's wait_for could swallow the test's guard on Python 3.11 (see
    # mqttlink.link); the guard bounds these waits instead
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"cp-{device_id}", timeout=math.inf
    ) as client:
        cp = ControlPlane(client=client, device_id=device_id)
        await client.subscribe(device_topic(device_id, Channel.STATE), qos=1)
        await client.subscribe(device_topic(device_id, Channel.CMD_RESULT), qos=1)
        await client.subscribe(device_topic(device_id, Channel.EVENTS), qos=1)
        await client.subscribe(device_topic(device_id, Channel.STATUS), qos=1)

        async def pump() -> None:
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                cp.inbox.put_nowait(decode(str(message.topic), payload).message)

        async with asyncio.TaskGroup() as tasks:
            pumping = tasks.create_task(pump(), name="control-plane-pump")
            yield cp
            pumping.cancel()


@contextlib.asynccontextmanager
async def running_agent(
    broker_url: str, *, device_id: str, hub: PeripheralHub, journal: JournalSource
) -> AsyncIterator[FleetAgent]:
    """The agent connected (its ``cmd`` subscription in place) until the context exits."""
    agent = agent_for_hub(
        device_id=device_id,
        broker=parse_broker_url(broker_url),
        hub=hub,
        journal=journal,
        settings=AgentSettings(backoff_initial=0.05, state_check_s=0.02),
    )
    async with asyncio.TaskGroup() as tasks:
        running = tasks.create_task(agent.run(), name=f"agent-{device_id}")
        await agent.connected.wait()
        yield agent
        running.cancel()
