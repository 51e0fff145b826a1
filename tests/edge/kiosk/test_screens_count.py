"""``GET /kiosk/screens``: how many pages hold the kiosk's live WebSocket open.

The kiosk session's wrapper (edge/agent/kiosk_session.py) reads it to tell a screen that shows
the page from a browser that runs but never opened it (the twin's white screen). Here a real
Chromium opens the real page and closes it.
"""

from __future__ import annotations

import httpx
from playwright.async_api import Browser

from edge.agent.kiosk_session import open_screens
from tests.edge.kiosk.conftest import Rig
from tests.harness.services import wait_until

GUARD_S = 30  # only against hangs


async def test_the_count_follows_the_pages_open_in_a_browser(browser: Browser, rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.url) as client:

        async def screens() -> int:
            answer = await client.get("/kiosk/screens")
            assert answer.status_code == 200
            count = answer.json()["screens"]
            assert isinstance(count, int)
            return count

        async def screens_is(count: int) -> bool:
            """Both clients read ``count``: httpx and the wrapper's own (uvicorn writes the
            headers and the body apart; a client that read once got no body). Two reads, so
            while a WebSocket is closing they may differ: the wait asks again."""
            return await screens() == count and await open_screens(rig.url + "/") == count

        assert await screens_is(0)  # the register runs, no page is open
        context = await browser.new_context()
        first = await context.new_page()
        await first.goto(rig.url)
        await wait_until(lambda: screens_is(1), timeout=GUARD_S, what="one page open")
        second = await context.new_page()
        await second.goto(rig.url)
        await wait_until(lambda: screens_is(2), timeout=GUARD_S, what="two pages open")
        await first.goto("about:blank")  # navigated away: its WebSocket closes
        await wait_until(lambda: screens_is(1), timeout=GUARD_S, what="one page left")
        await context.close()
        await wait_until(lambda: screens_is(0), timeout=GUARD_S, what="no page open")
