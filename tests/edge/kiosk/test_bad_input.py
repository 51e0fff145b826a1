"""Bad input at the till gets a clear message and books nothing (twice)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect
from prometheus_client import REGISTRY

from tests.edge.kiosk.conftest import (
    Rig,
    keypad,
    screenshots,
    sign_in,
    sign_in_and_open_shift,
    tap,
    wedge_scan,
)

pytestmark = pytest.mark.browser

MILK = "7610200000019"
REFUSED = "storefleet_register_refusals_total"


async def test_unknown_barcode_prompts_for_the_item(page: Page, rig: Rig) -> None:
    await sign_in_and_open_shift(page)
    await wedge_scan(page, "4006381333931")  # a valid EAN-13 this store does not sell
    modal = page.get_by_test_id("modal")
    await expect(modal).to_contain_text("Nothing in the catalog for 4006381333931")
    await expect(page.get_by_test_id("alert")).to_contain_text("not in the catalog")
    await screenshots(page, "08-unknown-item")
    await page.get_by_test_id("search-box").fill("avoc")
    await page.locator("#search-hits [data-item]").first.tap()
    await expect(page.get_by_test_id("line")).to_have_count(1)
    await expect(page.get_by_test_id("line")).to_contain_text("Avocado")


@pytest.mark.parametrize("quantity", ["0", "00"])
async def test_zero_quantity_is_refused(page: Page, rig: Rig, quantity: str) -> None:
    await sign_in_and_open_shift(page)
    await wedge_scan(page, MILK)
    await keypad(page, quantity)
    await tap(page, "qty")
    await expect(page.get_by_test_id("alert")).to_contain_text("is not allowed")
    await expect(page.get_by_test_id("line")).to_contain_text("1 × 1.75")


async def test_negative_quantity_is_refused_by_the_api(page: Page, rig: Rig) -> None:
    await sign_in_and_open_shift(page)
    await wedge_scan(page, MILK)
    await expect(page.get_by_test_id("line")).to_have_count(1)
    async with httpx.AsyncClient(base_url=rig.url) as client:
        answer = await client.post("/api/lines/1/quantity", json={"quantity": "-3"})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "invalid_quantity"
    await expect(page.get_by_test_id("alert")).to_contain_text("Quantity -3 is not allowed")


async def test_five_wrong_pins_lock_until_a_manager_unlocks(page: Page, rig: Rig) -> None:
    for attempt in range(5):
        await sign_in(page, pin="0000")
        expected = "Locked" if attempt == 4 else f"{4 - attempt} attempt"
        await expect(page.get_by_test_id("pin-error")).to_contain_text(expected)
    await sign_in(page, pin="1234")  # the right PIN no longer helps
    await expect(page.get_by_test_id("pin-error")).to_contain_text("Ask a manager")
    await expect(page.get_by_test_id("screen-signin")).to_be_visible()
    await screenshots(page, "09-locked-out")

    await tap(page, "unlock")
    await keypad(page, "9999", within="#modal")
    await page.locator('#modal [data-key="enter"]').tap()
    await sign_in(page, pin="1234")
    await expect(page.get_by_test_id("screen-shift")).to_be_visible()


async def test_pay_pressed_twice_books_one_sale(page: Page, rig: Rig) -> None:
    await sign_in_and_open_shift(page)
    await wedge_scan(page, MILK)
    await expect(page.get_by_test_id("line")).to_have_count(1)
    await tap(page, "pay")
    await expect(page.get_by_test_id("pay-remaining")).to_have_text("1.75")
    statuses = await page.evaluate(
        """async () => {
            const cart_id = doc.register.cart.id;
            const pay = () => fetch('/api/pay/cash', {method: 'POST',
                headers: {'content-type': 'application/json'},
                body: JSON.stringify({cart_id, received_minor: 200})});
            const answers = await Promise.all([pay(), pay()]);
            return answers.map((a) => a.status).sort();
        }"""
    )
    assert statuses == [200, 409]
    await expect(page.get_by_test_id("alert")).to_contain_text("Already paid: receipt 1-000001")
    async with httpx.AsyncClient(base_url=rig.url) as client:  # and a late third POST
        cart_id = rig.register.completed.popitem()[0]
        rig.register.remember_completed(cart_id, "1-000001")
        answer = await client.post(
            "/api/pay/cash", json={"cart_id": cart_id, "received_minor": 200}
        )
    assert answer.json()["error"]["code"] == "already_paid"
    assert len(await rig.ledger.sale_ids()) == 1
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(MILK[:-1] + "\u00b9", id="superscript-one"),
        pytest.param("\u0967\u0968\u0969\u096a", id="devanagari-digits"),
    ],
)
async def test_a_scan_of_digits_no_scanner_types_shows_the_checkout_message(
    page: Page, rig: Rig, code: str
) -> None:
    """Regression: a superscript passed str.isdigit() and the kiosk showed int()'s message."""
    message = "Barcode not recognised (not all digits 0-9). Scan again or type the code."
    await sign_in_and_open_shift(page)
    before = REGISTRY.get_sample_value(REFUSED, {"code": "unknown_item"}) or 0.0
    async with httpx.AsyncClient(base_url=rig.url) as client:
        answer = await client.post("/api/scan", json={"code": code})
    assert answer.status_code == 409
    assert REGISTRY.get_sample_value(REFUSED, {"code": "unknown_item"}) == before + 1
    assert answer.json()["error"]["message"] == message
    await expect(page.get_by_test_id("alert")).to_contain_text(message)
    await expect(page.get_by_test_id("line")).to_have_count(0)


@pytest.mark.parametrize(
    "zero",
    [
        pytest.param(0xFF10, id="fullwidth-ime"),
        pytest.param(0x06F0, id="persian-layout"),
    ],
)
async def test_a_wedge_scan_through_a_locale_layout_rings_up_the_item(
    page: Page, rig: Rig, zero: int
) -> None:
    await sign_in_and_open_shift(page)
    typed = "".join(chr(zero + int(digit)) for digit in MILK)
    async with httpx.AsyncClient(base_url=rig.url) as client:
        answer = await client.post("/api/scan", json={"code": typed})
    assert answer.status_code == 200
    await expect(page.get_by_test_id("line")).to_contain_text("1 × 1.75")


@pytest.mark.parametrize(
    "zero",
    [
        pytest.param(0xFF10, id="fullwidth-ime"),
        pytest.param(0x0660, id="arabic-indic-layout"),
    ],
)
async def test_the_screen_reads_a_wedge_typing_through_a_locale_layout(
    page: Page, rig: Rig, zero: int
) -> None:
    """Regression: the page kept only keys matching [0-9], so these scans lost every digit."""
    await sign_in_and_open_shift(page)
    # Playwright types non-US characters as text input without keydown; a wedge sends keydowns.
    keys = [chr(zero + int(digit)) for digit in MILK] + ["Enter"]
    await page.evaluate(
        """keys => { for (const key of keys)
            document.dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true})); }""",
        keys,
    )
    await expect(page.get_by_test_id("line")).to_contain_text("1 × 1.75")
