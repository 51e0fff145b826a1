"""A control plane SIGKILLed in the middle of a change's wave: another resumes where it was.

Instance A is a real ``storefleet-cloud serve`` process (API, ingest, configuration link and the
changes' driver) on PostgreSQL and a private Mosquitto; three simulated appliances (the agent's
own configuration code) apply what it publishes and report it. A drives a store's change through
a canary and a second wave and is killed with SIGKILL while the second wave's registers are
notified but not yet through their health window. Its lease outlives it, so nobody drives the
change until it expires; then instance B (the test's served control plane, started after the
kill) takes the lease and completes the change from the database: the canary and the second
wave are not notified again (each register's layer was set once and its document moved one
version), the change lands on the store layer and every appliance runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service, staged
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.configuration.tables import config_change_leases, config_layer_versions
from control_plane.db.engine import make_engine, migrate
from control_plane.rollouts.model import WaveIn
from tests.control_plane.configuration.config_harness import ANA, seed_tenant
from tests.edge.agent.configuration.simulated_fleet import simulated_fleet
from tests.harness.control_plane import served_control_plane
from tests.harness.services import (
    Mosquitto,
    create_pg_database,
    drop_pg_database,
    free_port,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
GUARD_S = 120  # only against hangs
TENANT = "kill"
STORE = f"{TENANT}-01"
REGISTERS = [f"{STORE}-r{r}" for r in (1, 2, 3)]
LEASE_S = 3.0


def _log_file(workdir: Path) -> BinaryIO:
    """The process's working directory, made, and its log file there."""
    workdir.mkdir(parents=True, exist_ok=True)
    return (workdir / "serve.log").open("wb")


@contextlib.asynccontextmanager
async def instance(workdir: Path, database_url: str, broker_url: str) -> AsyncIterator[int]:
    """Another control plane, as its own process (``storefleet-cloud serve``); its pid."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STOREFLEET_CP_DATABASE_URL": database_url,
        "STOREFLEET_CP_BROKER_URL": broker_url,
        "STOREFLEET_CP_PORT": str(port),
        "STOREFLEET_CP_ROLLOUT_TICK_S": "0.2",
        "STOREFLEET_CP_ROLLOUT_LEASE_S": str(LEASE_S),
    }
    with _log_file(workdir) as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "control_plane.cli", "serve",
            cwd=workdir, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:

        async def answers() -> bool:
            if process.returncode is not None:
                raise AssertionError((workdir / "serve.log").read_text()[-3000:])
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"http://127.0.0.1:{port}/healthz")).is_success
            except httpx.HTTPError:
                return False

        await wait_until(answers, timeout=GUARD_S, interval=0.2, what="instance A serving")
        yield process.pid
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _lease_owner(engine: AsyncEngine, change_id: str) -> str | None:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(config_change_leases.c.owner).where(
                config_change_leases.c.change_id == change_id
            )
        )
    return None if found is None else str(found)


async def _register_edits(engine: AsyncEngine, device_id: str) -> list[str]:
    """The kinds of change the register's own layer went through, in order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(config_layer_versions.c.kind)
            .where(
                config_layer_versions.c.layer == Layer.REGISTER.value,
                config_layer_versions.c.target == device_id,
            )
            .order_by(config_layer_versions.c.version)
        )
        return [row.kind for row in rows]


def _applied(data_root: Path, device_id: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (data_root / device_id / "config" / "applied.json").read_text()
    )
    return found


async def test_a_control_plane_killed_mid_wave_is_resumed_where_it_was_by_another(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    url = await create_pg_database()
    engine = make_engine(url)
    sim = tmp_path / "sim"
    try:
        await migrate(engine)
        await seed_tenant(engine, TENANT, stores=1, registers=3)

        async def in_step(device_id: str) -> bool:
            desired = (await device_configuration(engine, device_id=device_id)).version
            path = sim / device_id / "config" / "applied.json"
            return path.exists() and _applied(sim, device_id)["version"] == desired

        async with (
            asyncio.timeout(GUARD_S * 3),
            simulated_fleet(REGISTERS, broker_url=mosquitto.url, data_root=sim),
        ):
            async with instance(tmp_path / "a", url, mosquitto.url) as pid:
                for device in REGISTERS:
                    await wait_until(
                        lambda d=device: in_step(d),  # type: ignore[misc]
                        timeout=GUARD_S,
                        what=f"{device} running its document from instance A",
                    )
                before = {d: _applied(sim, d) for d in REGISTERS}
                change = await staged.start_change(
                    engine,
                    actor=ANA,
                    layer=Layer.STORE,
                    target=STORE,
                    key="log_level",
                    value="DEBUG",
                    waves=[WaveIn(devices=1), WaveIn(percent=100)],
                    health_s=5,
                )

                async def second_wave_notified() -> bool:
                    seen = await staged.get_change(engine, change_id=change.id)
                    second = [d for d in seen.devices if d.wave == 1]
                    return seen.current_wave == 1 and all(
                        d.state in ("notified", "applied") for d in second
                    )

                await wait_until(
                    second_wave_notified, timeout=GUARD_S, what="A notifying the second wave"
                )
                os.kill(pid, signal.SIGKILL)
            killed_owner = await _lease_owner(engine, change.id)
            mid = await staged.get_change(engine, change_id=change.id)

            async with served_control_plane(
                database_url=url,
                broker_url=mosquitto.url,
                rollout_tick_s=0.2,
                rollout_lease_s=LEASE_S,
            ) as cp:
                driver_b = cp.app.state.config_change_driver

                async def completed() -> bool:
                    seen = await staged.get_change(engine, change_id=change.id)
                    return seen.status in ("completed", "halted")

                await wait_until(completed, timeout=GUARD_S, what="instance B completing it")
                done = await staged.get_change(engine, change_id=change.id)
                b_owner = await _lease_owner(engine, change.id)
                for device in REGISTERS:
                    await wait_until(
                        lambda d=device: in_step(d),  # type: ignore[misc]
                        timeout=GUARD_S,
                        what=f"{device} running the change",
                    )
                after = {d: _applied(sim, d) for d in REGISTERS}
                edits = {d: await _register_edits(engine, d) for d in REGISTERS}
                store_keys = {
                    s.key
                    for s in await service.layer_settings(engine, layer=Layer.STORE, target=STORE)
                }
    finally:
        await engine.dispose()
        await drop_pg_database(url)

    assert killed_owner is not None
    assert killed_owner.startswith("config-")
    assert (mid.status, mid.current_wave) == ("running", 1)
    assert {d.state for d in mid.devices if d.wave == 1} <= {"notified", "applied"}
    assert b_owner == driver_b.owner != killed_owner
    assert done.status == "completed", done.reason
    assert [d.state for d in done.devices] == ["succeeded"] * 3
    # nothing notified twice: each register's layer set once (and emptied at the end), each
    # document one version further, whoever drove it
    assert edits == {d: ["set", "delete"] for d in REGISTERS}
    assert all(d.version == before[d.device_id]["version"] + 1 for d in done.devices)
    assert {d: after[d]["version"] for d in REGISTERS} == {
        d: before[d]["version"] + 1 for d in REGISTERS
    }
    assert {after[d]["doc"]["log_level"] for d in REGISTERS} == {"DEBUG"}
    assert "log_level" in store_keys
