"""The layer editor in real headless Chromium: an operator previews a store's key and sees the
refusal an invalid value would get inline (the key and why, the registers it would break),
previews a valid one (which registers change, old → new) and publishes it to the store's
register retained, reads the register's effective document with the key's provenance and its
versions, deletes the key (it falls back to the platform default), restores the layer's earlier
version from its history (a new version, published) and adds a cashier whose PIN the page never
shows.

Screenshots: artifacts/config-editor-refused.png, artifacts/config-preview.png,
artifacts/config-effective.png, artifacts/config-history.png, artifacts/config-staff.png.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from control_plane.operators.principal import Role
from tests.control_plane.configuration.config_harness import fresh_world, migrated
from tests.control_plane.configuration.test_publisher import device, next_config
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]

PIN = "735102"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_operator_edits_a_store_layer_in_the_console(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with migrated(database_url) as engine:
        w = await fresh_world(engine)
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
        device(mosquitto, w.r1) as r1,
    ):
        served.app.state.config_link.poke()
        first = await next_config(r1)
        email = "operator@config.example"
        session = await served.log_in(email, Role.OPERATOR, w.own)
        context = await browser.new_context(viewport={"width": 1280, "height": 1000})
        await context.add_cookies([session.cookie(served.url)])  # type: ignore[list-item]
        page = await context.new_page()
        ARTIFACTS.mkdir(exist_ok=True)

        await page.goto(f"{served.url}/config?layer=store&target={w.store1}")
        await expect(page.locator("#layer-target")).to_have_text(w.store1)
        await page.select_option("#setting-key", "log_level")
        await page.fill("#setting-value", '"LOUD"')
        await page.click("#preview-setting")
        refused = page.locator("#config-result.failed")
        await expect(refused).to_contain_text("'log_level'")
        await expect(refused).to_contain_text("DEBUG")  # pydantic names the levels allowed
        await expect(page.locator("#preview-rows tr.invalid")).to_have_count(2)
        await expect(page.locator("#save-setting")).to_be_disabled()
        await page.screenshot(path=ARTIFACTS / "config-editor-refused.png", full_page=True)

        await page.fill("#setting-value", '"DEBUG"')
        await page.click("#preview-setting")
        await expect(page.locator("#config-result.preview")).to_contain_text("2 register(s)")
        previewed = page.locator(f'#preview-rows tr[data-device="{w.r1}"]')
        await expect(previewed).to_contain_text('log_level: "INFO" → "DEBUG"')
        await expect(previewed).to_contain_text(f"{first.version} → {first.version + 1}")
        await page.screenshot(path=ARTIFACTS / "config-preview.png", full_page=True)
        await page.click("#save-setting")
        await expect(page.locator("#config-result.ok")).to_contain_text("2 register(s)")
        row = page.locator('#settings tr[data-key="log_level"]')
        await expect(row).to_contain_text('"DEBUG"')
        await expect(row).to_contain_text(email)
        published = await next_config(r1)
        assert (published.version, published.doc["log_level"]) == (first.version + 1, "DEBUG")

        await page.goto(f"{served.url}/config/devices/{w.r1}")
        level = page.locator('#effective tr[data-key="log_level"]')
        await expect(level.locator("td.layer")).to_have_text(f"store {w.store1}")
        await expect(level).to_contain_text(email)
        newest = page.locator(f'#versions tr[data-version="{published.version}"]')
        await expect(newest).to_contain_text("log_level")
        await expect(newest.locator("td.cause")).to_contain_text(f"store {w.store1} version 2")
        await page.screenshot(path=ARTIFACTS / "config-effective.png", full_page=True)

        await page.goto(f"{served.url}/config?layer=store&target={w.store1}")
        await page.click('.delete-setting[data-key="log_level"]')
        await expect(page.locator("#config-result.preview")).to_contain_text("2 register(s)")
        await page.click("#save-setting")
        await expect(page.locator("#config-result.ok")).to_be_visible()
        await expect(page.locator('#settings tr[data-key="log_level"]')).to_have_count(0)
        fallen_back = await next_config(r1)
        assert fallen_back.doc["log_level"] == "INFO"
        await page.goto(f"{served.url}/config/devices/{w.r1}")
        await expect(level.locator("td.layer")).to_have_text("platform")

        # roll the store layer back to version 2 (the seed's store identity is version 1)
        await page.goto(f"{served.url}/config?layer=store&target={w.store1}")
        await page.click('.restore-version[data-version="2"]')
        await expect(previewed).to_contain_text('log_level: "INFO" → "DEBUG"')
        await page.click("#save-setting")
        await expect(page.locator("#config-result.ok")).to_contain_text("2 register(s)")
        restored = await next_config(r1)
        assert (restored.version, restored.doc["log_level"]) == (fallen_back.version + 1, "DEBUG")
        await expect(page.locator('#history tr[data-version="4"] td.kind')).to_have_text(
            "rollback of version 2"
        )
        await page.screenshot(path=ARTIFACTS / "config-history.png", full_page=True)

        await page.goto(f"{served.url}/config/stores/{w.store1}/staff")
        await page.fill("#staff-name", "Kim")
        await page.select_option("#staff-role", "cashier")
        await page.fill("#staff-pin", PIN)
        await page.click("#add-staff")
        await expect(page.locator("#members")).to_contain_text("Kim")
        await expect(page.locator("#members")).to_contain_text("cashier")
        assert PIN not in await page.content()
        await page.screenshot(path=ARTIFACTS / "config-staff.png", full_page=True)
        staffed = await next_config(r1)
        assert [m["name"] for m in staffed.doc["staff"]["members"]] == ["Kim"]
