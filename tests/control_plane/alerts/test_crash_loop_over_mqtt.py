"""A register's crash loop, published by its agent over MQTT, opens an alert; recovery clears it.

Real Mosquitto and the real ingest worker (shared subscriptions), on SQLite and PostgreSQL: the
agent's ``sf.event`` reaches ``device_events`` through the ingest, and the evaluator reads it.
"""

from __future__ import annotations

import time

import aiomqtt
import pytest
from sqlalchemy import func, select

from control_plane.alerts import evaluator, service
from control_plane.alerts.tables import device_events
from control_plane.tenancy import TenantScope
from protocols.codec import encode
from protocols.messages import Event
from protocols.topics import Channel, device_topic
from tests.harness.cloud import TENANT, Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

DEVICE = "crash-r1"


async def _kept(cloud: Cloud, at_least: int) -> bool:
    assert cloud.engine is not None
    async with cloud.engine.connect() as conn:
        query = select(func.count()).select_from(device_events)
        return int((await conn.execute(query)).scalar_one()) >= at_least


async def test_crash_loop_event_opens_and_recovery_clears(
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    assert cloud.engine is not None
    await cloud.register(DEVICE)
    now = time.time_ns() // 1_000_000
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=DEVICE) as agent:
        crash = Event(kind="app.crash_loop", ts=now, body={"failures": 5, "last_exit": "exit 1"})
        await agent.publish(device_topic(DEVICE, Channel.EVENTS), encode(crash), qos=1)
        await wait_until(lambda: _kept(cloud, 1), timeout=10, what="the crash loop kept")

        await evaluator.evaluate(cloud.engine)
        [alert] = await service.list_alerts(cloud.engine, scope=TenantScope(TENANT))
        assert (alert["device_id"], alert["kind"]) == (DEVICE, "crash_loop")
        assert "5 starts" in alert["detail"]

        recovered = Event(kind="app.recovered", ts=now + 1, body={})
        await agent.publish(device_topic(DEVICE, Channel.EVENTS), encode(recovered), qos=1)
        await wait_until(lambda: _kept(cloud, 2), timeout=10, what="the recovery kept")
    await evaluator.evaluate(cloud.engine)
    assert await service.list_alerts(cloud.engine, scope=TenantScope(TENANT)) == []
