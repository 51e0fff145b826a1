"""The Alerts page's Notifications section in real headless Chromium: a tenant admin adds a
webhook channel with the form, reads its secret once, presses Send test and the local receiver
gets the signed test; the channel is listed afterwards without its secret.

Screenshot: artifacts/alerts-notifications.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from control_plane.devices import service as registry
from control_plane.notifications.transports import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from control_plane.operators.principal import Role
from tests.control_plane.alerts.receivers import webhook_receiver
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.browser]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_tenant_admin_adds_a_webhook_and_sends_a_test_from_the_console(
    database_url: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOREFLEET_CP_NOTIFY_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("STOREFLEET_CP_NOTIFY_POLL_S", "0.1")
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
        webhook_receiver() as receiver,
    ):
        await registry.create_tenant(served.app.state.engine, tenant_id="acme", name="Acme")
        admin = await served.log_in("admin@acme.example", Role.TENANT_ADMIN, tenant_id="acme")
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_cookies([admin.cookie(served.url)])  # type: ignore[list-item]
        page = await context.new_page()
        await page.goto(f"{served.url}/alerts")
        await expect(page.locator("#no-channels")).to_be_visible()

        form = page.locator("#add-channel")
        await form.locator("input[name=name]").fill("ops chat")
        await form.locator("input[name=target]").fill(receiver.url)
        await form.locator("select[name=min_severity]").select_option("critical")
        await form.locator("#save-channel").click()
        result = page.locator("#channel-result")
        await expect(result).to_contain_text("shown only now")
        secret = re.search(r"whsec_\S+", await result.inner_text())
        assert secret is not None

        await page.reload()
        channel = page.locator("#channels tr[data-channel]")
        await expect(channel).to_contain_text("critical")
        await expect(channel).to_contain_text(receiver.url)
        await channel.locator("button.test-channel").click()
        await expect(result).to_contain_text("Test queued")
        await wait_until(lambda: receiver.requests, timeout=20, what="the console's test")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "alerts-notifications.png", full_page=True)
        assert secret.group(0) not in await page.content()

    (request,) = receiver.requests
    timestamp = int(request.headers[TIMESTAMP_HEADER.lower()])
    assert verify(
        secret.group(0), timestamp, request.body, request.headers[SIGNATURE_HEADER.lower()]
    )
