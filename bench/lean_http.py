"""A minimal HTTP/1.1 keep-alive client for the timed phase of a server benchmark.

Why: on this 2-core machine httpx spent 3.3-4 ms of CPU per request (measured against
``GET /healthz``, which costs the control plane 1 ms), so a benchmark driven by httpx measured
its own client as much as the server. Here every request is encoded before the clock starts and
an answer is only split into status and body, which leaves the cores to the server.

How it works: ``send_all`` opens ``concurrency`` connections, and each takes the next encoded
request, writes it, reads the head up to the blank line and exactly ``Content-Length`` bytes of
body. No pipelining, no redirects, no chunked bodies (refused: the control plane's JSON answers
carry a length).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


class LeanHttpError(Exception):
    """An answer this client does not read (no Content-Length, a closed connection)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Status and body of one response."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def post_json(
    host: str, port: int, path: str, document: object, *, headers: dict[str, str] | None = None
) -> bytes:
    """The bytes of ``POST path`` with `document` as its JSON body, on a kept-alive connection."""
    body = json.dumps(document).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _answer(reader: asyncio.StreamReader) -> Answer:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        msg = "the server closed the connection before answering"
        raise LeanHttpError(msg) from err
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        msg = f"an answer without Content-Length (status {status}): {head[:200]!r}"
        raise LeanHttpError(msg)
    return Answer(status=status, body=await reader.readexactly(length))


async def send_all(
    host: str, port: int, requests: list[bytes], *, concurrency: int
) -> list[Answer]:
    """Send every request over `concurrency` connections; the answers, in request order."""
    answers: list[Answer | None] = [None] * len(requests)
    pending = iter(range(len(requests)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in pending:
                writer.write(requests[index])
                answers[index] = await _answer(reader)
        finally:
            writer.close()
            await writer.wait_closed()

    async with asyncio.TaskGroup() as tasks:
        for _ in range(min(concurrency, len(requests))):
            tasks.create_task(worker())
    return [answer for answer in answers if answer is not None]
