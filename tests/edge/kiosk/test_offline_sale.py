"""A sale made while the broker is down shows offline with a backlog, then reaches the cloud."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from edge.ledger import Ledger
from edge.replication.replicator import Replicator
from protocols.broker_url import parse_broker_url
from tests.edge.kiosk.conftest import (
    Rig,
    screenshots,
    sign_in_and_open_shift,
    start_rig,
    tap,
    wedge_scan,
)
from tests.harness.appliance import FAST
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.services]

DEVICE = "reg-kiosk-offline"
MILK = "7610200000019"


@pytest.fixture
async def online_rig(tmp_path: Path, cloud: Cloud, mosquitto: Mosquitto) -> AsyncIterator[Rig]:
    await cloud.register(DEVICE)
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        replicator = Replicator(
            ledger=ledger, device_id=DEVICE, broker=parse_broker_url(mosquitto.url), settings=FAST
        )
        replicating = asyncio.create_task(replicator.run(), name="test-replicator")
        rig = await start_rig(tmp_path, connected=replicator.connected, ledger=ledger)
        try:
            yield rig
        finally:
            await rig.stack.aclose()
            died = replicating.done()
            replicating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replicating  # re-raises whatever stopped the replicator early
            assert not died, "the replicator stopped during the test"


async def test_offline_sale_replicates_when_the_broker_returns(
    browser: Browser, online_rig: Rig, cloud: Cloud, mosquitto: Mosquitto
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    page: Page = await context.new_page()
    await page.goto(online_rig.url)
    badge, backlog = page.get_by_test_id("link-badge"), page.get_by_test_id("backlog")
    await expect(badge).to_have_text("Online")
    await sign_in_and_open_shift(page)
    await expect(backlog).to_have_attribute("data-backlog", "0", timeout=60_000)  # acked

    mosquitto.kill()
    await expect(badge).to_have_text("Offline")
    await wedge_scan(page, MILK)
    await expect(page.get_by_test_id("line")).to_have_count(1)
    await tap(page, "pay")
    await tap(page, "pay-cash-exact")
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    await expect(backlog).to_have_attribute("data-backlog", "1")
    await expect(backlog).to_have_text("Not yet sent: 1")
    await screenshots(page, "10-offline-sale")
    sale_id = next(iter(await online_rig.ledger.sale_ids()))
    assert sale_id not in await cloud.sale_ids(DEVICE)

    mosquitto.start()
    await expect(badge).to_have_text("Online", timeout=60_000)
    await expect(backlog).to_have_attribute("data-backlog", "0", timeout=60_000)
    await wait_until(lambda: _has(cloud, sale_id), timeout=60, what="the offline sale in the cloud")
    assert (await cloud.audit(DEVICE)).ok
    kinds = [json.loads(r.record)["kind"] for r in await online_rig.ledger.read_records(1, 10)]
    assert kinds == ["shift.opened", "sale.completed"]
    await context.close()


async def _has(cloud: Cloud, sale_id: str) -> bool:
    return sale_id in await cloud.sale_ids(DEVICE)
