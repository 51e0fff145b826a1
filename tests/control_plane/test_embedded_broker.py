"""The demo's embedded broker (amqtt) under the load a fleet gives it: clients connecting while
another subscribes to new topic filters, with retained messages to send on connect."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt
import pytest

from control_plane.embedded_broker import embedded_broker
from tests.harness.services import free_port


async def _subscribe_until(port: int, stop: asyncio.Event) -> int:
    """Subscribe to one new topic filter after another (a store's agent does this on connect)."""
    filters = 0
    async with aiomqtt.Client("127.0.0.1", port, identifier="subscriber", timeout=30) as client:
        while not stop.is_set():
            await client.subscribe(f"storefleet/v1/+/filter-{filters}")
            filters += 1
    return filters


async def test_connecting_while_others_subscribe_drops_no_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    caplog.set_level(logging.ERROR)
    async with (
        embedded_broker(port),
        aiomqtt.Client("127.0.0.1", port, identifier="retainer", timeout=30) as retainer,
    ):
        for n in range(50):  # each connect walks the filters, sending what is retained
            await retainer.subscribe(f"storefleet/v1/retained/{n}")
            await retainer.publish(f"storefleet/v1/retained/{n}", b"kept", qos=1, retain=True)
        stop = asyncio.Event()
        subscriber = asyncio.create_task(_subscribe_until(port, stop))
        for n in range(40):
            async with aiomqtt.Client("127.0.0.1", port, identifier=f"register-{n}", timeout=30):
                await asyncio.sleep(0.01)
        stop.set()
        assert await subscriber > 0
    broken = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not broken, [r.getMessage() + repr(r.exc_info) for r in broken[:3]]


async def test_a_connection_cancelled_while_the_process_stops_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the demo printed once at Ctrl-C: a per-connection server task cancelled (asyncio.run
    cancels what is left) made Python 3.11's stream callback log a CancelledError traceback."""
    caplog.set_level(logging.ERROR)
    accepted = asyncio.Event()
    handlers: list[asyncio.Task[object]] = []

    async def serve_forever(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        accepted.set()
        await asyncio.Event().wait()  # a client still connecting, as amqtt's handshake waits

    async with embedded_broker(free_port()):
        server = await asyncio.start_server(serve_forever, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await accepted.wait()
        handlers[0].cancel()  # as asyncio.run cancels the tasks left at exit
        await asyncio.sleep(0.05)  # the stream's done-callback runs
        writer.close()
        server.close()

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
