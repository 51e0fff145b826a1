"""A configuration change published through waves and gates (control_plane/configuration/
staged.py), against the served control plane (API, ingest, configuration link) on a private
Mosquitto.

A bad printer setting is caught at the canary: two real appliances (``python -m edge.agent``
with its register); the canary applies the change, restarts its register, which reports the
printer it cannot reach; the gate halts, the canary's document returns to what it ran before and
the second register never gets the change. A good change passes the canary and the next wave
(here simulated appliances: the agent's own configuration code, tests/edge/agent/configuration/
simulated_fleet.py) and ends on the layer it was meant for.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.configuration.staged import StagedSettings, publish_in_waves
from control_plane.devices.state import problems
from control_plane.devices.tables import device_state
from control_plane.rollouts.model import WaveIn
from tests.control_plane.configuration.config_harness import ANA, seed_tenant
from tests.edge.agent.agent_process import AgentProcess
from tests.edge.agent.configuration.simulated_fleet import simulated_fleet
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, free_port, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 400  # only against hangs (a loaded machine restarts a register in tens of seconds)
CANARY_THEN_ALL = [WaveIn(devices=1), WaveIn(percent=100)]


async def reported(engine: AsyncEngine, device_id: str) -> tuple[int, dict[str, Any]]:
    """The config version and peripherals the device last reported (0, {} before any)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(device_state).where(device_state.c.device_id == device_id))
        ).first()
    return (0, {}) if row is None else (row.config_version, json.loads(row.peripherals))


async def runs_desired(engine: AsyncEngine, device_id: str) -> bool:
    """It reports the version the control plane wants, every peripheral well."""
    version, peripherals = await reported(engine, device_id)
    desired = (await device_configuration(engine, device_id=device_id)).version
    return version == desired and not problems(peripherals)


def applied(appliance: AgentProcess) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((appliance.data_dir / "config" / "applied.json").read_text())
    return found


async def layer_keys(engine: AsyncEngine, layer: Layer, target: str) -> set[str]:
    return {s.key for s in await service.layer_settings(engine, layer=layer, target=target)}


async def test_a_bad_printer_setting_is_caught_at_the_canary_and_rolled_back(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    tenant = f"st{uuid.uuid4().hex[:8]}"
    store, canary, second = f"{tenant}-01", f"{tenant}-01-r1", f"{tenant}-01-r2"
    appliances = [
        AgentProcess(
            workdir=tmp_path / device[-2:],  # <workdir>/data/run/agent.sock fits 107 bytes
            device_id=device,
            broker_url=mosquitto.url,
            agent={
                "state_interval_s": 60.0,
                "heartbeat_timeout_s": 60.0,
                "start_timeout_s": 180.0,
            },
        )
        for device in (canary, second)
    ]
    nobody = free_port()  # no printer listens there
    bad = {"connector": "network", "host": "127.0.0.1", "port": nobody, "paper_width_mm": 80}
    async with (
        asyncio.timeout(GUARD_S),
        served_control_plane(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}", broker_url=mosquitto.url
        ) as cp,
    ):
        engine = cp.app.state.engine
        await seed_tenant(engine, tenant, stores=1, registers=2)
        cp.app.state.config_link.poke()
        for appliance in appliances:
            appliance.start()
        try:
            for device in (canary, second):
                await wait_until(
                    lambda d=device: runs_desired(engine, d),  # type: ignore[misc]
                    timeout=GUARD_S,
                    what=f"{device} running its document, healthy",
                )
            before = {a.device_id: applied(a) for a in appliances}
            outcome = await publish_in_waves(
                engine,
                actor=ANA,
                layer=Layer.STORE,
                target=store,
                key="printer",
                value=bad,
                waves=CANARY_THEN_ALL,
                poke=cp.app.state.config_link.poke,
                settings=StagedSettings(tick_s=0.5, health_s=120.0, deadline_s=300.0),
            )
            rolled_back_to = outcome.device(canary).rolled_back_to
            await wait_until(
                lambda: runs_desired(engine, canary),
                timeout=GUARD_S,
                what="the canary back on its previous document, healthy",
            )
            after = {a.device_id: applied(a) for a in appliances}
            store_keys = await layer_keys(engine, Layer.STORE, store)
            canary_keys = await layer_keys(engine, Layer.REGISTER, canary)
        finally:
            for appliance in appliances:
                appliance.stop()

    assert outcome.status == "halted"
    assert outcome.reason.startswith("1 of 1 devices that finished failed")
    assert outcome.device(canary).state == "failed"
    assert "printer" in outcome.device(canary).detail
    assert outcome.device(second).state == "pending"  # never notified
    assert rolled_back_to == after[canary]["version"] == before[canary]["version"] + 2
    assert after[canary]["doc"]["printer"] == before[canary]["doc"]["printer"]
    assert after[canary]["doc"] == before[canary]["doc"]  # the previous document, whole
    assert after[second] == before[second]  # the second register never got the change
    assert "printer" not in store_keys | canary_keys
    log = appliances[0].agent_log.read_text()
    assert f"config {before[canary]['version'] + 1} applied (restart): printer" in log


async def test_a_good_change_passes_every_wave_and_lands_on_its_layer(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    tenant = f"sg{uuid.uuid4().hex[:8]}"
    async with (
        asyncio.timeout(GUARD_S),
        served_control_plane(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}", broker_url=mosquitto.url
        ) as cp,
    ):
        engine = cp.app.state.engine
        await seed_tenant(engine, tenant, stores=2, registers=2)
        cp.app.state.config_link.poke()
        ids = [f"{tenant}-0{s}-r{r}" for s in (1, 2) for r in (1, 2)]
        sim = tmp_path / "sim"
        async with simulated_fleet(ids, broker_url=mosquitto.url, data_root=sim) as sims:
            for device in ids:
                await wait_until(
                    lambda d=device: runs_desired(engine, d),  # type: ignore[misc]
                    timeout=GUARD_S,
                    what=f"{device} running its document",
                )
            outcome = await publish_in_waves(
                engine,
                actor=ANA,
                layer=Layer.TENANT,
                target=tenant,
                key="log_level",
                value="DEBUG",
                waves=[WaveIn(devices=1), WaveIn(percent=50), WaveIn(percent=100)],
                poke=cp.app.state.config_link.poke,
                settings=StagedSettings(tick_s=0.2, health_s=0.5, deadline_s=120.0),
            )
            for device in ids:
                await wait_until(
                    lambda d=device: runs_desired(engine, d),  # type: ignore[misc]
                    timeout=GUARD_S,
                    what=f"{device} running the change",
                )
            levels = {s.device_id: _applied_level(sim / s.device_id) for s in sims}
            tenant_keys = await layer_keys(engine, Layer.TENANT, tenant)
            register_keys = [await layer_keys(engine, Layer.REGISTER, d) for d in ids]
            views = [await device_configuration(engine, device_id=d) for d in ids]

    assert outcome.status == "completed", outcome.reason
    assert [d.wave for d in outcome.devices] == [0, 1, 2, 2]
    assert {d.state for d in outcome.devices} == {"succeeded"}
    assert set(levels.values()) == {"DEBUG"}
    assert "log_level" in tenant_keys
    assert all("log_level" not in keys for keys in register_keys)
    provenance = {k.provenance.layer for v in views for k in v.keys if k.key == "log_level"}
    assert provenance == {Layer.TENANT}


def _applied_level(data_dir: Path) -> str:
    level: str = json.loads((data_dir / "config" / "applied.json").read_text())["doc"]["log_level"]
    return level
