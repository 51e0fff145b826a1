"""An OS update reverted on the appliance reaches the fleet as a failure (issue 15), end to end.

Real parts: Mosquitto, the control plane served by uvicorn (API and ingest, SQLite), and the fleet
agent as the appliance runs it (``python -m edge.agent``, which starts the register). The boot
state is what the image's own ``slot state`` writes after systemd-boot fell back from a slot
whose one try failed (tests/edge/agent/test_os_update.py's ``Board``). The agent says
``os.update`` ``reverted`` on MQTT, and the control plane shows the device's ``os`` entry with
the revert as its error and among its problems, and the console's device page says it; after a
good update is committed the error is gone and the update reads ``succeeded``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from control_plane.devices import service as registry
from protocols.messages import Event
from protocols.release_bundle import ReleaseProgress
from protocols.vocabulary import EventKind
from tests.edge.agent.agent_harness import control_plane, new_device_id
from tests.edge.agent.agent_process import AgentProcess
from tests.edge.agent.test_os_update import Board
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services]
GUARD_S = 180  # only against hangs (the agent and its register start slowly on a loaded host)
STORE, TENANT = "os-01", "os"


async def reported_os(cp: ServedControlPlane, device_id: str) -> tuple[dict[str, Any], list[str]]:
    """The device's ``os`` entry and problems as the control plane's API answers them."""
    async with cp.client() as admin:
        answer = await admin.get(f"/api/devices/{device_id}/state")
    if answer.status_code == 404:
        return {}, []
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["peripherals"].get("os", {}), body["problems"]


async def test_a_reverted_os_update_is_a_failure_in_the_cloud(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    device_id = new_device_id()
    board = Board(tmp_path / "board")
    board.installed("b", "2026.12.1-broken", "2026.12.1-broken@1765000000")
    board.entries("storefleet-a.conf", "storefleet-b+0-1.conf")  # B's one try failed
    board.write_state()
    app = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=device_id,
        broker_url=mosquitto.url,
        agent={"os_boot_state": str(board.state), "state_interval_s": 2.0},
    )
    async with (
        served_control_plane(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
            broker_url=mosquitto.url,
        ) as cp,
        control_plane(mosquitto.url, device_id) as wire,
    ):
        engine = cp.app.state.engine
        await registry.create_tenant(engine, tenant_id=TENANT, name="OS")
        await registry.create_store(engine, store_id=STORE, tenant_id=TENANT, name="Main St")
        await registry.register_device(engine, device_id=device_id, store_id=STORE)
        app.start()
        try:
            async with asyncio.timeout(GUARD_S):
                event = await wire.next(
                    lambda m: isinstance(m, Event) and m.kind == EventKind.OS_UPDATE
                )
                assert isinstance(event, Event)
                said = ReleaseProgress.model_validate(event.body)
                assert (said.version, said.state.value) == ("2026.12.1-broken", "reverted")

                async def revert_shown() -> bool:
                    entry, _ = await reported_os(cp, device_id)
                    return entry.get("detail", {}).get("update") == "reverted"

                await wait_until(revert_shown, timeout=GUARD_S, what="the revert in the API")
                entry, problems = await reported_os(cp, device_id)
                assert entry["detail"]["slot"] == "a"
                assert entry["detail"]["update_version"] == "2026.12.1-broken"
                assert "OS update 2026.12.1-broken reverted" in entry["error"]
                assert any(
                    p.startswith("os: OS update 2026.12.1-broken reverted") for p in problems
                )
                async with cp.client() as admin:
                    page = await admin.get(f"/devices/{device_id}")  # the console's device page
                assert page.status_code == 200, page.text[:500]
                assert '"badge alert">update 2026.12.1-broken reverted</span>' in page.text
                # the stored os.update events: the last one, a failure
                assert (
                    'id="os-last-update">2026.12.1-broken <span class="badge alert">reverted</span>'
                    in page.text
                )

                # a good update: B installed again, booted on its try, committed by the boot
                # loader once healthy; the agent sees the new boot state (the image rewrites it)
                board.installed("b", "2026.12.2", "2026.12.2@1765000100")
                board.boot("b", version="2026.12.2")
                board.entries("storefleet-a.conf", "storefleet-b.conf")
                board.write_state()
                event = await wire.next(
                    lambda m: isinstance(m, Event) and m.kind == EventKind.OS_UPDATE
                )
                assert isinstance(event, Event)
                said = ReleaseProgress.model_validate(event.body)
                assert (said.version, said.state.value) == ("2026.12.2", "succeeded")

                async def committed_shown() -> bool:
                    entry, _ = await reported_os(cp, device_id)
                    return entry.get("detail", {}).get("update") == "succeeded"

                await wait_until(committed_shown, timeout=GUARD_S, what="the commit in the API")
                entry, problems = await reported_os(cp, device_id)
                assert entry["error"] is None
                assert entry["detail"]["version"] == "2026.12.2"
                assert not any(p.startswith("os:") for p in problems)
                async with cp.client() as admin:
                    page = await admin.get(f"/devices/{device_id}")
                assert '"badge healthy">update committed</span>' in page.text
                assert (
                    'id="os-last-update">2026.12.2 <span class="badge healthy">succeeded</span>'
                    in page.text
                )
                assert "reverted" not in page.text
        finally:
            app.stop()
