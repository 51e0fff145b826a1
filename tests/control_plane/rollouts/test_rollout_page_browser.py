"""An operator runs a rollout from the console in real headless Chromium; a viewer only looks.

The operator creates the rollout with the form (release, waves "1, 100%"), lands on its page
(waves, counts by state, every device), starts it, sees the canary notified as the driver moves
it, pauses and aborts it with the page's buttons (each sends the session's CSRF token, each is
audited). A viewer opens the same page and finds no button and no form.

Screenshots: artifacts/console-rollout-operator.png, artifacts/console-rollout-viewer.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import expect
from sqlalchemy import select

from control_plane.devices import service as registry
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from protocols.release_bundle import public_key_text
from tests.control_plane.rollouts.fleet import make_bundle
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]

KEY = Ed25519PrivateKey.generate()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_operator_runs_a_rollout_from_the_console(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with (
        served_control_plane(
            database_url=database_url,
            broker_url=mosquitto.url,
            release_keys=public_key_text(KEY.public_key()),
            release_dir=tmp_path / "releases",
            rollout_tick_s=0.1,
        ) as served,
        chromium() as browser,
    ):
        engine = served.app.state.engine
        await registry.create_tenant(engine, tenant_id="acme", name="Acme")
        await registry.create_store(engine, store_id="acme-01", tenant_id="acme", name="High St")
        for number in (1, 2, 3):
            await registry.register_device(
                engine, device_id=f"acme-01-r{number}", store_id="acme-01"
            )
        async with served.client() as admin:
            published = await admin.post("/api/releases", content=make_bundle("1.2.0", KEY))
            assert published.status_code == 201
        operator = await served.log_in("op@acme.test", Role.OPERATOR, tenant_id="acme")
        viewer = await served.log_in("viewer@acme.test", Role.VIEWER, tenant_id="acme")

        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.add_cookies([operator.cookie(served.url)])  # type: ignore[list-item]
        page = await context.new_page()
        await page.goto(f"{served.url}/rollouts")
        await expect(page.locator("#releases")).to_contain_text("1.2.0")
        await page.fill("input[name=name]", "winter")
        await page.fill("input[name=waves]", "1, 100%")
        await page.fill("input[name=soak_s]", "0")
        await page.click("#create-button")
        await page.wait_for_url(f"{served.url}/rollouts/*")
        rollout_id = page.url.rsplit("/", 1)[-1]
        await expect(page.locator("#status")).to_have_text("draft")
        await expect(page.locator("#devices tbody tr")).to_have_count(3)
        await expect(page.locator("#waves tr[data-wave='0'] .size")).to_have_text("1")

        await page.click("#start")
        await expect(page.locator("#status")).to_have_text("running")
        canary = page.locator("#devices tbody tr").first
        await expect(canary).to_contain_text("notified while offline")  # the driver moved it
        await expect(
            page.locator("#waves tr[data-wave='0'] td[data-state='notified']")
        ).to_have_text("1")
        await page.click("#pause")
        await expect(page.locator("#status")).to_have_text("paused")
        await expect(page.locator("#pause")).to_be_disabled()
        await page.click("#abort")
        await expect(page.locator("#status")).to_have_text("aborted")
        await expect(canary).to_contain_text("no rollback")  # it never reported a release
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-rollout-operator.png", full_page=True)

        watcher = await browser.new_context(viewport={"width": 1280, "height": 900})
        await watcher.add_cookies([viewer.cookie(served.url)])  # type: ignore[list-item]
        seen = await watcher.new_page()
        await seen.goto(f"{served.url}/rollouts/{rollout_id}")
        await expect(seen.locator("#status")).to_have_text("aborted")
        buttons = await seen.locator("main button, main form").count()
        await seen.goto(f"{served.url}/rollouts")
        forms = await seen.locator("main form").count()
        await seen.screenshot(path=ARTIFACTS / "console-rollout-viewer.png", full_page=True)
        async with engine.connect() as conn:
            actions = [
                row[0]
                for row in await conn.execute(
                    select(audit_log.c.action)
                    .where(audit_log.c.target == rollout_id)
                    .order_by(audit_log.c.id)
                )
            ]
    assert (buttons, forms) == (0, 0)
    assert actions == ["rollouts:create", "rollouts:start", "rollouts:pause", "rollouts:abort"]
