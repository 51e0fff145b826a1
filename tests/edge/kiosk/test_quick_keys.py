"""The store configuration on the touchscreen, in real Chromium: its staff sign in with their PINs
(argon2id, checked offline) and lock after the configured wrong PINs; a sale rung by quick keys
alone; the receipt shows the configured store; an enrolled register without configuration waits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from edge.kiosk.app import create_kiosk_app
from edge.kiosk.server import serve_kiosk
from edge.ledger import Ledger
from edge.pos.applied_store import store_config_from_document
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.store_config import DEMO_CATALOG
from protocols.store_config import parse_store_config
from tests.edge.kiosk.conftest import keypad, screenshots, tap
from tests.harness.services import free_port
from tests.harness.store_config import PINS, store_config_doc

pytestmark = pytest.mark.browser


@contextlib.asynccontextmanager
async def configured_kiosk(tmp_path: Path, *, configured: bool = True) -> AsyncIterator[str]:
    """A kiosk whose register runs the test store's configuration (or none yet)."""
    async with contextlib.AsyncExitStack() as stack:
        register = None
        if configured:
            ledger = await stack.enter_async_context(
                Ledger(tmp_path / "ledger.db", register_id="1")
            )
            db = await stack.enter_async_context(RegisterDb(tmp_path / "pos.db"))
            doc = parse_store_config(store_config_doc())
            register = Register(
                ledger=ledger,
                db=db,
                config=store_config_from_document(doc, version=2),
                catalog=load_snapshot_file(DEMO_CATALOG),
            )
            await register.start()
        app = create_kiosk_app(register=register, enrolled=True, link_interval=0.05)
        port = free_port()
        await stack.enter_async_context(serve_kiosk(app, host="127.0.0.1", port=port))
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def touch(browser: Browser, tmp_path: Path) -> AsyncIterator[Page]:
    async with configured_kiosk(tmp_path) as url:
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
        page = await context.new_page()
        await page.goto(url)
        yield page
        await context.close()


async def pin(page: Page, employee: str, typed: str) -> None:
    await tap(page, f"employee-{employee}")
    await keypad(page, typed)
    await tap(page, "pad-enter-pin")


async def test_a_sale_by_quick_keys_alone(touch: Page) -> None:
    page = touch
    await expect(page.get_by_test_id("employee-C01")).to_have_text("Noracashier")
    await expect(page.get_by_test_id("employee-E01")).to_have_count(0)  # no demo staff
    await pin(page, "C01", PINS["C01"])
    await page.get_by_test_id("screen-shift").wait_for()
    await keypad(page, "100")
    await tap(page, "open-shift")

    await expect(page.get_by_test_id("quick-keys")).to_be_visible()
    await expect(page.get_by_test_id("quick-tab-Bakery")).to_have_attribute("aria-selected", "true")
    croissant = page.get_by_test_id("quick-key-SKU-00007")
    await expect(croissant).to_contain_text("Croissant")
    await expect(croissant).to_contain_text("1.60")
    await expect(croissant).to_have_css("background-color", "rgb(242, 193, 78)")
    await expect(page.get_by_test_id("quick-key-SKU-99999")).to_be_disabled()
    await croissant.tap()
    await croissant.tap()
    await tap(page, "quick-tab-Dairy")
    await tap(page, "quick-key-SKU-00001")
    await expect(page.get_by_test_id("line")).to_have_count(3)
    await expect(page.get_by_test_id("total")).to_have_text("CHF 4.95")
    await screenshots(page, "10-quick-keys")

    await tap(page, "pay")
    await tap(page, "pay-cash-exact")
    receipt = page.get_by_test_id("receipt")
    await expect(receipt).to_contain_text("Lindenhof Bakery")
    await expect(receipt).to_contain_text("Marktgasse 7")
    await expect(receipt).to_contain_text("Merci & bis bald")
    await expect(receipt).not_to_contain_text("Bahnhofstrasse")
    await screenshots(page, "11-quick-keys-receipt")


async def test_wrong_pins_lock_after_the_configured_count(touch: Page) -> None:
    page = touch
    for left in ("2 attempts left", "1 attempt left"):
        await pin(page, "C02", "0000")
        await expect(page.get_by_test_id("pin-error")).to_contain_text(left)
    await pin(page, "C02", "0000")
    await expect(page.get_by_test_id("pin-error")).to_contain_text(
        "Locked after too many wrong PINs"
    )
    await expect(page.get_by_test_id("unlock")).to_be_visible()
    await pin(page, "C02", PINS["C02"])  # the right PIN no longer helps
    await expect(page.get_by_test_id("pin-error")).to_contain_text(
        "Locked after too many wrong PINs"
    )
    await expect(page.get_by_test_id("screen-signin")).to_be_visible()


async def test_an_enrolled_register_without_configuration_waits(
    browser: Browser, tmp_path: Path
) -> None:
    async with configured_kiosk(tmp_path, configured=False) as url:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await page.goto(url)
        await expect(page.get_by_test_id("screen-config")).to_contain_text(
            "waiting for its store settings"
        )
        await expect(page.get_by_test_id("screen-signin")).to_be_hidden()
        await screenshots(page, "12-waiting-for-configuration")
        await page.close()
