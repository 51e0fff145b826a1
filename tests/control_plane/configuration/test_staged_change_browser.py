"""A bad printer setting published through waves from the console is caught at the canary, in
real headless Chromium against the served control plane (API, ingest, configuration link, the
changes' driver) on a private Mosquitto.

Two real appliances (``python -m edge.agent`` with its register) run the store. An operator
previews a printer on a port where nothing listens, then publishes it through waves (a canary,
then the rest). The canary applies it, restarts its register, which reports the printer it
cannot reach; the gate halts; the page, following the change live, shows it halted at the canary
with the reason, the canary failed with the printer's error and the version that took the
change away; the canary's document is back to what it ran and the second register never got it.

Screenshot: artifacts/config-staged-halted.png.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.devices.state import problems
from control_plane.devices.tables import device_state
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from tests.control_plane.configuration.config_harness import seed_tenant
from tests.edge.agent.agent_process import AgentProcess
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, free_port, wait_until

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.slow]
GUARD_S = 400  # only against hangs (a loaded machine restarts a register in tens of seconds)
WAIT_MS = GUARD_S * 1000
CANARY_THEN_ALL = [{"devices": 1}, {"percent": 100}]


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


async def test_a_bad_printer_through_waves_halts_at_the_canary_in_the_console(
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
        asyncio.timeout(GUARD_S * 2),
        served_control_plane(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
            broker_url=mosquitto.url,
            rollout_tick_s=0.5,
        ) as cp,
        chromium() as browser,
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
            session = await cp.log_in("operator@waves.example", Role.OPERATOR, tenant)
            context = await browser.new_context(viewport={"width": 1280, "height": 1400})
            await context.add_cookies([session.cookie(cp.url)])  # type: ignore[list-item]
            page = await context.new_page()
            ARTIFACTS.mkdir(exist_ok=True)

            await page.goto(f"{cp.url}/config?layer=store&target={store}")
            await page.select_option("#setting-key", "printer")
            await page.fill("#setting-value", json.dumps(bad))
            await page.click("#preview-setting")
            await expect(page.locator("#config-result.preview")).to_contain_text("2 register(s)")
            await page.click("#waves-options summary")
            await page.fill("#waves-spec", json.dumps(CANARY_THEN_ALL))
            await page.fill("#health-s", "120")
            await page.click("#stage-setting")  # the page reloads and follows the change

            change = page.locator("article.staged").first
            status = change.locator(".change-status")
            await expect(status).to_have_text("halted", timeout=WAIT_MS)
            reason = change.locator(".change-reason")
            await expect(reason).to_contain_text("wave 1: 1 of 1 devices that finished failed")
            canary_row = change.locator(f'.change-devices tr[data-device="{canary}"]')
            await expect(canary_row.locator("td.state")).to_have_text("failed")
            await expect(canary_row.locator("td.detail")).to_contain_text("printer")
            await expect(canary_row.locator("td.rolled-back-to")).not_to_have_text(
                "–", timeout=WAIT_MS
            )
            second_row = change.locator(f'.change-devices tr[data-device="{second}"]')
            await expect(second_row.locator("td.state")).to_have_text("pending")
            await expect(change.locator('.change-action[data-verb="resume"]')).to_be_disabled()
            await page.screenshot(path=ARTIFACTS / "config-staged-halted.png", full_page=True)
            rolled_back_to = int(await canary_row.locator("td.rolled-back-to").inner_text())
            change_id = await change.get_attribute("data-change")
            async with engine.connect() as conn:
                ended = list(
                    await conn.execute(
                        select(audit_log.c.via, audit_log.c.after).where(
                            audit_log.c.target == f"config-change/{change_id}"
                        )
                    )
                )

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

    assert rolled_back_to == after[canary]["version"] == before[canary]["version"] + 2
    assert [(via, json.loads(body)["status"]) for via, body in ended] == [
        ("config-change", "halted")
    ]
    assert after[canary]["doc"] == before[canary]["doc"]  # the previous document, whole
    assert after[second] == before[second]  # the second register never got the change
    assert "printer" not in store_keys | canary_keys
    log = appliances[0].agent_log.read_text()
    assert f"config {before[canary]['version'] + 1} applied (restart): printer" in log
