"""The rollout driver's take-over tests share one set-up: a two-wave rollout over six devices."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.operators.service import cli_actor
from control_plane.releases.tables import releases
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.rollouts.tables import rollout_leases
from control_plane.tenancy import EVERY_TENANT
from tests.control_plane.rollouts.fleet import SimulatedDevice, all_online
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.services import Mosquitto

RELEASE = "2.0.0"
DEVICES = 6
#: Notifications a minute: the canary and three of the second wave, then the minute is used up.
RATE = 4


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class TakeOver:
    """A drafted rollout of ``RELEASE`` (a canary, then the rest at ``RATE`` a minute) to six
    simulated appliances, online; the test starts it and runs the drivers."""

    engine: AsyncEngine
    fleet: list[SimulatedDevice]
    rollout_id: str

    async def start(self) -> None:
        await rollouts.act(
            self.engine, scope=EVERY_TENANT, rollout_id=self.rollout_id, verb="start",
            actor=cli_actor(), client="test", now_ms=now_ms(),
        )  # fmt: skip

    async def owner(self) -> str | None:
        """The instance holding the rollout's lease (None: nobody took it yet)."""
        async with self.engine.connect() as conn:
            owner = (
                await conn.execute(
                    select(rollout_leases.c.owner).where(
                        rollout_leases.c.rollout_id == self.rollout_id
                    )
                )
            ).scalar()
        return None if owner is None else str(owner)

    def told_once_and_running(self) -> bool:
        """Every appliance got its desired release exactly once and runs it."""
        return [len(d.desired) for d in self.fleet] == [1] * DEVICES and all(
            d.running == RELEASE for d in self.fleet
        )


@pytest.fixture
async def take_over(cloud: Cloud, mosquitto: Mosquitto) -> AsyncIterator[TakeOver]:
    """The rollout drafted, its appliances online for the test (see :class:`TakeOver`)."""
    engine = cloud.engine
    assert engine is not None
    async with engine.begin() as conn:
        await conn.execute(
            insert(releases).values(
                version=RELEASE, sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                min_agent_version="0.1.0", manifest="{}", published_by="t", published_at=now_ms(),
            )
        )  # fmt: skip
    fleet = []
    for number in range(DEVICES):
        await cloud.register(f"{STORE}-t{number}")
        fleet.append(SimulatedDevice(f"{STORE}-t{number}", mosquitto.port, running="1.0.0"))
    async with all_online(fleet):
        view = await rollouts.create_rollout(
            engine,
            scope=EVERY_TENANT,
            spec=RolloutIn(
                release=RELEASE,
                tenant_id=TENANT,
                waves=[WaveIn(devices=1), WaveIn(percent=100)],
                rate_per_minute=RATE,
            ),
            actor=cli_actor(),
            client="test",
            now_ms=now_ms(),
        )
        yield TakeOver(engine=engine, fleet=fleet, rollout_id=view.id)
