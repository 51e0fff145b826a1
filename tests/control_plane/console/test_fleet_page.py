"""The fleet console in real headless Chromium: presence from status and last will, sales."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from control_plane.operators.principal import Role
from tests.harness.appliance import ApplianceProcess
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.cloud import TENANT, Cloud
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.browser]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_console_shows_presence_backlog_and_sales(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    registry = Cloud(database_url=database_url, broker_url=mosquitto.url)
    await registry.open()
    await registry.register("s-test-r1")
    appliance = ApplianceProcess(
        device_id="s-test-r1", ledger_path=tmp_path / "edge.db", broker_url=mosquitto.url
    )
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        appliance.start(rate=20)
        await wait_until(lambda: registry.hwm("s-test-r1"), what="first sale in the cloud")
        session = await served.log_in("ops@t-test.example", Role.OPERATOR, TENANT)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_cookies([session.cookie(served.url)])
        page = await context.new_page()
        await page.goto(served.url + "/")
        row = page.locator('tr[data-device="s-test-r1"]')
        await expect(row.locator(".badge.online")).to_have_text("online")
        await expect(page.locator("#sales tr").nth(1)).to_contain_text("s-test-r1")
        await expect(row).to_contain_text("verified")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-fleet.png", full_page=True)

        appliance.kill()  # SIGKILL: no goodbye, so the broker publishes the last will
        await expect(row.locator(".badge.offline")).to_have_text("offline", timeout=30_000)
    await registry.close()
