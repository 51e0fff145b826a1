"""The device page in real headless Chromium, driving a real register through the commands API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import expect

from control_plane.operators.principal import Role
from tests.control_plane.commands.fleet_harness import (
    GUARD_S,
    ON_SHELF,
    book_history,
    new_device_id,
    running_register,
    running_site,
)
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.cloud import TENANT
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.browser]
SLOW_MS = 30_000  # replication and the page's 3 s refresh: only against hangs


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_device_page_runs_commands_and_shows_health_and_counts(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S * 2),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        async with (
            running_register(tmp_path, broker_url=mosquitto.url, device_id=device_id) as register,
            chromium() as browser,
        ):
            await book_history(register.ledger)
            session = await site.served.log_in("ops@t-test.example", Role.OPERATOR, TENANT)
            context = await browser.new_context(viewport={"width": 1280, "height": 1000})
            await context.add_cookies([session.cookie(site.base)])
            page = await context.new_page()
            await page.goto(site.base + "/")
            row = page.locator(f'tr[data-device="{device_id}"]')
            await expect(row.locator("td.peripherals")).not_to_have_text(
                "not reported", timeout=SLOW_MS
            )
            await row.get_by_role("link", name=device_id).click()
            await expect(page).to_have_url(f"{site.base}/devices/{device_id}")

            printer = page.locator('tr[data-peripheral="receipt-printer"]')
            await expect(printer).to_contain_text("connected", timeout=SLOW_MS)
            result = page.locator("#command-result")

            await page.get_by_role("button", name="Start count").click()
            await expect(result).to_contain_text("counting count-", timeout=SLOW_MS)
            session_id = await page.locator("#count-session").input_value()
            session = register.hub.count(session_id)
            await wait_until(lambda: session.distinct_tags == sum(ON_SHELF.values()))
            await page.get_by_role("button", name="Stop count").click()
            await expect(result).to_contain_text("counted 50, expected 48, variance +2")
            count = page.locator(f'#stock-counts .count[data-session="{session_id}"]')
            await expect(count).to_contain_text("+2", timeout=SLOW_MS)

            await page.get_by_role("button", name="Print test page").click()
            await expect(result).to_contain_text("test page sent to the printer (job")
            await expect(result).to_have_class("ok")
            await expect(page.locator("#commands tr").nth(1)).to_contain_text(
                "printer.test_page", timeout=SLOW_MS
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "console-device.png", full_page=True)

            await page.get_by_role("link", name="storefleet").click()
            await expect(row.locator("td.peripherals")).to_contain_text("ok")
            await page.screenshot(path=ARTIFACTS / "console-fleet-peripherals.png", full_page=True)
