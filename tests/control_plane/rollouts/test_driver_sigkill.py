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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.rollouts import service as rollouts
from control_plane.rollouts.driver import DriverSettings, RolloutDriver
from tests.control_plane.rollouts.conftest import TakeOver, now_ms
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[3]


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


async def test_the_driving_instance_sigkilled_mid_wave_another_continues(
    cloud: Cloud, mosquitto: Mosquitto, database_url: str, take_over: TakeOver
) -> None:
    engine, rollout_id, fleet = take_over.engine, take_over.rollout_id, take_over.fleet
    assert cloud.worker is not None
    async with instance(database_url, mosquitto.port, "a") as pid:
        await take_over.start()

        async def mid_wave() -> bool:
            told = sum(len(device.desired) for device in fleet)
            rollout = await rollouts.get_rollout(engine, rollout_id=rollout_id)
            return rollout.current_wave == 1 and told == 4  # canary + 3 of wave 2

        await wait_until(mid_wave, timeout=60, what="instance A half through wave 2")
        os.kill(pid, signal.SIGKILL)
    assert await take_over.owner() == "a"  # its lease outlives it
    rollout = await rollouts.get_rollout(engine, rollout_id=rollout_id)
    assert rollout.counts["pending"] == 2  # the rest of wave 2 waits for the rate

    driver_b = RolloutDriver(
        engine=engine,
        publisher=cloud.worker,
        base_url="http://cp",
        settings=DriverSettings(tick_s=0.05, lease_s=3.0),
        owner="b",
        clock=lambda: now_ms() + 61_000,
    )

    async def b_completes() -> bool:
        await driver_b.step()
        rollout = await rollouts.get_rollout(engine, rollout_id=rollout_id)
        return rollout.status == "completed"

    await wait_until(b_completes, timeout=60, what="instance B completes the rollout")
    assert await take_over.owner() == "b"
    assert take_over.told_once_and_running()  # nothing twice, nothing lost
