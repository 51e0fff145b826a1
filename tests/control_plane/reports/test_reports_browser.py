"""A store owner in real headless Chromium: logs in, opens the store's day, reads the charts,
changes the range, exports a CSV — with every host but the control plane's blocked, so nothing
the page shows comes from the internet (the charts are SVG inlined by the server).

Screenshots: artifacts/reports-1280x800.png, artifacts/reports-tablet-768x1024.png.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Request, Route, expect

from control_plane.devices import service as registry
from control_plane.operators import service as operators
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from control_plane.reports.tables import money_text
from tests.control_plane.reports.seed import Seeder
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import operator_settings, served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]

OWNER = "owner@acme.example"
DAY, PREVIOUS_DAY = "2026-11-20", "2026-11-19"
START = int(datetime(2026, 11, 20, 8, 0, tzinfo=UTC).timestamp()) * 1000  # 09:00 in Zürich
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_owner_reads_the_day_changes_the_range_and_exports_csv(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        engine = served.app.state.engine
        await registry.create_tenant(engine, tenant_id="acme", name="Acme", currency="CHF")
        await registry.create_store(
            engine, store_id="acme-zh", tenant_id="acme", name="Zürich", timezone="Europe/Zurich"
        )
        await registry.register_device(engine, device_id="acme-zh-r1", store_id="acme-zh")
        seeder = Seeder(engine, "acme")
        net = await seeder.sales(
            device_id="acme-zh-r1", store_id="acme-zh", start_ms=START, count=40,
            every_ms=900_000, seed=3,
        )  # fmt: skip
        earlier = await seeder.sales(
            device_id="acme-zh-r1", store_id="acme-zh", start_ms=START - 86_400_000, count=12,
            every_ms=1_800_000, seed=4,
        )  # fmt: skip
        _, password = await operators.create_operator(
            engine, passwords=Passwords(operator_settings()), by=None, email=OWNER,
            role=Role.VIEWER, tenant_id="acme", now=wall_clock_ms(),
        )  # fmt: skip

        page = await browser.new_page(
            viewport={"width": 1280, "height": 800}, accept_downloads=True
        )
        outside: list[str] = []

        async def local_only(route: Route, request: Request) -> None:
            if urlsplit(request.url).hostname in LOCAL_HOSTS:
                await route.continue_()
            else:
                outside.append(request.url)
                await route.abort()

        await page.route("**/*", local_only)
        await page.goto(f"{served.url}/reports?first={DAY}")
        await page.fill("input[name=email]", OWNER)
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{served.url}/reports?first={DAY}")

        # the day's figures and the charts, drawn inline
        summary = page.locator("#report-summary")
        await expect(summary).to_contain_text("Net sales")
        await expect(summary).to_contain_text(money_text(net))
        trend = page.locator("#chart-trends svg")
        await expect(trend).to_be_visible()
        await expect(trend).to_contain_text("This period")
        await expect(page.locator("#chart-tenders svg")).to_contain_text("card")
        assert await page.locator("svg script").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        wide = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0
        await page.screenshot(path=ARTIFACTS / "reports-1280x800.png", full_page=True)

        # the range changed to the day before, by the form
        await page.fill("#first", PREVIOUS_DAY)
        await page.fill("#last", PREVIOUS_DAY)
        await page.click("#apply")
        await expect(page).to_have_url(
            f"{served.url}/reports?first={PREVIOUS_DAY}&last={PREVIOUS_DAY}&granularity=hour"
        )
        await expect(page.locator("#report-summary")).to_contain_text(money_text(earlier))

        # CSV of that day's summary
        async with page.expect_download() as waiting:
            await page.click("#csv-summary")
        download = await waiting.value
        text = (await download.path()).read_text(encoding="utf-8")
        assert f"CHF,Net sales,,{money_text(earlier)}" in text
        assert (
            download.suggested_filename == f"storefleet-summary-{PREVIOUS_DAY}_{PREVIOUS_DAY}.csv"
        )

        # a tablet held upright still shows every table and chart
        await page.set_viewport_size({"width": 768, "height": 1024})
        await page.goto(f"{served.url}/reports?first={DAY}")
        await expect(page.locator("#report-stores")).to_contain_text("acme-zh")
        width = await page.evaluate(
            "document.querySelector('#chart-trends svg').getBoundingClientRect().width"
        )
        assert 0 < width <= 768
        # usable: the page does not scroll sideways (a wide table scrolls inside its own box)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        await page.screenshot(path=ARTIFACTS / "reports-tablet-768x1024.png", full_page=True)

        assert outside == []
