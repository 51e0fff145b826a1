"""Rollouts end to end on the served control plane, a real Mosquitto, SQLite and PostgreSQL.

Appliances are simulated on the broker (``fleet.SimulatedDevice``): they receive the retained
desired release on their own topic and report ``release.progress`` events and their ``State``
as the agent does. A canary that reverts halts the rollout and gets its previous release back;
a good release goes wave by wave to every device; a device offline at the start gets the
release when it returns (its deadline only starts then); a store outside its window waits.
The issue's hundred appliances run the agent's own code: ``test_hundred_agents``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select

from control_plane.devices import service as registry
from control_plane.devices.tables import store_tags
from control_plane.operators.tables import audit_log
from protocols.codec import decode
from protocols.messages import DesiredRelease
from protocols.release_bundle import public_key_text
from protocols.topics import Channel, device_topic
from tests.control_plane.rollouts.fleet import Behaviour, SimulatedDevice, all_online, make_bundle
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

KEY = Ed25519PrivateKey.generate()
OLD, NEW = "1.0.0", "1.1.0"
STORE = "acme-01"


@pytest.fixture
async def cp(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> AsyncIterator[ServedControlPlane]:
    """A served control plane trusting ``KEY``, ticking fast, with releases OLD and NEW."""
    async with served_control_plane(
        database_url=database_url,
        broker_url=mosquitto.url,
        release_keys=public_key_text(KEY.public_key()),
        release_dir=tmp_path / "releases",
        rollout_tick_s=0.05,
        rollout_lease_s=2.0,
    ) as served:
        engine = served.app.state.engine
        await registry.create_tenant(engine, tenant_id="acme", name="Acme")
        await registry.create_store(engine, store_id=STORE, tenant_id="acme", name="High St")
        async with served.client() as admin:
            for version in (OLD, NEW):
                answer = await admin.post("/api/releases", content=make_bundle(version, KEY))
                assert answer.status_code == 201, answer.text
        yield served


async def _devices(
    cp: ServedControlPlane, mosquitto: Mosquitto, count: int, behaviour: Behaviour
) -> list[SimulatedDevice]:
    engine = cp.app.state.engine
    fleet = []
    for number in range(1, count + 1):
        device_id = f"{STORE}-r{number}"
        await registry.register_device(engine, device_id=device_id, store_id=STORE)
        fleet.append(SimulatedDevice(device_id, mosquitto.port, running=OLD, behaviour=behaviour))
    return fleet


async def _create(cp: ServedControlPlane, **body: Any) -> str:
    async with cp.client() as admin:
        created = await admin.post(
            "/api/rollouts", json={"release": NEW, "tenant_id": "acme"} | body
        )
        assert created.status_code == 201, created.text
        rollout_id = str(created.json()["id"])
        started = await admin.post(f"/api/rollouts/{rollout_id}/start")
        assert started.status_code == 200, started.text
    return rollout_id


async def _rollout(cp: ServedControlPlane, rollout_id: str) -> dict[str, Any]:
    async with cp.client() as admin:
        answer = await admin.get(f"/api/rollouts/{rollout_id}")
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        return body


async def _status_is(cp: ServedControlPlane, rollout_id: str, status: str) -> bool:
    return (await _rollout(cp, rollout_id))["status"] == status


async def _retained_release(mosquitto: Mosquitto, device_id: str) -> DesiredRelease | None:
    """What a device connecting now would get on its release topic."""
    topic = device_topic(device_id, Channel.RELEASE)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=f"peek-{device_id}") as peek:
        await peek.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(1.0):
                async for message in peek.messages:
                    assert isinstance(message.payload, bytes)
                    desired = decode(topic, message.payload).message
                    assert isinstance(desired, DesiredRelease)
                    return desired
        except TimeoutError:
            return None
    return None


async def test_a_good_release_goes_wave_by_wave_to_every_device(
    cp: ServedControlPlane, mosquitto: Mosquitto
) -> None:
    fleet = await _devices(cp, mosquitto, 4, "good")
    waves = [{"devices": 1}, {"percent": 50}, {"percent": 100}]
    async with all_online(fleet):
        rollout_id = await _create(cp, waves=waves)
        await wait_until(lambda: _status_is(cp, rollout_id, "completed"), what="completed")
    rollout = await _rollout(cp, rollout_id)
    assert rollout["counts"]["succeeded"] == 4
    assert [wave["size"] for wave in rollout["waves"]] == [1, 1, 2]
    assert rollout["current_wave"] == 2
    by_wave: dict[int, list[int]] = {}
    for device in rollout["devices"]:
        by_wave.setdefault(device["wave"], []).append(device["notified_at"])
    # a wave is only notified once the one before it passed
    assert max(by_wave[0]) < min(by_wave[1])
    assert max(by_wave[1]) < min(by_wave[2])
    assert all(device.running == NEW for device in fleet)
    desired = fleet[0].desired[0]
    assert desired.rollout == rollout_id
    assert desired.version == NEW
    assert desired.url.endswith(f"/api/devices/{fleet[0].device_id}/releases/{NEW}/bundle")


async def test_a_canary_that_reverts_halts_and_rolls_back(
    cp: ServedControlPlane, mosquitto: Mosquitto
) -> None:
    fleet = await _devices(cp, mosquitto, 3, "reverts")
    async with all_online(fleet):
        rollout_id = await _create(cp, waves=[{"devices": 1}, {"percent": 100}])
        await wait_until(lambda: _status_is(cp, rollout_id, "halted"), what="halted")
        rollout = await _rollout(cp, rollout_id)
        canary = next(d for d in rollout["devices"] if d["wave"] == 0)
        await wait_until(
            lambda: _rolled_back(cp, rollout_id, canary["device_id"]), what="rolled back"
        )
        first_halt = await _rollout(cp, rollout_id)
        async with cp.client() as admin:  # retry the canary: it is asked again, reverts again
            retried = await admin.post(f"/api/rollouts/{rollout_id}/retry")
        assert retried.status_code == 200, retried.text
        canary_device = next(d for d in fleet if d.device_id == canary["device_id"])
        await wait_until(lambda: len(canary_device.desired) == 4, what="asked again, rolled back")
        await wait_until(lambda: _status_is(cp, rollout_id, "halted"), what="halted again")
    assert [d.version for d in canary_device.desired] == [NEW, OLD, NEW, OLD]
    assert "failed" in first_halt["reason"]
    rollout = await _rollout(cp, rollout_id)
    canary = next(d for d in rollout["devices"] if d["wave"] == 0)
    assert canary["state"] == "reverted"
    assert canary["attempts"] == 2
    assert "wave 1" in rollout["reason"]
    assert "failed" in rollout["reason"]
    assert rollout["counts"]["pending"] == 2  # the rest never heard of the release
    back = await _retained_release(mosquitto, canary["device_id"])
    assert back is not None
    assert back.version == OLD
    for other in rollout["devices"]:
        if other["wave"] == 1:
            assert await _retained_release(mosquitto, other["device_id"]) is None
    async with cp.app.state.engine.connect() as conn:
        actions = {
            row[0]
            for row in await conn.execute(
                select(audit_log.c.action).where(audit_log.c.target == rollout_id)
            )
        }
    assert {"rollouts:create", "rollouts:start"} <= actions


async def _rolled_back(cp: ServedControlPlane, rollout_id: str, device_id: str) -> bool:
    rollout = await _rollout(cp, rollout_id)
    return any(
        d["device_id"] == device_id and d["rolled_back_at"] is not None for d in rollout["devices"]
    )


async def test_an_offline_device_gets_the_release_when_it_returns(
    cp: ServedControlPlane, mosquitto: Mosquitto
) -> None:
    present, away = await _devices(cp, mosquitto, 2, "good")
    async with present.online():
        rollout_id = await _create(cp, waves=[{"percent": 100}])

        async def away_notified() -> bool:
            rollout = await _rollout(cp, rollout_id)
            states = {d["device_id"]: d for d in rollout["devices"]}
            return (
                states[present.device_id]["state"] == "succeeded"
                and states[away.device_id]["state"] == "notified"
            )

        await wait_until(away_notified, what="the present device done, the away one notified")
        await asyncio.sleep(0.3)  # a few ticks: no deadline may start while it is away
        rollout = await _rollout(cp, rollout_id)
        waiting = next(d for d in rollout["devices"] if d["device_id"] == away.device_id)
        assert waiting["deadline_at"] is None
        async with away.online():
            await wait_until(lambda: _status_is(cp, rollout_id, "completed"), what="completed")
    assert away.running == NEW


async def test_a_store_outside_its_window_waits_until_it_opens(
    cp: ServedControlPlane, mosquitto: Mosquitto
) -> None:
    (device,) = await _devices(cp, mosquitto, 1, "good")
    now = datetime.now(UTC)
    closed = f"{(now + timedelta(hours=2)):%H}:00-{(now + timedelta(hours=3)):%H}:00"
    open_now = f"{(now - timedelta(hours=1)):%H}:00-{(now + timedelta(hours=2)):%H}:00"
    async with cp.app.state.engine.begin() as conn:  # as the store configuration tags it
        await conn.execute(insert(store_tags).values(store_id=STORE, tag="pilot"))
    async with cp.client() as admin:
        window = await admin.put(
            f"/api/stores/{STORE}/maintenance-window", json={"maintenance_window": closed}
        )
        assert window.status_code == 204, window.text
    async with device.online():
        rollout_id = await _create(
            cp, waves=[{"percent": 100}], target={"kind": "tags", "values": ["pilot"]}
        )

        async def waiting() -> bool:
            rollout = await _rollout(cp, rollout_id)
            return bool(rollout["devices"][0]["state"] == "waiting_for_window")

        await wait_until(waiting, what="waiting for the window")
        await asyncio.sleep(0.3)
        assert device.desired == []  # never notified outside the window
        async with cp.client() as admin:
            await admin.put(
                f"/api/stores/{STORE}/maintenance-window", json={"maintenance_window": open_now}
            )
        await wait_until(lambda: _status_is(cp, rollout_id, "completed"), what="completed")
    assert device.desired[0].window == f"{open_now}@UTC"
