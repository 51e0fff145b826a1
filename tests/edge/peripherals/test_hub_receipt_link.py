"""A customer's receipt carries the digital receipt link as a QR code on the simulated printer.

The real register prints to the raw-TCP ESC/POS printer simulator; the paper's raster is read
back and both QR codes decode: the digital receipt link and the receipt's own code.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import zxingcpp

from edge.peripherals.printer.preview import ImageRow, interpret
from protocols.customer_card import format_customer_card, new_customer_id
from protocols.loyalty import LoyaltyRules

from .printer.conftest import ARTIFACTS
from .test_hub_receipt import GUARD_S, MILK, last_sale, running_till, sell_for_cash

URL = "https://receipts.example.com/r/{sale_id}"


async def test_a_customers_receipt_prints_the_digital_receipt_link_as_a_qr_code(
    tmp_path: Path,
) -> None:
    async with asyncio.timeout(GUARD_S), running_till(tmp_path) as (register, _, run):
        register.config = replace(register.config, loyalty=LoyaltyRules(digital_receipt_url=URL))
        await register.scan(format_customer_card(new_customer_id()))
        await sell_for_cash(register, MILK, cash_minor=200)
        sale = await last_sale(register)
        await sell_for_cash(register, MILK, cash_minor=200)  # no customer: no link
        with_link, without = await run.store.printer.wait_for_jobs(2)
    link = URL.replace("{sale_id}", sale.idempotency_key)
    preview = interpret(bytes(with_link.data))
    image = preview.to_png(ARTIFACTS / "receipt-register-sale-link.png")
    codes = [r.image for r in preview.rows if isinstance(r, ImageRow) and r.image.height > 20]
    decoded = [[r.text for r in zxingcpp.read_barcodes(code)] for code in codes]
    assert decoded == [[link], ["SF1:1:000001"]]  # the link above the receipt's own code
    assert sorted(r.text for r in zxingcpp.read_barcodes(image)) == sorted([link, "SF1:1:000001"])
    plain = interpret(bytes(without.data))
    assert [r.text for r in zxingcpp.read_barcodes(plain.to_png(None))] == ["SF1:1:000002"]
