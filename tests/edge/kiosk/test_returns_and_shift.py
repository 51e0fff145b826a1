"""Returns against a receipt and a shift from float to Z report, by touch in real Chromium."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page, expect

from tests.edge.kiosk.conftest import (
    Rig,
    keypad,
    screenshots,
    sign_in_and_open_shift,
    tap,
    wedge_scan,
)

pytestmark = pytest.mark.browser

MILK = "7610200000019"  # 1.75
CABLE = "5000395000253"  # 14.90


async def _kinds(rig: Rig) -> list[str]:
    return [json.loads(r.record)["kind"] for r in await rig.ledger.read_records(1, 100)]


async def _sell_cash(page: Page, *codes: str) -> None:
    for code in codes:
        await wedge_scan(page, code)
    await expect(page.get_by_test_id("line")).to_have_count(len(codes))
    await tap(page, "pay")
    await tap(page, "pay-cash-exact")
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    await tap(page, "new-sale")


async def test_partial_return_against_a_receipt(page: Page, rig: Rig) -> None:
    await sign_in_and_open_shift(page)
    await _sell_cash(page, MILK, MILK, CABLE)  # 3 lines: milk, milk, cable

    await tap(page, "menu")
    await tap(page, "menu-return")
    await keypad(page, "1", within="#modal")
    await page.locator('#modal [data-key="enter"]').tap()
    await expect(page.get_by_test_id("return-line")).to_have_count(3)
    plus = page.get_by_test_id("return-plus")
    await plus.nth(2).tap()  # the cable
    await plus.nth(2).tap()  # a second cable: more than was sold
    await screenshots(page, "05-return")
    await tap(page, "refund")
    await expect(page.get_by_test_id("return-error")).to_have_text(
        "Only 1 of this line can still be returned."
    )
    assert "sale.returned" not in await _kinds(rig)

    await page.locator("#modal [data-minus='3']").tap()
    await tap(page, "refund")
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    await expect(page.get_by_test_id("receipt")).to_contain_text("RETURN")
    await expect(page.get_by_test_id("receipt")).to_contain_text("Original 1-000001")
    await expect(page.get_by_test_id("receipt")).to_contain_text("-14.90")

    records = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)]
    returns = [r["body"] for r in records if r["kind"] == "sale.returned"]
    assert len(returns) == 1
    assert returns[0]["receipt_number"] == 2
    assert returns[0]["refund_minor"] == 1490
    assert [line["line_id"] for line in returns[0]["lines"]] == [3]


async def test_shift_with_cash_moves_x_and_z_report(page: Page, rig: Rig) -> None:
    await sign_in_and_open_shift(page, float_text="150")
    await _sell_cash(page, CABLE)

    await tap(page, "menu")
    await tap(page, "menu-cash-out")
    await keypad(page, "50", within="#modal")
    await tap(page, "modal-go")
    await expect(page.get_by_test_id("screen-sale")).to_be_visible()

    await tap(page, "menu")
    await tap(page, "menu-x")
    await expect(page.get_by_test_id("receipt")).to_contain_text("X REPORT")
    await expect(page.get_by_test_id("receipt")).to_contain_text("Expected cash")
    await screenshots(page, "06-x-report")
    await tap(page, "new-sale")

    await tap(page, "menu")
    await tap(page, "menu-close")
    await keypad(page, "114.80", within="#modal")
    await tap(page, "modal-go")
    receipt = page.get_by_test_id("receipt")
    await expect(receipt).to_contain_text("Z REPORT")
    await expect(receipt).to_contain_text("Counted cash")
    await screenshots(page, "07-z-report")

    body = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)][-1]["body"]
    assert body["kind"] == "report.z"
    assert body["expected_cash_minor"] == 15000 + 1490 - 5000
    assert body["counted_cash_minor"] == 11480
    assert body["variance_minor"] == 11480 - 11490
    assert await _kinds(rig) == [
        "shift.opened",
        "sale.completed",
        "shift.cash_moved",
        "report.x",
        "shift.closed",
        "report.z",
    ]
    await tap(page, "new-sale")
    await expect(page.get_by_test_id("screen-shift")).to_be_visible()
