"""An OS update the appliance reverted opens the fleet alert "os update reverted" (issue 15).

Real Mosquitto and the real ingest worker, on SQLite and PostgreSQL: the agent's ``os.update``
events (release_bundle's progress body, as edge/agent/os_update.py says them) reach
``device_events`` through the ingest; the evaluator opens the alert on a revert, an operator
acknowledges it, another try keeps it open, and a later update that succeeds clears it. The
device's OS update steps are listed newest first, and a flood of crash-loop events does not push
the last OS update out of the kept events.
"""

from __future__ import annotations

import time

import aiomqtt
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from control_plane.alerts import evaluator, service
from control_plane.alerts.tables import device_events
from control_plane.devices.os_updates import list_os_updates
from control_plane.operators.principal import Principal, Role
from control_plane.tenancy import TenantScope
from protocols.codec import encode
from protocols.messages import Event
from protocols.release_bundle import ReleaseState, progress_body
from protocols.topics import Channel, device_topic
from protocols.vocabulary import EventKind
from tests.harness.cloud import TENANT, Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

DEVICE = "osup-r1"
KIND = "os_update_reverted"


async def _kept(cloud: Cloud, at_least: int) -> bool:
    assert cloud.engine is not None
    async with cloud.engine.connect() as conn:
        query = select(func.count()).select_from(device_events)
        return int((await conn.execute(query)).scalar_one()) >= at_least


def _reverted_total() -> float:
    value = REGISTRY.get_sample_value("storefleet_os_updates_total", {"state": "reverted"})
    return value or 0.0


async def test_a_revert_opens_the_alert_until_an_update_succeeds(
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    assert cloud.engine is not None
    engine = cloud.engine
    scope = TenantScope(TENANT)
    await cloud.register(DEVICE)
    now = time.time_ns() // 1_000_000
    sent = 0
    reverted_before = _reverted_total()

    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=DEVICE) as agent:

        async def say(version: str, state: ReleaseState, detail: str) -> None:
            nonlocal sent
            body = progress_body(rollout=None, version=version, state=state, detail=detail)
            event = Event(kind=EventKind.OS_UPDATE, ts=now + sent, body=body)
            await agent.publish(device_topic(DEVICE, Channel.EVENTS), encode(event), qos=1)
            sent += 1
            await wait_until(lambda: _kept(cloud, sent), timeout=10, what=f"{state} kept")

        await say("amd64-2", ReleaseState.INSTALLING, "written to slot b")
        await say("amd64-2", ReleaseState.CONFIRMING, "slot b booted once")
        await evaluator.evaluate(engine)
        assert await service.list_alerts(engine, scope=scope) == []  # on trial: no alert yet

        await say("amd64-2", ReleaseState.REVERTED, "slot b's one boot did not pass")
        await evaluator.evaluate(engine)
        [alert] = await service.list_alerts(engine, scope=scope)
        assert (alert["device_id"], alert["kind"]) == (DEVICE, KIND)
        assert alert["detail"] == "OS update amd64-2 reverted: slot b's one boot did not pass"
        assert _reverted_total() == reverted_before + 1
        steps = await list_os_updates(engine, scope=scope, device_id=DEVICE)
        assert [(s["version"], s["state"]) for s in steps] == [
            ("amd64-2", "reverted"),
            ("amd64-2", "confirming"),
            ("amd64-2", "installing"),
        ]
        assert await list_os_updates(engine, scope=TenantScope("other"), device_id=DEVICE) == []

        operator = Principal(
            operator_id="op1", email="op@example.test", role=Role.OPERATOR, tenant_id=TENANT,
            via="session", scopes=None,
        )  # fmt: skip
        acked = await service.acknowledge(
            engine, scope=scope, alert_id=alert["id"], principal=operator, client="test",
            now_ms=now,
        )  # fmt: skip
        assert acked["acked_by"] == "op@example.test"

        # a crash loop's events do not push the OS update out of what is kept
        for n in range(25):
            crash = Event(kind=EventKind.APP_CRASH_LOOP, ts=now + 100 + n, body={"failures": 5})
            await agent.publish(device_topic(DEVICE, Channel.EVENTS), encode(crash), qos=1)
        await wait_until(lambda: _kept(cloud, sent + 20), timeout=20, what="the crash loops")
        recovered = Event(kind=EventKind.APP_RECOVERED, ts=now + 200, body={})
        await agent.publish(device_topic(DEVICE, Channel.EVENTS), encode(recovered), qos=1)
        # kept: the OS updates, the newest 20 crash loops (per kind), the recovery
        await wait_until(lambda: _kept(cloud, sent + 21), timeout=20, what="the recovery")

        # the next try: still reverted until it ends
        await say("amd64-3", ReleaseState.CONFIRMING, "slot b booted once")
        await evaluator.evaluate(engine)
        [still] = await service.list_alerts(engine, scope=scope, device_id=DEVICE)
        assert (still["id"], still["kind"], still["acked_by"]) == (
            alert["id"],
            KIND,
            "op@example.test",
        )
        await say("amd64-3", ReleaseState.SUCCEEDED, "slot b passed its boot health gate")
    await evaluator.evaluate(engine)
    assert await service.list_alerts(engine, scope=scope) == []
    [cleared] = await service.list_alerts(engine, scope=scope, state="cleared")
    assert (cleared["id"], cleared["kind"]) == (alert["id"], KIND)
    [newest, *_] = await list_os_updates(engine, scope=scope, device_id=DEVICE, limit=1)
    assert (newest["version"], newest["state"]) == ("amd64-3", "succeeded")
