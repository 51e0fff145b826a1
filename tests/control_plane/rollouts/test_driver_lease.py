"""Two rollout drivers on one database (SQLite and PostgreSQL), the first cut off mid-wave.

Driver A notifies the canary, then the next wave up to the rate limit; its broker connection is
cut during that step, so its last notifications are recorded but not published, and it stops
renewing its lease (a crash). Driver B cannot drive while A's lease runs; once it expired, B
publishes what A could not and notifies the rest: every device gets its desired release exactly
once and the rollout completes. B runs on a clock a minute ahead, so A's lease has expired and
the rate limit's minute has passed without the test sleeping.
"""

from __future__ import annotations

import pytest

from control_plane.rollouts import service as rollouts
from control_plane.rollouts.driver import DriverSettings, RolloutDriver
from tests.control_plane.rollouts.conftest import TakeOver, now_ms
from tests.harness.cloud import Cloud
from tests.harness.services import wait_until

pytestmark = pytest.mark.services


class Cuttable:
    """The ingest's connection, until :meth:`cut` makes every publish fail as a lost broker."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.is_cut = False

    def cut(self) -> None:
        self.is_cut = True

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> None:
        if self.is_cut:
            raise ConnectionError("cut")
        assert self.cloud.worker is not None
        await self.cloud.worker.publish(topic, payload, qos, retain=retain)


async def test_a_second_driver_takes_over_and_loses_nothing(
    cloud: Cloud, take_over: TakeOver
) -> None:
    engine, rollout_id = take_over.engine, take_over.rollout_id
    settings = DriverSettings(tick_s=0.05, lease_s=5.0)
    a_link = Cuttable(cloud)
    driver_a = RolloutDriver(
        engine=engine, publisher=a_link, base_url="http://cp", settings=settings, owner="a"
    )
    driver_b = RolloutDriver(
        engine=engine,
        publisher=Cuttable(cloud),
        base_url="http://cp",
        settings=settings,
        owner="b",
        clock=lambda: now_ms() + 61_000,
    )
    await take_over.start()
    assert await driver_a.step() == [rollout_id]  # the canary is notified
    await wait_until(lambda: _succeeded(take_over, 1), what="canary done")
    a_link.cut()  # A's broker goes away under its next step, then A dies
    assert await driver_a.step() == [rollout_id]
    rollout = await rollouts.get_rollout(engine, rollout_id=rollout_id)
    notified = [d for d in rollout.devices if d.notified_at is not None]
    assert rollout.current_wave == 1
    assert len(notified) == 4  # the rate limit: 4 a minute, canary included
    driver_c = RolloutDriver(
        engine=engine, publisher=Cuttable(cloud), base_url="http://cp", settings=settings,
        owner="c",
    )  # fmt: skip
    assert await driver_c.step() == []  # A's lease still runs: nobody else drives
    assert await take_over.owner() == "a"

    async def b_finishes() -> bool:
        await driver_b.step()
        status = (await rollouts.get_rollout(engine, rollout_id=rollout_id)).status
        return status == "completed"

    await wait_until(b_finishes, what="driver B completes the rollout")
    assert await take_over.owner() == "b"
    assert take_over.told_once_and_running()  # nothing twice, nothing lost


async def _succeeded(take_over: TakeOver, expected: int) -> bool:
    view = await rollouts.get_rollout(take_over.engine, rollout_id=take_over.rollout_id)
    return view.counts["succeeded"] == expected
