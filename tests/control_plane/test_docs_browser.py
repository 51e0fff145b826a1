"""``/docs`` renders in real headless Chromium with every request outside the app refused.

The control plane's Swagger UI used to load from a CDN and showed a blank page on a machine
without internet. Here any request to another host is aborted, as it would fail offline, and
the page must still render the API: its title and an operation of each domain.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Route, expect

from control_plane.operators.principal import Role
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_docs_render_with_no_host_but_the_control_plane(
    database_url: str, mosquitto: Mosquitto
) -> None:
    elsewhere: list[str] = []
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        own = urlsplit(served.url).netloc
        refused = await page.goto(served.url + "/docs")  # the API's description: operators only
        assert refused is not None
        assert refused.status == 401
        reader = await served.log_in("docs-reader@storefleet.test", Role.PLATFORM_ADMIN)
        await page.context.add_cookies(
            [{"name": "sf_session", "value": reader.secret, "url": served.url}]
        )

        async def offline(route: Route) -> None:
            if urlsplit(route.request.url).netloc == own:
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort("internetdisconnected")

        await page.route("**/*", offline)
        await page.goto(served.url + "/docs")  # any logged-in operator reads it
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "storefleet control plane"
        )
        for path in ("/api/devices/{device_id}", "/api/enrol", "/api/catalog/snapshot"):
            await expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_have_count(
                1
            )
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "control-plane-docs.png")
    assert elsewhere == []
