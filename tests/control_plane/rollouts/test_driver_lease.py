"""Two rollout drivers on one database (SQLite and PostgreSQL), the first cut off mid-wave.

Driver A notifies the canary, then the next wave up to the rate limit; its broker connection is
cut during that step, so its last notifications are recorded but not published, and it stops
renewing its lease (a crash). Driver B cannot drive while A's lease runs; once it expired, B
publishes what A could not and notifies the rest: every device gets its desired release exactly
once and the rollout completes. B runs on a clock a minute ahead, so A's lease has expired and
the rate limit's minute has passed without the test sleeping.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, select

from control_plane.operators.service import cli_actor
from control_plane.releases.tables import releases
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.driver import DriverSettings, RolloutDriver
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.rollouts.tables import rollout_leases
from control_plane.tenancy import EVERY_TENANT
from tests.control_plane.rollouts.fleet import SimulatedDevice, all_online
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


def _now() -> int:
    return time.time_ns() // 1_000_000


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
    cloud: Cloud, mosquitto: Mosquitto
) -> None:
    engine = cloud.engine
    assert engine is not None
    async with engine.begin() as conn:
        await conn.execute(
            insert(releases).values(
                version="2.0.0", sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                min_agent_version="0.1.0", manifest="{}", published_by="t", published_at=_now(),
            )
        )  # fmt: skip
    fleet = []
    for number in range(6):
        await cloud.register(f"{STORE}-r{number}")
        fleet.append(SimulatedDevice(f"{STORE}-r{number}", mosquitto.port, running="1.0.0"))
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
        clock=lambda: _now() + 61_000,
    )
    async with all_online(fleet):
        view = await rollouts.create_rollout(
            engine,
            scope=EVERY_TENANT,
            spec=RolloutIn(
                release="2.0.0",
                tenant_id=TENANT,
                waves=[WaveIn(devices=1), WaveIn(percent=100)],
                rate_per_minute=4,
            ),
            actor=cli_actor(),
            client="test",
            now_ms=_now(),
        )
        await rollouts.act(
            engine, scope=EVERY_TENANT, rollout_id=view.id, verb="start",
            actor=cli_actor(), client="test", now_ms=_now(),
        )  # fmt: skip
        assert await driver_a.step() == [view.id]  # the canary is notified
        await wait_until(lambda: _counts(engine, view.id, "succeeded", 1), what="canary done")
        a_link.cut()  # A's broker goes away under its next step, then A dies
        assert await driver_a.step() == [view.id]
        rollout = await rollouts.get_rollout(engine, rollout_id=view.id)
        notified = [d for d in rollout.devices if d.notified_at is not None]
        assert rollout.current_wave == 1
        assert len(notified) == 4  # the rate limit: 4 a minute, canary included
        driver_c = RolloutDriver(
            engine=engine, publisher=Cuttable(cloud), base_url="http://cp", settings=settings,
            owner="c",
        )  # fmt: skip
        assert await driver_c.step() == []  # A's lease still runs: nobody else drives
        assert await _owner(engine, view.id) == "a"

        async def b_finishes() -> bool:
            await driver_b.step()
            status = (await rollouts.get_rollout(engine, rollout_id=view.id)).status
            return status == "completed"

        await wait_until(b_finishes, what="driver B completes the rollout")
    assert await _owner(engine, view.id) == "b"
    assert [len(device.desired) for device in fleet] == [1] * 6  # nothing twice, nothing lost
    assert all(device.running == "2.0.0" for device in fleet)


async def _counts(engine, rollout_id: str, state: str, expected: int) -> bool:  # type: ignore[no-untyped-def]
    view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
    return view.counts[state] == expected


async def _owner(engine, rollout_id: str) -> str:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return str(
            (
                await conn.execute(
                    select(rollout_leases.c.owner).where(rollout_leases.c.rollout_id == rollout_id)
                )
            ).scalar_one()
        )
