"""The embedded MQTT broker (amqtt) that lets the demo run on a machine with Python alone.

Production and tests use Mosquitto (``images/mosquitto/``); this exists so ``storefleet demo``
needs no broker installed. It listens on loopback only and has no ACLs, which is why the control
plane never starts it when a broker URL is configured.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class _SubscriptionTable(dict[str, Any]):
    """amqtt 0.12.1's table of topic filters, iterated over a snapshot.

    amqtt walks this table with ``await`` inside the loop (sending retained messages to a client
    that connects, fanning a publish out), so a subscription made by another client in the
    meantime adds a key mid-iteration: ``RuntimeError: dictionary changed size during
    iteration`` drops the connecting client (it reconnects) and prints a traceback. Walking a
    copy gives each loop the filters as they were when it started, which is all it needs: a
    filter added later gets its retained messages from its own subscribe.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())


def _quiet_cancelled_connections(loop: asyncio.AbstractEventLoop) -> None:
    """Drop one known false alarm of Python 3.11's asyncio, pass everything else on.

    amqtt serves each client from ``asyncio.start_server``'s per-connection task. When that task is
    cancelled (a client still connecting while the process stops: ``asyncio.run`` cancels what is
    left), 3.11's ``StreamReaderProtocol`` done-callback calls ``task.exception()`` on the cancelled
    task, which raises ``CancelledError``, and the loop logs "Exception in callback …" with a
    traceback (3.12 checks ``task.cancelled()`` first). Nothing failed: the connection was being
    closed. Installed for the broker's loop for good, since the callbacks run after shutdown.
    """
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        cancelled = isinstance(context.get("exception"), asyncio.CancelledError)
        if cancelled and "StreamReaderProtocol.connection_made" in repr(context.get("handle")):
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    loop.set_exception_handler(handler)


@asynccontextmanager
async def embedded_broker(port: int) -> AsyncIterator[None]:
    """Run an amqtt broker on ``127.0.0.1:port`` for the life of the context."""
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
    )
    broker._subscriptions = _SubscriptionTable()  # see _SubscriptionTable: amqtt's race
    if sys.version_info < (3, 12):
        _quiet_cancelled_connections(asyncio.get_running_loop())
    await broker.start()
    log.info("embedded broker listening on mqtt://127.0.0.1:%d (loopback only)", port)
    try:
        yield
    finally:
        await broker.shutdown()
