"""The console's audit page in real headless Chromium: a tenant admin finds an operator's change
(and a refused attempt) by who, what and day, and downloads exactly that as CSV; an operator may
not open the page.

Screenshot: artifacts/console-audit.png.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from playwright.async_api import expect

from control_plane.operators.principal import Role
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.cloud import TENANT, Cloud
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]

DEVICE = "s-test-r8"
ADMIN = "admin@t-test.example"
OPERATOR = "operator@t-test.example"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_admin_searches_the_audit_log_and_exports_it(
    database_url: str, mosquitto: Mosquitto
) -> None:
    registry = Cloud(database_url=database_url, broker_url=mosquitto.url)
    await registry.open()
    await registry.register(DEVICE)
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        admin = await served.log_in(ADMIN, Role.TENANT_ADMIN, tenant_id=TENANT)
        operator = await served.log_in(OPERATOR, Role.OPERATOR, tenant_id=TENANT)
        async with served.anonymous(
            cookies={"sf_session": operator.secret}, headers={"X-CSRF-Token": operator.csrf}
        ) as console:
            sent = await console.post(
                f"/api/devices/{DEVICE}/commands", json={"name": "printer.test_page", "args": {}}
            )
            forbidden = await console.post("/api/tenants", json={"id": "mine", "name": "Mine"})
        today = datetime.now(UTC).date()

        context = await browser.new_context(accept_downloads=True)
        await context.add_cookies([admin.cookie(served.url)])
        page = await context.new_page()
        await page.set_viewport_size({"width": 1400, "height": 900})
        await page.goto(f"{served.url}/")
        await page.click("#nav-audit")
        await expect(page).to_have_url(f"{served.url}/audit")
        await page.fill("#actor", OPERATOR)
        await page.fill("#first", str(today))
        await page.fill("#last", str(today))
        await page.click("#search-button")
        await expect(page.locator("tr[data-entry]").first).to_be_visible()
        shown = await page.locator("tr[data-entry]").evaluate_all(
            "rows => rows.map(r => [r.dataset.action, r.dataset.outcome])"
        )
        target = await page.locator("tr[data-action='commands:send'] td").nth(4).inner_text()
        await page.select_option("#outcome", "refused")
        await page.click("#search-button")
        await expect(page).to_have_url(re.compile(r"outcome=refused"))  # the new page, not the old
        refused = await page.locator("tr[data-entry]").evaluate_all(
            "rows => rows.map(r => r.dataset.action)"
        )
        await page.select_option("#outcome", "")
        await page.fill("#action", "commands:send")
        await page.click("#search-button")
        await expect(page).to_have_url(re.compile(r"action=commands"))
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-audit.png", full_page=True)
        async with page.expect_download() as downloading:
            await page.click("#csv")
        download = await downloading.value
        exported = list(csv.DictReader(io.StringIO((await download.path()).read_text())))
        await page.goto(f"{served.url}/audit?first={today}&last={today}&actor=nobody@x.example")
        nothing = await page.locator("#no-entries").inner_text()

        viewer_context = await browser.new_context()
        await viewer_context.add_cookies([operator.cookie(served.url)])
        as_operator = await (await viewer_context.new_page()).goto(f"{served.url}/audit")
    await registry.close()

    assert (sent.status_code, forbidden.status_code) == (202, 403)
    assert ["commands:send", "ok"] in shown
    assert ["tenants:write", "refused"] in shown
    assert target == f"POST /api/devices/{DEVICE}/commands"
    assert refused == ["tenants:write"]
    assert [(row["actor"], row["action"], row["outcome"]) for row in exported] == [
        (OPERATOR, "commands:send", "ok")
    ]
    assert exported[0]["tenant_id"] == TENANT
    assert nothing == "No entry matches."
    assert as_operator is not None
    assert as_operator.status == 403
