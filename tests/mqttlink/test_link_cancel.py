"""Cancelling a task that waits on the broker through :class:`MqttLink` ends it, at any moment.

On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when it is cancelled in
the loop iterations between its awaited future finishing and its task resuming (CPython gh-86296).
aiomqtt bounds subscribe and publish with it, so a task cancelled as its SUBACK or PUBACK arrived
went on. The relay in front of the real Mosquitto cancels the task a given number of loop
iterations after the ack reached the client, which walks the cancel across that window; the task
then waits forever, so only a cancel that propagated can end it.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from mqttlink.link import MqttLink
from protocols.broker_url import parse_broker_url
from tests.harness.mqtt_relay import cancel_after, mqtt_relay
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services
GUARD_S = 30  # only against hangs
HOPS = [pytest.param(n, id=f"{n}-iterations-after") for n in range(8)]


def _link(port: int, name: str) -> MqttLink:
    return MqttLink(
        broker=parse_broker_url(f"mqtt://127.0.0.1:{port}"),
        identifier=name,
        timeout_s=10,
        keepalive=15,
    )


async def _ends_when_cancelled(run: asyncio.Task[None]) -> None:
    done, _ = await asyncio.wait({run}, timeout=GUARD_S)
    assert run in done, "the task went on after its cancel (swallowed by wait_for?)"
    assert run.cancelled()


@pytest.mark.parametrize("hops", HOPS)
async def test_a_cancel_as_the_puback_arrives_ends_the_task(
    mosquitto: Mosquitto, hops: int
) -> None:
    armed: list[asyncio.Task[None]] = []

    def on_puback() -> None:
        while armed:
            cancel_after(armed.pop(), hops)

    async def publish_then_wait(port: int) -> None:
        async with _link(port, f"cancel-pub-{hops}") as link:
            await link.publish("sf/test/cancel", b"x", qos=1)
            await asyncio.Event().wait()  # a swallowed cancel leaves the task here

    async with mqtt_relay(broker_port=mosquitto.port, on_puback=on_puback) as relay:
        run = asyncio.create_task(publish_then_wait(relay.port))
        armed.append(run)
        await _ends_when_cancelled(run)


@pytest.mark.parametrize("hops", HOPS)
async def test_a_cancel_as_the_suback_arrives_ends_the_task(
    mosquitto: Mosquitto, hops: int
) -> None:
    armed: list[asyncio.Task[None]] = []

    def on_suback() -> None:
        while armed:
            cancel_after(armed.pop(), hops)

    async def subscribe_then_wait(port: int) -> None:
        async with _link(port, f"cancel-sub-{hops}") as link:
            await link.subscribe("sf/test/cancel", qos=1)
            await asyncio.Event().wait()

    async with mqtt_relay(
        broker_port=mosquitto.port, on_puback=lambda: None, on_suback=on_suback
    ) as relay:
        run = asyncio.create_task(subscribe_then_wait(relay.port))
        armed.append(run)
        await _ends_when_cancelled(run)


async def test_a_broker_that_does_not_answer_is_an_mqtt_error_within_the_bound() -> None:
    """Running out of time is reported as the lost broker it means, naming what was waited for."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
    port = server.sockets[0].getsockname()[1]
    link = MqttLink(
        broker=parse_broker_url(f"mqtt://127.0.0.1:{port}"),
        identifier="silent",
        timeout_s=0.2,
        keepalive=15,
    )
    try:
        with pytest.raises(aiomqtt.MqttError, match=r"did not answer the connect within 0\.2 s"):
            await link.__aenter__()
    finally:
        server.close()
        await server.wait_closed()
