"""A lost broker is counted, logged as "sales continue offline", and found again.

The replicator runs on the one reconnect loop (:func:`mqttlink.reconnect.reconnect_forever`);
this checks what it must keep doing there: the ``lost`` outcome of
``storefleet_edge_broker_connects``, the log line a store's support reads, ``connected`` cleared
while the broker is gone, and a reconnect when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from edge.ledger import Ledger
from edge.replication.replicator import Replicator
from protocols.broker_url import parse_broker_url
from tests.harness.appliance import FAST
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

DEVICE = "reg-broker-loss"


def connects(outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "storefleet_edge_broker_connects_total", {"device_id": DEVICE, "outcome": outcome}
    )
    return sample or 0.0


async def test_a_lost_broker_is_counted_logged_and_reconnected(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.replication.replicator")
    lost_before, ok_before = connects("lost"), connects("ok")
    async with Ledger(tmp_path / "edge.db", register_id="1") as ledger:
        replicator = Replicator(
            ledger=ledger, device_id=DEVICE, broker=parse_broker_url(mosquitto.url), settings=FAST
        )
        running = asyncio.create_task(replicator.run(), name="test-replicator")
        try:
            async with asyncio.timeout(60):
                await replicator.connected.wait()
                mosquitto.kill()
                await wait_until(
                    lambda: connects("lost") > lost_before and not replicator.connected.is_set(),
                    what="the loss to be counted",
                )
                mosquitto.start()
                await replicator.connected.wait()
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    assert connects("ok") - ok_before == 2
    losses = [r.getMessage() for r in caplog.records if "lost or unreachable" in r.getMessage()]
    assert losses, "no log line for the lost broker"
    assert losses[0].startswith(f"device {DEVICE}: broker {mosquitto.url} lost or unreachable")
    assert losses[0].endswith("; retrying, sales continue offline")
