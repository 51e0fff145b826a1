"""A viewer in real headless Chromium: logs in on the login page, sees a device without a single
button that changes anything, is refused when their session posts a command anyway, logs out.

Screenshots: artifacts/console-viewer-device.png, artifacts/console-viewer-logged-out.png.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from control_plane.operators import service as operators
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.cloud import TENANT, Cloud
from tests.harness.control_plane import operator_settings, served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]

DEVICE = "s-test-r7"
VIEWER = "viewer@t-test.example"

#: The page's own fetch, as a person could type it in the console: a command with the session's
#: CSRF token from the page.
POST_A_COMMAND = """async (device) => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const answer = await fetch(`/api/devices/${device}/commands`, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify({name: "drawer.open", args: {reason: "viewer", by: "viewer"}}),
  });
  return {status: answer.status, body: await answer.json()};
}"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_viewer_sees_no_command_button_and_cannot_post_one(
    database_url: str, mosquitto: Mosquitto
) -> None:
    registry = Cloud(database_url=database_url, broker_url=mosquitto.url)
    await registry.open()
    await registry.register(DEVICE)
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        _, password = await operators.create_operator(
            served.app.state.engine,
            passwords=Passwords(operator_settings()),
            by=None,
            email=VIEWER,
            role=Role.VIEWER,
            tenant_id=TENANT,
            now=wall_clock_ms(),
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{served.url}/devices/{DEVICE}")  # not logged in: the login page
        await expect(page).to_have_url(f"{served.url}/login?next=/devices/{DEVICE}")
        await page.fill("input[name=email]", VIEWER)
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{served.url}/devices/{DEVICE}")

        await expect(page.locator("#presence")).to_contain_text("Presence and replication")
        await expect(page.locator("#operator")).to_contain_text(f"{VIEWER} · viewer")
        buttons = await page.locator("main button, main form").count()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-viewer-device.png", full_page=True)
        refused: dict[str, Any] = await page.evaluate(POST_A_COMMAND, DEVICE)
        sent = await page.request.post(
            f"{served.url}/api/devices/{DEVICE}/commands",
            data={"name": "printer.test_page", "args": {}},
        )  # the session without its CSRF token
        without_csrf = (sent.status, (await sent.json())["reason"])

        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_url(f"{served.url}/login")
        await page.goto(f"{served.url}/")
        await expect(page).to_have_url(f"{served.url}/login?next=/")
        await page.screenshot(path=ARTIFACTS / "console-viewer-logged-out.png", full_page=True)
        async with served.client() as api:
            commands = (await api.get(f"/api/devices/{DEVICE}/commands")).json()
    await registry.close()

    assert buttons == 0  # no command, no form: nothing on the page changes anything
    assert (refused["status"], refused["body"]["reason"]) == (403, "forbidden")
    assert "commands:send" in refused["body"]["detail"]
    assert without_csrf == (403, "csrf_refused")
    assert commands == []  # nothing reached the device
