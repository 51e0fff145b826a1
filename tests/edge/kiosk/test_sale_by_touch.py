"""A whole sale by touch in real Chromium: scan, quantity, split tender cash + card, receipt."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.edge.kiosk.conftest import (
    Rig,
    keypad,
    screenshots,
    sign_in_and_open_shift,
    start_rig,
    tap,
    wedge_scan,
)

pytestmark = pytest.mark.browser

MILK = "7610200000019"  # 1.75
COFFEE = "8711000000120"  # 12.90


async def test_split_tender_sale_by_touch(page: Page, rig: Rig) -> None:
    await expect(page.get_by_test_id("screen-signin")).to_be_visible()
    await screenshots(page, "01-signin")
    await sign_in_and_open_shift(page)

    await wedge_scan(page, MILK)
    await wedge_scan(page, COFFEE)
    await expect(page.get_by_test_id("line")).to_have_count(2)
    await keypad(page, "2")
    await page.get_by_test_id("line").first.tap()
    await tap(page, "qty")
    await expect(page.get_by_test_id("total")).to_have_text("CHF 16.40")
    await screenshots(page, "02-sale")

    await tap(page, "pay")
    await expect(page.get_by_test_id("pay-remaining")).to_have_text("16.40")
    await keypad(page, "10")
    await tap(page, "pay-cash")
    await expect(page.get_by_test_id("pay-remaining")).to_have_text("6.40")
    await expect(page.get_by_test_id("alert")).to_contain_text("Tender short")
    await screenshots(page, "03-split-tender")
    await tap(page, "pay-card")

    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    await expect(page.get_by_test_id("receipt")).to_contain_text("Receipt 1-000001")
    await expect(page.get_by_test_id("receipt")).to_contain_text("Card VISA ****4242")
    await screenshots(page, "04-receipt")

    records = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)]
    sales = [r["body"] for r in records if r["kind"] == "sale.completed"]
    assert len(sales) == 1
    assert sales[0]["total_minor"] == 1640
    assert [(t["kind"], t["amount_minor"]) for t in sales[0]["tenders"]] == [
        ("cash", 1000),
        ("card", 640),
    ]
    assert rig.terminal.charged_minor == 640
    assert rig.printer.receipts[-1].receipt_no == 1


async def test_first_run_screen_when_not_enrolled(browser: Browser, tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, enrolled=False)
    try:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await page.goto(rig.url)
        await expect(page.get_by_test_id("screen-enrol")).to_contain_text(
            "This register is not enrolled yet"
        )
        await screenshots(page, "00-not-enrolled")
        async with httpx.AsyncClient(base_url=rig.url) as client:
            refused = await client.post("/api/scan", json={"code": MILK})
        assert refused.status_code == 503
        await page.close()
    finally:
        await rig.stack.aclose()
