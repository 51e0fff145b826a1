"""The kiosk calls the register what the console calls it, and the receipt names the cashier."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from edge.pos.store_config import load_store_config
from tests.edge.kiosk.conftest import Rig, sign_in_and_open_shift, tap, wedge_scan

pytestmark = pytest.mark.browser

MILK = "7610200000019"


async def test_the_top_bar_shows_the_register_name_from_the_store_document(
    page: Page, rig: Rig
) -> None:
    config = load_store_config()
    assert config.register_name("1") == "Till 1"  # the demo's one source (the console seeds it)
    await sign_in_and_open_shift(page)
    await expect(page.locator("#store")).to_have_text(f"{config.store_name} · Till 1")


async def test_the_receipt_on_screen_names_the_cashier(page: Page, rig: Rig) -> None:
    await sign_in_and_open_shift(page)
    await wedge_scan(page, MILK)
    await tap(page, "pay")
    await tap(page, "pay-cash-exact")
    await expect(page.get_by_test_id("receipt")).to_contain_text("Cashier Anna")
    assert "Cashier Anna" in rig.printer.receipts[-1].text.splitlines()
