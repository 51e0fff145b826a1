"""One MQTT connection (agent's, ingest worker's), its every wait bounded by ``asyncio.timeout``.

Why not aiomqtt's own ``timeout``: aiomqtt bounds connect, subscribe, publish and disconnect with
``asyncio.wait_for``, and on Python 3.11 ``wait_for`` swallows a cancellation that arrives in the
loop iterations between its awaited future finishing and its task resuming (CPython gh-86296,
fixed in 3.12 by rebuilding ``wait_for`` on ``asyncio.timeout``). A task cancelled as a PUBACK
arrived simply went on (back to waiting for the next command) and the TaskGroup waiting for it
never finished: the appliance could not stop its agent, and a test hung past its own guard. The
control plane's ingest worker (connect, subscribes, acks) had the same hazard, so the link lives
here, shared by both sides.

How it works: the aiomqtt client is made with ``timeout=math.inf``, which makes aiomqtt await
its futures directly (a cancel always propagates); each wait is bounded here instead, with
``asyncio.timeout``, and running out of time raises :class:`aiomqtt.MqttError` as aiomqtt's own
timeout did, so the caller's reconnect loop treats it as a lost broker. Leaving the link
disconnects within the same bound; a broker that does not answer the disconnect is left to drop
the session at its keepalive, so leaving never hangs and never replaces the error it leaves with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import AsyncIterator, Iterable

import aiomqtt

from protocols.broker_url import BrokerAddress

log = logging.getLogger(__name__)

#: Commands, their results and journal acks are tiny and latency-bound: without this, Nagle and
#: delayed ACKs add ~40 ms per hop. The default socket options of every link.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


class MqttLink:
    """``async with MqttLink(...) as link:`` — connected until the block ends."""

    def __init__(
        self,
        *,
        broker: BrokerAddress,
        identifier: str,
        timeout_s: float,
        keepalive: int,
        clean_session: bool = True,
        tls_context: ssl.SSLContext | None = None,
        will: aiomqtt.Will | None = None,
        socket_options: Iterable[tuple[int, int, int | bytes]] = NO_DELAY,
        queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
        max_queued_incoming_messages: int | None = None,
    ) -> None:
        self.broker = broker
        self.timeout_s = timeout_s
        self.client = aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=identifier,
            clean_session=clean_session,
            keepalive=keepalive,
            timeout=math.inf,  # aiomqtt awaits directly; the bounds are ours (see above)
            tls_context=tls_context,
            will=will,
            socket_options=socket_options,
            queue_type=queue_type,
            max_queued_incoming_messages=max_queued_incoming_messages,
        )

    async def __aenter__(self) -> MqttLink:
        async with self._bounded("the connect"):
            await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            async with self._bounded("the disconnect"):
                await self.client.__aexit__(None, None, None)
        except aiomqtt.MqttError as err:  # the session ends either way
            log.info("%s; the broker drops the session at its keepalive", err)

    @property
    def messages(self) -> aiomqtt.client.MessagesIterator:
        """Inbound messages; iterating raises :class:`aiomqtt.MqttError` once the broker is lost."""
        return self.client.messages

    async def subscribe(self, topic: str, *, qos: int = 1) -> None:
        """Subscribe and wait for the SUBACK."""
        async with self._bounded(f"a subscribe to {topic}"):
            await self.client.subscribe(topic, qos=qos)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and, at QoS 1, wait for the PUBACK."""
        async with self._bounded(f"a publish on {topic}"):
            await self.client.publish(topic, payload, qos=qos, retain=retain)

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """``asyncio.timeout``, reporting running out as the lost broker it means."""
        try:
            async with asyncio.timeout(self.timeout_s):
                yield
        except TimeoutError as err:
            msg = f"{self.broker.url} did not answer {what} within {self.timeout_s:g} s"
            raise aiomqtt.MqttError(msg) from err
