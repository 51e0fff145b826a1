"""The appliance's presence is the agent's: online while the agent runs, whatever the register does.

Real processes: ``python -m edge.agent`` starts the register itself; a private Mosquitto carries
``status`` and ``state``; the cloud's ingest records presence on SQLite or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from control_plane.devices.tables import devices
from protocols.messages import Message, State, Status
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

from .agent_harness import control_plane, new_device_id
from .agent_process import AgentProcess

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 120  # only against hangs


async def online_in_cloud(cloud: Cloud, device_id: str) -> bool:
    assert cloud.engine is not None
    async with cloud.engine.connect() as conn:
        row = (await conn.execute(select(devices.c.online).where(devices.c.id == device_id))).one()
    return bool(row.online)


def status_or_register_down(message: Message) -> bool:
    """A status, or a state whose register is not connected and says why."""
    if isinstance(message, Status):
        return True
    register = message.peripherals.get("register", {}) if isinstance(message, State) else {}
    return register.get("connected") is False and bool(register.get("error"))


async def test_register_down_keeps_the_appliance_online_agent_down_is_offline(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Register killed (and refusing to start again): online, state says why; agent killed: the
    broker's last will says offline, and the console's device row follows both."""
    device_id = new_device_id()
    await cloud.register(device_id)
    appliance = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=device_id,
        broker_url=mosquitto.url,
        agent={"crash_loop_after": 2, "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
    )
    seen: list[Status] = []
    async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device_id) as cp:
        appliance.start()
        try:

            async def ready() -> bool:
                health = await appliance.healthz()
                return health is not None and bool(health["ready"])

            await wait_until(ready, timeout=GUARD_S, what="the register ready")
            first = await cp.next(lambda m: isinstance(m, Status))
            assert isinstance(first, Status)
            seen.append(first)
            # the register's next starts are refused (a setting it does not know), then SIGKILL
            settings = appliance.workdir / "register.json"
            broken = json.loads(settings.read_text()) | {"no_such_setting": 1}
            settings.write_text(json.dumps(broken))
            (register_pid,) = appliance.register_pids()
            os.kill(register_pid, signal.SIGKILL)
            while isinstance(down := await cp.next(status_or_register_down), Status):
                seen.append(down)
            await wait_until(
                lambda: online_in_cloud(cloud, device_id), timeout=30, what="online in the cloud"
            )
            still_answering = await cp.call("versions.report")
            assert appliance.process is not None
            appliance.process.kill()  # the agent: its link drops without a DISCONNECT
            last = await cp.next(lambda m: isinstance(m, Status))

            async def offline_in_cloud() -> bool:
                return not await online_in_cloud(cloud, device_id)

            await wait_until(offline_in_cloud, timeout=30, what="offline in the cloud")
        finally:
            appliance.stop()
    assert [s.state for s in seen] == ["online"] * len(seen)  # no offline while the agent ran
    assert isinstance(down, State)
    assert down.peripherals["register"]["connected"] is False
    assert "SIGKILL" in down.peripherals["register"]["error"]
    assert still_answering.ok, still_answering.error
    assert isinstance(last, Status)
    assert last.state == "offline"
    assert last.boot_id == first.boot_id  # the will registered by that agent's session
    assert last.versions["agent"] == first.versions["agent"]
