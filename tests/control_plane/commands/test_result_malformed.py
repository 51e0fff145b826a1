"""Results the control plane cannot use are counted and dropped; the next good one is kept."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest
from prometheus_client import REGISTRY

from protocols.broker_url import parse_broker_url
from protocols.codec import encode
from protocols.messages import CommandResult
from protocols.topics import Channel, device_topic
from tests.harness.services import Mosquitto, wait_until

from .fleet_harness import GUARD_S, new_device_id, running_site

pytestmark = pytest.mark.services


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


async def test_malformed_and_unknown_results_are_counted_and_dropped(
    database_url: str, mosquitto: Mosquitto
) -> None:
    device_id = new_device_id()
    topic = device_topic(device_id, Channel.CMD_RESULT)
    broker = parse_broker_url(mosquitto.url)
    before = {r: dropped(r) for r in ("malformed", "unknown_command_result")}
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
        aiomqtt.Client(broker.host, broker.port, identifier=f"{device_id}-agent") as device,
    ):
        await site.cloud.register(device_id)
        sent = await site.api.post(
            f"/api/devices/{device_id}/commands", json={"name": "printer.test_page"}
        )
        command_id = sent.json()["id"]
        await device.publish(topic, b'{"schema": "sf.cmd.result", "v": 1, "id": 7}', qos=1)
        stray = CommandResult(id="f" * 32, ok=True)
        await device.publish(topic, encode(stray), qos=1)
        answer = CommandResult(id=command_id, ok=True, result={"job_id": 41})
        await device.publish(topic, encode(answer), qos=1)
        url = f"/api/devices/{device_id}/commands/{command_id}"

        async def answered() -> bool:
            return bool((await site.api.get(url)).json()["status"] == "done")

        await wait_until(answered, what="the good result after the bad ones")
        done = (await site.api.get(url)).json()
    assert (done["ok"], done["result"]) == (True, {"job_id": 41})
    after = {r: dropped(r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "malformed": 1,
        "unknown_command_result": 1,
    }
