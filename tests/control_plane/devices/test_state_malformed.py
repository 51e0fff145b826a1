"""State the control plane cannot use is counted and dropped; the next good one is kept."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest
from prometheus_client import REGISTRY

from protocols.broker_url import parse_broker_url
from protocols.codec import encode
from protocols.messages import State
from protocols.topics import Channel, device_topic
from tests.control_plane.commands.fleet_harness import GUARD_S, new_device_id, running_site
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

#: A printer out of paper, as a real hub reports it (tests/edge/agent/test_agent_state.py).
OUT_OF_PAPER = {
    "device": "receipt-printer",
    "kind": "printer",
    "connected": True,
    "error": "receipt-printer: out of paper",
    "last_seen": 1_763_700_000.5,
    "detail": {"paper": "out"},
    "counters": {"jobs": 3},
}


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


async def test_malformed_state_is_counted_and_dropped_and_a_good_one_is_kept(
    database_url: str, mosquitto: Mosquitto
) -> None:
    device_id, stranger = new_device_id(), new_device_id()
    broker = parse_broker_url(mosquitto.url)
    reasons = ("malformed", "unsupported_version", "unknown_device")
    before = {r: dropped(r) for r in reasons}
    good = State(app_release="2026.11.1", slot="b", peripherals={"receipt-printer": OUT_OF_PAPER})
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
        aiomqtt.Client(broker.host, broker.port, identifier=f"{device_id}-agent") as device,
    ):
        await site.cloud.register(device_id)
        topic = device_topic(device_id, Channel.STATE)
        await device.publish(topic, b"{not json", qos=1)
        await device.publish(topic, b'{"schema": "sf.state", "v": 2}', qos=1)
        await device.publish(device_topic(stranger, Channel.STATE), encode(good), qos=1)
        await device.publish(topic, encode(good), qos=1)

        async def kept() -> bool:
            return (await site.api.get(f"/api/devices/{device_id}/state")).status_code == 200

        await wait_until(kept, what="the good state after the bad ones")
        state = (await site.api.get(f"/api/devices/{device_id}/state")).json()
        fleet = (await site.api.get("/")).text
    after = {r: dropped(r) for r in reasons}
    assert {r: after[r] - before[r] for r in reasons} == dict.fromkeys(reasons, 1)
    assert (state["slot"], state["problems"]) == ("b", ["receipt-printer: out of paper"])
    assert state["peripherals"]["receipt-printer"]["detail"] == {"paper": "out"}
    assert '<span class="badge alert">receipt-printer: out of paper</span>' in fleet
