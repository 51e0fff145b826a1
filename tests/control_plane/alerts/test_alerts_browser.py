"""Fleet alerts in real headless Chromium: an operator sees a silent register and a printer out
of paper, acknowledges one (audited), reads the register's lag/backlog chart; a viewer sees the
same list without any button. Every host but the control plane's is blocked.

Screenshots: artifacts/alerts-operator.png, artifacts/alerts-viewer.png.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request, Route, expect
from sqlalchemy import select, update

from control_plane.alerts import evaluator
from control_plane.devices import service as registry
from control_plane.devices.state import apply_state
from control_plane.devices.tables import devices
from control_plane.operators import service as operators
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from protocols.messages import State
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import ServedControlPlane, operator_settings, served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]

SILENT, PRINTER = "acme-01-r1", "acme-01-r2"
OUT_OF_PAPER = {
    "device": "receipt-printer",
    "kind": "printer",
    "connected": True,
    "error": "receipt-printer: out of paper",
    "last_seen": 1_763_700_000.5,
    "detail": {"paper": "out"},
    "counters": {"jobs": 3},
}
MINUTE = 60_000


async def _logged_in(browser: Browser, served: ServedControlPlane, email: str, role: Role) -> Page:
    _, password = await operators.create_operator(
        served.app.state.engine, passwords=Passwords(operator_settings()), by=None, email=email,
        role=role, tenant_id="acme", now=wall_clock_ms(),
    )  # fmt: skip
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    outside: list[str] = []

    async def local_only(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    await page.route("**/*", local_only)
    page.outside = outside  # type: ignore[attr-defined]
    await page.goto(f"{served.url}/alerts")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{served.url}/alerts")
    return page


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_operator_acknowledges_and_a_viewer_only_reads(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        engine = served.app.state.engine
        await registry.create_tenant(engine, tenant_id="acme", name="Acme")
        await registry.create_store(engine, store_id="acme-01", tenant_id="acme", name="Main")
        for device_id in (SILENT, PRINTER):
            await registry.register_device(engine, device_id=device_id, store_id="acme-01")
        now = wall_clock_ms()
        # the silent register's history: a backlog that grew before it went quiet
        for tick, backlog in enumerate((0, 4, 9, 15)):
            at = now - (20 - tick) * MINUTE
            async with engine.begin() as conn:
                await conn.execute(
                    update(devices).values(last_seen_at=at, backlog=backlog, lag_ms=backlog * 900)
                )
            await evaluator.evaluate(engine, now_ms=at)
        async with engine.begin() as conn:
            await conn.execute(
                update(devices).where(devices.c.id == PRINTER).values(last_seen_at=now, backlog=0)
            )
        await apply_state(engine, PRINTER, State(peripherals={"receipt-printer": OUT_OF_PAPER}))
        await evaluator.evaluate(engine, now_ms=now)

        page = await _logged_in(browser, served, "op@acme.example", Role.OPERATOR)
        silent = page.locator(f'tr[data-kind="silent"][data-device="{SILENT}"]')
        printer = page.locator(f'tr[data-kind="printer"][data-device="{PRINTER}"]')
        await expect(silent).to_contain_text("nothing heard for")
        await expect(printer).to_contain_text("receipt-printer: out of paper")
        await expect(page.locator("#history-chart svg")).to_contain_text("backlog")
        await printer.locator("button.ack").click()
        await expect(printer).to_contain_text("acknowledged by op@acme.example")
        await expect(printer.locator("button.ack")).to_have_count(0)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "alerts-operator.png", full_page=True)
        async with engine.connect() as conn:
            acked = (
                (
                    await conn.execute(
                        select(audit_log.c.actor).where(audit_log.c.action == "alerts:ack")
                    )
                )
                .scalars()
                .all()
            )
        assert acked == ["op@acme.example"]

        viewer = await _logged_in(browser, served, "viewer@acme.example", Role.VIEWER)
        await expect(viewer.locator("tr[data-kind=silent]")).to_have_count(1)
        await expect(viewer.locator("button.ack")).to_have_count(0)
        await viewer.screenshot(path=ARTIFACTS / "alerts-viewer.png", full_page=True)
        # the list exports as CSV, as every table of the console does
        async with viewer.expect_download() as waiting:
            await viewer.click("#csv-alerts")
        exported = (await (await waiting.value).path()).read_text(encoding="utf-8")
        assert f"silent,{SILENT},acme-01" in exported
        assert f"printer,{PRINTER},acme-01" in exported
        # on a tablet held upright the page does not scroll sideways (wide tables scroll inside)
        await viewer.set_viewport_size({"width": 768, "height": 1024})
        await viewer.reload()
        await expect(viewer.locator("#history-chart svg")).to_be_visible()
        overflow = await viewer.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        await viewer.screenshot(path=ARTIFACTS / "alerts-tablet-768x1024.png", full_page=True)
        await viewer.set_viewport_size({"width": 1280, "height": 800})

        # the printer has paper again: the alert clears by itself
        fixed = OUT_OF_PAPER | {"error": None}
        await apply_state(engine, PRINTER, State(peripherals={"receipt-printer": fixed}))
        await evaluator.evaluate(engine, now_ms=now + MINUTE)
        await viewer.reload()
        await expect(viewer.locator("tr[data-kind=printer]")).to_have_count(0)
        assert page.outside == viewer.outside == []  # type: ignore[attr-defined]
