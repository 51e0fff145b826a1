"""A TCP relay in front of the real Mosquitto that tells the test when the broker acks something.

Why: a cancellation that lands in the same few loop iterations as a PUBACK is what Python 3.11's
``asyncio.wait_for`` swallows. To hit that moment on purpose, the relay frames the broker's side
of the stream into MQTT packets (fixed header: type nibble, then the remaining length as a
base-128 varint) and calls ``on_puback`` right after it has passed a PUBACK on to the client
(``on_suback`` likewise for a SUBACK). Bytes are relayed unchanged in both directions. Used by
the agent's and the ingest worker's cancellation tests and by :mod:`mqttlink`'s own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

PUBACK = 4
SUBACK = 9


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    """One whole MQTT control packet, header included."""
    header = bytearray(await reader.readexactly(1))
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        header.append(byte)
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return bytes(header) + await reader.readexactly(length)


@dataclass
class MqttRelay:
    """Listens on ``port``; every connection is relayed to the broker at ``broker_port``."""

    broker_port: int
    on_puback: Callable[[], None]
    on_suback: Callable[[], None] | None = None
    port: int = 0


async def _to_client(
    broker: asyncio.StreamReader, client: asyncio.StreamWriter, relay: MqttRelay
) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            packet = await read_packet(broker)
            client.write(packet)
            kind = packet[0] >> 4
            if kind == PUBACK:
                relay.on_puback()
            elif kind == SUBACK and relay.on_suback is not None:
                relay.on_suback()
    client.close()


async def _to_broker(client: asyncio.StreamReader, broker: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await client.read(65536):
            broker.write(chunk)
            await broker.drain()
    broker.close()


@contextlib.asynccontextmanager
async def mqtt_relay(
    *,
    broker_port: int,
    on_puback: Callable[[], None],
    on_suback: Callable[[], None] | None = None,
) -> AsyncIterator[MqttRelay]:
    """A running relay; its connections end when the context exits."""
    relay = MqttRelay(broker_port=broker_port, on_puback=on_puback, on_suback=on_suback)
    pumps: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", broker_port)
        both = (
            asyncio.create_task(_to_client(up_reader, writer, relay)),
            asyncio.create_task(_to_broker(reader, up_writer)),
        )
        pumps.update(both)
        await asyncio.gather(*both, return_exceptions=True)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay
    finally:
        server.close()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await server.wait_closed()


def cancel_after(task: asyncio.Task[None], hops: int) -> None:
    """Cancel ``task`` once the loop has gone round ``hops`` more times.

    Walking ``hops`` over 0..7 walks the cancel across the few iterations in which 3.11's
    ``wait_for`` would swallow it.
    """
    if hops == 0:
        task.cancel()
    else:
        asyncio.get_running_loop().call_soon(cancel_after, task, hops - 1)
