"""A status the device row cannot hold is refused as malformed, not failed in the database."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from control_plane.devices.tables import devices
from protocols.broker_url import parse_broker_url
from protocols.codec import encode
from protocols.messages import Status
from protocols.topics import Channel, device_topic
from tests.control_plane.commands.fleet_harness import GUARD_S, new_device_id, running_site
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


def _status(**fields: object) -> bytes:
    return json.dumps({"schema": "sf.status", "v": 1, "state": "online", **fields}).encode()


BAD_STATUSES = [
    pytest.param(_status(boot_id="b" * 65), "boot_id", id="boot-id-longer-than-its-column"),
    pytest.param(_status(boot_id="boot\u0000"), "boot_id", id="nul-in-boot-id"),
    pytest.param(_status(versions={"app": "v" * 101}), "versions.app", id="version-too-long"),
]


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


@pytest.mark.parametrize(("payload", "where"), BAD_STATUSES)
async def test_a_status_the_row_cannot_hold_is_refused_as_malformed(
    database_url: str,
    mosquitto: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    where: str,
) -> None:
    device_id = new_device_id()
    broker = parse_broker_url(mosquitto.url)
    caplog.set_level("WARNING", logger="control_plane.ingest.worker")
    before = {reason: dropped(reason) for reason in ("malformed", "presence_error")}
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
        aiomqtt.Client(broker.host, broker.port, identifier=f"{device_id}-agent") as device,
    ):
        await site.cloud.register(device_id)
        engine = site.cloud.engine
        assert engine is not None
        topic = device_topic(device_id, Channel.STATUS)
        await device.publish(topic, payload, qos=1)
        await device.publish(topic, encode(Status(state="online", boot_id="boot-2")), qos=1)

        async def boot_id() -> str:
            async with engine.connect() as conn:
                query = select(devices.c.boot_id).where(devices.c.id == device_id)
                return str((await conn.execute(query)).scalar_one())

        async def good_one_kept() -> bool:
            return await boot_id() == "boot-2"

        await wait_until(good_one_kept, what="the good status after the bad one")
    rose = {reason: dropped(reason) - count for reason, count in before.items()}
    assert rose == {"malformed": 1, "presence_error": 0}
    assert f"sf.status not kept: {where}: " in caplog.text
    assert "Traceback" not in caplog.text
