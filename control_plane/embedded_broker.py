"""The embedded MQTT broker (amqtt) that lets the demo run on a machine with Python alone.

Production and tests use Mosquitto (``images/mosquitto/``); this exists so ``storefleet demo``
needs no broker installed. It listens on loopback only and has no ACLs, which is why the control
plane never starts it when a broker URL is configured.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

log = logging.getLogger(__name__)


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
    await broker.start()
    log.info("embedded broker listening on mqtt://127.0.0.1:%d (loopback only)", port)
    try:
        yield
    finally:
        await broker.shutdown()
