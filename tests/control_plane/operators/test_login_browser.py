"""The login pages in Debian's Chromium: an admin sets up TOTP and logs in; a lockout is shown;
an idle session expires and its console page sends the browser back to the login.

Screenshots: artifacts/operators-totp-enrolment.png, operators-lockout.png,
operators-session-expired.png.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

from control_plane.operators import totp
from control_plane.operators.principal import Role
from tests.control_plane.operators.trust_harness import Trust, trust_on
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.services import free_port

pytestmark = [pytest.mark.services, pytest.mark.browser]


@pytest.fixture
async def served(store_url: str) -> AsyncIterator[tuple[Trust, str]]:
    """The operators domain served by uvicorn on loopback."""
    async with trust_on(store_url) as trust:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(trust.app, host="127.0.0.1", port=port, log_level="warning")
        )
        task = asyncio.create_task(server.serve(), name="operators-app")
        async with asyncio.timeout(20):
            while not server.started:
                assert not task.done(), "the app exited at start"
                await asyncio.sleep(0.02)
        try:
            yield trust, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


async def test_an_admin_scans_the_totp_qr_enters_the_code_and_is_logged_in(
    served: tuple[Trust, str],
) -> None:
    trust, url = served
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{url}/login?next=/api/auth/me")
        await page.fill("input[name=email]", "boss@acme.example")
        await page.fill("input[name=password]", trust.passwords["boss@acme.example"])
        await page.click("button[type=submit]")
        await page.wait_for_selector("#totp-qr svg")
        seed = (await page.text_content("#totp-seed") or "").strip()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "operators-totp-enrolment.png", full_page=True)
        await page.fill("input[name=code]", totp.code_at(seed, now_ms=trust.clock.now()))
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/api/auth/me")
        body = await page.text_content("body") or ""
        cookies = await page.context.cookies()

    assert seed == await trust.totp_seed("boss@acme.example")
    assert '"email":"boss@acme.example"' in body
    [session] = [c for c in cookies if c["name"] == "sf_session"]
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"


async def test_five_wrong_passwords_show_the_lockout_on_the_page(
    served: tuple[Trust, str],
) -> None:
    trust, url = served
    await trust.operator("ops@acme.example", Role.OPERATOR)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{url}/login")
        for _ in range(6):
            await page.fill("input[name=email]", "ops@acme.example")
            await page.fill("input[name=password]", "not the password")
            await page.click("button[type=submit]")
            await page.wait_for_selector("#error")
        message = await page.text_content("#error") or ""
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "operators-lockout.png", full_page=True)

    assert "too many failed logins" in message


async def test_an_idle_session_expires_and_its_page_sends_the_browser_to_the_login(
    served: tuple[Trust, str],
) -> None:
    """What a person sees when the session ended while the tab stayed open: the reload asks
    for the password again and the page's content is not shown."""
    trust, url = served
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    idle_s = trust.gatekeeper.settings.session_idle_ms / 1000
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{url}/audit")
        await page.wait_for_url(f"{url}/login?next=/audit")
        await page.fill("input[name=email]", "boss@acme.example")
        await page.fill("input[name=password]", trust.passwords["boss@acme.example"])
        await page.click("button[type=submit]")
        await page.wait_for_selector("#totp-seed")
        seed = (await page.text_content("#totp-seed") or "").strip()
        await page.fill("input[name=code]", totp.code_at(seed, now_ms=trust.clock.now()))
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/audit")
        signed_in = await page.locator("input[name=password]").count()

        trust.clock.advance(seconds=idle_s + 1)
        await page.reload()
        await page.wait_for_url(f"{url}/login?next=/audit")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "operators-session-expired.png", full_page=True)
        asked_again = await page.locator("input[name=password]").count()

    assert (signed_in, asked_again) == (0, 1)
