"""The driving instance SIGKILLed mid-wave: another continues, nothing notified twice or lost.

Instance A is its own process (``driver_process``) on the same database and broker; it takes the
lease, notifies the canary, then the next wave up to the rate limit (4 a minute), and is killed
with SIGKILL while that wave is half notified. Instance B (in the test) cannot drive while A's
lease runs; it runs on a clock a minute ahead, so A's lease (3 s) has expired and the rate's
minute has passed without the test sleeping; it notifies the rest and completes the rollout.
Every simulated appliance got its desired release exactly once. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[3]


def _now() -> int:
    return time.time_ns() // 1_000_000


@contextlib.asynccontextmanager
async def instance(database_url: str, broker_port: int, owner: str) -> AsyncIterator[int]:
    """Another control-plane instance driving rollouts, as a process; its pid."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.control_plane.rollouts.driver_process",
        database_url, str(broker_port), owner,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            assert await process.stdout.readline() == b"driving\n"
        yield process.pid
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _owner(cloud: Cloud, rollout_id: str) -> str | None:
    assert cloud.engine is not None
    async with cloud.engine.connect() as conn:
        owner = (
            await conn.execute(
                select(rollout_leases.c.owner).where(rollout_leases.c.rollout_id == rollout_id)
            )
        ).scalar()
    return None if owner is None else str(owner)


async def test_the_driving_instance_sigkilled_mid_wave_another_continues(
    cloud: Cloud, mosquitto: Mosquitto, database_url: str
) -> None:
    engine = cloud.engine
    assert engine is not None
    assert cloud.worker is not None
    async with engine.begin() as conn:
        await conn.execute(
            insert(releases).values(
                version="2.0.0", sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                min_agent_version="0.1.0", manifest="{}", published_by="t", published_at=_now(),
            )
        )  # fmt: skip
    fleet = []
    for number in range(6):
        await cloud.register(f"{STORE}-k{number}")
        fleet.append(SimulatedDevice(f"{STORE}-k{number}", mosquitto.port, running="1.0.0"))
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
        async with instance(database_url, mosquitto.port, "a") as pid:
            await rollouts.act(
                engine, scope=EVERY_TENANT, rollout_id=view.id, verb="start",
                actor=cli_actor(), client="test", now_ms=_now(),
            )  # fmt: skip

            async def mid_wave() -> bool:
                told = sum(len(device.desired) for device in fleet)
                rollout = await rollouts.get_rollout(engine, rollout_id=view.id)
                return rollout.current_wave == 1 and told == 4  # canary + 3 of wave 2

            await wait_until(mid_wave, timeout=60, what="instance A half through wave 2")
            os.kill(pid, signal.SIGKILL)
        assert await _owner(cloud, view.id) == "a"  # its lease outlives it
        rollout = await rollouts.get_rollout(engine, rollout_id=view.id)
        assert rollout.counts["pending"] == 2  # the rest of wave 2 waits for the rate

        driver_b = RolloutDriver(
            engine=engine,
            publisher=cloud.worker,
            base_url="http://cp",
            settings=DriverSettings(tick_s=0.05, lease_s=3.0),
            owner="b",
            clock=lambda: _now() + 61_000,
        )

        async def b_completes() -> bool:
            await driver_b.step()
            rollout = await rollouts.get_rollout(engine, rollout_id=view.id)
            return rollout.status == "completed"

        await wait_until(b_completes, timeout=60, what="instance B completes the rollout")
    assert await _owner(cloud, view.id) == "b"
    assert [len(device.desired) for device in fleet] == [1] * 6  # nothing twice, nothing lost
    assert all(device.running == "2.0.0" for device in fleet)
