"""A bad ``journal/ack`` is counted and dropped; the register goes on selling and replicating.

The defect: on the anonymous development broker anyone could publish an ack with ``hwm`` = 2^63;
the ledger's ``hash_at`` handed it to SQLite, the bind raised ``OverflowError``, and the appliance
process (replicator and register in one TaskGroup) exited: sales stopped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import REGISTRY

from edge.appliance import run_appliance
from edge.settings import EdgeSettings
from edge.simulated_register import RingSettings
from protocols.topics import Channel, device_topic
from tests.harness.appliance import FAST
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

HEAD = "0" * 64

#: (payload, reason it is counted under, what the one log line says)
BAD_ACKS = [
    pytest.param(
        {"hwm": 2**63, "head_hash": HEAD},
        "malformed",
        "invalid at hwm",
        id="hwm-2^63",
    ),
    pytest.param(
        {"hwm": 2**200, "head_hash": HEAD, "resend_from": 1},
        "malformed",
        "invalid at hwm",
        id="hwm-2^200",
    ),
    pytest.param(
        {"hwm": 1, "head_hash": HEAD, "resend_from": 2**64},
        "malformed",
        "invalid at resend_from",
        id="resend_from-2^64",
    ),
    pytest.param(
        {"hwm": "12", "head_hash": HEAD},
        "malformed",
        "invalid at hwm",
        id="hwm-string",
    ),
    pytest.param(
        {"hwm": 2**63 - 1, "head_hash": HEAD},
        "impossible_ack",
        "but this ledger ends at seq",
        id="hwm-beyond-the-ledger",
    ),
    pytest.param(
        {"hwm": 0, "head_hash": HEAD, "resend_from": 2**63 - 1},
        "impossible_ack",
        "resend from seq 9223372036854775807",
        id="resend-beyond-the-ledger",
    ),
]


def dropped(device_id: str, reason: str) -> float:
    labels = {"device_id": device_id, "reason": reason}
    return REGISTRY.get_sample_value("storefleet_edge_messages_dropped_total", labels) or 0.0


@contextlib.asynccontextmanager
async def selling_appliance(
    device_id: str, tmp_path: Path, broker_url: str
) -> AsyncIterator[asyncio.Task[None]]:
    """The appliance process's composition (register + replicator), ringing 40 sales/s."""
    settings = EdgeSettings(
        device_id=device_id, ledger_path=tmp_path / "edge.db", broker_url=broker_url
    )
    task = asyncio.create_task(
        run_appliance(settings, ring=RingSettings(rate=40, seed=4), replication=FAST),
        name=f"appliance-{device_id}",
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _hwm_at_least(cloud: Cloud, device_id: str, target: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await cloud.hwm(device_id) >= target

    return check


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("fields", "reason", "logged"), BAD_ACKS)
async def test_a_bad_ack_is_counted_dropped_and_the_register_keeps_selling(
    cloud: Cloud,
    mosquitto: Mosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, object],
    reason: str,
    logged: str,
) -> None:
    device = "reg-bad-ack"
    await cloud.register(device)
    before = dropped(device, reason)
    caplog.set_level(logging.WARNING, logger="edge.replication.replicator")
    async with selling_appliance(device, tmp_path, mosquitto.url) as appliance:
        await wait_until(_hwm_at_least(cloud, device, 5), what="the first sales in the cloud")
        payload = json.dumps({"schema": "sf.journal.ack", "v": 1, **fields}).encode()
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="anyone") as anyone:
            await anyone.publish(device_topic(device, Channel.JOURNAL_ACK), payload, qos=1)
            at_publish = await cloud.hwm(device)

            # sales go on being rung and replicated after the bad ack (once, the process exited)
            await wait_until(_hwm_at_least(cloud, device, at_publish + 20), what="sales after it")
        assert not appliance.done()
        await wait_until(lambda: dropped(device, reason) > before, what="the ack to be counted")

    assert dropped(device, reason) == before + 1
    drops = [r for r in caplog.records if "dropped a message from the broker" in r.getMessage()]
    assert len(drops) == 1
    assert logged in drops[0].getMessage()
    assert drops[0].exc_info is None  # one line that says what happened, no traceback
    audit = await cloud.audit(device)
    assert audit.ok, audit.problem
