"""The agent's Prometheus counters on a small localhost HTTP endpoint: ``GET /metrics``.

The agent serves its own counters rather than handing them to the register's ``/metrics``: the
agent must not depend on the register, and a register in a crash loop is exactly when the
agent's counters (starts, exits, the crash-loop gauge) are wanted. One request per connection,
HTTP/1.0 style, on asyncio's own server: no web framework in the agent (it stays small, see
:mod:`edge.agent.process`). Anything but ``GET /metrics`` is answered 404 or 405; a request
head that does not arrive whole within :data:`READ_TIMEOUT_S` or exceeds :data:`MAX_HEAD` bytes
is dropped and counted.

A port that cannot be bound is logged with the setting to change and the agent carries on
without metrics: supervision and rollback matter more than a scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge.agent import metrics

log = logging.getLogger(__name__)

MAX_HEAD = 8 * 1024
READ_TIMEOUT_S = 5.0


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def answer(request_line: bytes) -> bytes:
    """The whole response to one request line (sans-I/O: the tests call it too)."""
    parts = request_line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        metrics.METRICS_REQUESTS.labels("malformed").inc()
        return _response("400 Bad Request", b"not an HTTP request\n")
    method, target, _version = parts
    if target.split("?", 1)[0] != "/metrics":
        metrics.METRICS_REQUESTS.labels("not_found").inc()
        return _response("404 Not Found", b"only /metrics is served here\n")
    if method not in ("GET", "HEAD"):
        metrics.METRICS_REQUESTS.labels("bad_method").inc()
        return _response("405 Method Not Allowed", b"GET /metrics\n")
    metrics.METRICS_REQUESTS.labels("ok").inc()
    body = generate_latest()
    full = _response("200 OK", body, CONTENT_TYPE_LATEST)
    return full[: len(full) - len(body)] if method == "HEAD" else full


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        metrics.METRICS_REQUESTS.labels("dropped").inc()
        writer.close()
        return
    try:
        writer.write(answer(head.split(b"\r\n", 1)[0]))
        await writer.drain()
    except OSError:
        pass  # the scraper went away
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def serve_metrics(*, host: str, port: int, bound: asyncio.Event | None = None) -> None:
    """Serve ``/metrics`` on ``host:port`` until cancelled; returns at once if it cannot bind."""
    try:
        server = await asyncio.start_server(_serve_one, host, port, limit=MAX_HEAD)
    except OSError as err:
        log.error(
            "agent metrics not served: cannot listen on %s:%d (%s); set metrics_port"
            " (STOREFLEET_AGENT_METRICS_PORT) to a free port, or 0 to serve none",
            host,
            port,
            err.strerror or err,
        )
        return
    log.info("agent metrics on http://%s:%d/metrics", host, port)
    if bound is not None:
        bound.set()
    async with server:
        await server.serve_forever()
