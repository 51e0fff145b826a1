"""Cancelling the ingest worker ends it, even when the cancel lands as the broker acks a subscribe.

The worker used aiomqtt's own timeout, i.e. ``asyncio.wait_for``, which on Python 3.11 swallows a
cancellation landing in the loop iterations between the SUBACK (or an ack's PUBACK) arriving and
the waiting task resuming (CPython gh-86296): the worker went on subscribing and serving, and the
control plane's shutdown waited for it forever. The worker's connection is now a
:class:`mqttlink.link.MqttLink`. The relay in front of the real Mosquitto cancels the worker a
given number of loop iterations after each SUBACK, walking the cancel across that window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine
from control_plane.ingest.worker import IngestSettings, IngestWorker
from protocols.broker_url import parse_broker_url
from tests.harness.mqtt_relay import cancel_after, mqtt_relay
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services
GUARD_S = 30  # only against hangs


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Never queried: no device publishes, so the worker only connects and subscribes."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}")
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("hops", [pytest.param(n, id=f"{n}-iterations-after") for n in range(8)])
@pytest.mark.parametrize("suback", [1, 3, 5], ids=lambda n: f"suback-{n}")
async def test_a_cancel_as_a_subscribe_is_acked_ends_the_worker(
    mosquitto: Mosquitto, engine: AsyncEngine, hops: int, suback: int
) -> None:
    armed: list[asyncio.Task[None]] = []
    seen = 0

    def on_suback() -> None:
        nonlocal seen
        seen += 1
        if seen == suback:
            while armed:
                cancel_after(armed.pop(), hops)

    async with mqtt_relay(
        broker_port=mosquitto.port, on_puback=lambda: None, on_suback=on_suback
    ) as relay:
        worker = IngestWorker(
            engine=engine,
            broker=parse_broker_url(f"mqtt://127.0.0.1:{relay.port}"),
            settings=IngestSettings(shared_subscription=False, partitions=1),
        )
        running = asyncio.create_task(worker.run(), name="ingest-under-test")
        armed.append(running)
        done, _ = await asyncio.wait({running}, timeout=GUARD_S)
    assert running in done, "the ingest worker went on after its cancel"
    assert running.cancelled()
    assert not worker.connected.is_set()
