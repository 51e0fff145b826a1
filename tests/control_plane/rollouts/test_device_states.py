"""A device's word is not enough, and silence has a deadline (SQLite and PostgreSQL, real broker).

A device that reports "succeeded" while its retained State still shows the old release has
fallen back (hawkBit #3185): it stays confirming, and fails at the deadline with that reason. A
device that never answers times out by its state's deadline. Both are failures, so the wave's
gate halts the rollout and the notified devices get their previous release back. The driver is
stepped by hand on a clock the test moves, so no test waits out a deadline.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert

from control_plane.devices.state import get_state
from control_plane.operators.service import cli_actor
from control_plane.releases.tables import releases
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.driver import RolloutDriver
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.tenancy import EVERY_TENANT
from tests.control_plane.rollouts.fleet import Behaviour, SimulatedDevice, all_online
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest.mark.parametrize(
    ("behaviour", "state", "detail"),
    [
        pytest.param("lies", "failed", "it fell back", id="success-while-running-the-old"),
        pytest.param("silent", "timed_out", "silent in notified", id="never-answers"),
    ],
)
async def test_a_device_that_did_not_take_the_release_fails_by_its_deadline(
    cloud: Cloud, mosquitto: Mosquitto, behaviour: Behaviour, state: str, detail: str
) -> None:
    engine = cloud.engine
    assert engine is not None
    assert cloud.worker is not None
    async with engine.begin() as conn:
        for version in ("1.0.0", "2.0.0"):
            await conn.execute(
                insert(releases).values(
                    version=version, sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                    min_agent_version="0.1.0", manifest="{}", published_by="t",
                    published_at=_now(),
                )
            )  # fmt: skip
    await cloud.register(f"{STORE}-r1")
    device = SimulatedDevice(f"{STORE}-r1", mosquitto.port, running="1.0.0", behaviour=behaviour)
    ahead = [0]
    driver = RolloutDriver(
        engine=engine,
        publisher=cloud.worker,
        base_url="http://cp",
        clock=lambda: _now() + ahead[0],
    )
    async with all_online([device]):
        await wait_until(lambda: _running(cloud, "1.0.0"), what="the device's state")
        view = await rollouts.create_rollout(
            engine,
            scope=EVERY_TENANT,
            spec=RolloutIn(
                release="2.0.0",
                tenant_id=TENANT,
                waves=[WaveIn(devices=1, max_failures=1)],
                deadlines={"notified": 60, "confirming": 60},
            ),
            actor=cli_actor(),
            client="test",
            now_ms=_now(),
        )
        await rollouts.act(
            engine, scope=EVERY_TENANT, rollout_id=view.id, verb="start",
            actor=cli_actor(), client="test", now_ms=_now(),
        )  # fmt: skip
        await driver.step()
        await wait_until(lambda: len(device.desired) == 1, what="the desired release")
        if behaviour == "lies":
            await wait_until(lambda: _device_is(cloud, view.id, "confirming"), what="confirming")
        await driver.step()
        assert (await rollouts.get_rollout(engine, rollout_id=view.id)).status == "running"
        ahead[0] = 61_000  # past the deadline
        await driver.step()
        rollout = await rollouts.get_rollout(engine, rollout_id=view.id)
        await wait_until(lambda: len(device.desired) == 2, what="the rollback")
    (row,) = rollout.devices
    assert row.state == state
    assert detail in row.detail
    assert rollout.status == "halted"
    assert [d.version for d in device.desired] == ["2.0.0", "1.0.0"]  # rolled back


async def _running(cloud: Cloud, version: str) -> bool:
    assert cloud.engine is not None
    state = await get_state(cloud.engine, device_id=f"{STORE}-r1")
    return state is not None and state["app_release"] == version


async def _device_is(cloud: Cloud, rollout_id: str, state: str) -> bool:
    assert cloud.engine is not None
    view = await rollouts.get_rollout(cloud.engine, rollout_id=rollout_id)
    return view.devices[0].state == state
