"""The register's loyalty client against a real HTTP server that closes a kept connection
just as the next search arrives (the race a cashier meets when uvicorn's keep-alive closes an
idle connection): the search is sent again on a fresh connection, counted, never shown to the
cashier as "needs the network"."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY

from edge.pos.loyalty_client import CloudBalances, SearchTooOften

ANSWER = json.dumps({"customers": [{"id": "C1", "display_name": "Anna K."}]}).encode()


def retries() -> float:
    name = "storefleet_register_cloud_stale_connection_retries_total"
    return REGISTRY.get_sample_value(name) or 0.0


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """One request read off the connection (headers and body); False at EOF."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return False
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return True


async def test_a_connection_the_cloud_closed_is_not_the_network_being_down() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        answered = 0
        try:
            while await _read_request(reader):
                if connections == 1 and answered == 1:
                    break  # the second request on the first connection: closed, no answer
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
                )
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = retries()
    try:
        async with CloudBalances(base_url=f"http://127.0.0.1:{port}") as cloud:
            assert await cloud.search("anna") == [("C1", "Anna K.")]
            assert await cloud.search("anna") == [("C1", "Anna K.")]  # met the closed one
            assert await cloud.search("anna") == [("C1", "Anna K.")]
    finally:
        server.close()
        await server.wait_closed()
    assert retries() == before + 1
    assert connections == 2


async def test_the_clouds_request_budget_is_not_the_network_being_down() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _read_request(reader):
            body = b'{"type": "about:blank", "status": 429}'
            writer.write(
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\n"
                b"content-type: application/problem+json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with CloudBalances(base_url=f"http://127.0.0.1:{port}") as cloud:
            with pytest.raises(SearchTooOften) as refused:
                await cloud.search("anna")
    finally:
        server.close()
        await server.wait_closed()
    assert refused.value.code == "customer_search_busy"
    assert "search again in 7 s" in str(refused.value)
