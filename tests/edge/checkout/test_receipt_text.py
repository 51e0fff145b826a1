from datetime import timedelta
from decimal import Decimal

import pytest

from edge.checkout.cart import Cart, PercentOff
from edge.checkout.money import CHF
from edge.checkout.receipt_text import render_receipt, render_report, render_return
from edge.checkout.returns import build_return
from edge.checkout.sale import complete_sale
from edge.checkout.shift import open_shift
from edge.checkout.tax import PricingMode
from edge.checkout.tenders import CardApproved, Payment

from .builders import APPLES, COFFEE, MANAGER, MILK, T0, make_item, make_policy, sell

WIDTHS = [pytest.param(w, id=f"{w}-columns") for w in (32, 42, 48)]


def a_cart() -> Cart:
    cart = Cart(policy=make_policy(), cart_id="c1")
    long_name = make_item(
        9, price_minor=99, name="A very long product name that never fits on any paper roll"
    )
    cart = cart.add_item(COFFEE, 2).add_item(APPLES, Decimal("0.512")).add_item(long_name)
    cart = cart.add_item(MILK)
    result = cart.discount_line(1, PercentOff(Decimal(5)), approval=MANAGER)
    assert isinstance(result, Cart)
    overridden = result.override_price(4, 150, approval=MANAGER)
    assert isinstance(overridden, Cart)
    return overridden


@pytest.mark.parametrize("width", WIDTHS)
def test_receipt_fits_and_says_what_was_paid(width: int) -> None:
    cart = a_cart()
    total = cart.totals().total_minor
    payment = Payment.start(due_minor=total, currency=CHF, register_id="R1", cart_id="c1")
    payment = payment.add_card(CardApproved("T9", 1000, "4242", "VISA")).add_cash(5000)
    sale = complete_sale(
        cart,
        payment,
        register_id="R1",
        receipt_number=42,
        shift_id="S1",
        cashier_id="c1",
        completed_at=T0,
    )
    text = render_receipt(sale, width=width, header=("STOREFLEET DEMO", "Bahnhofstr. 1"))
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    assert "R1-000042" in text
    assert any(line.startswith("TOTAL CHF") and line.endswith("29.00") for line in lines), text
    assert any("Card VISA ****4242" in line for line in lines)
    assert any(line.startswith("Change") and line.endswith("31.00") for line in lines), text
    assert "8.1%" in text
    assert "2.6%" in text
    assert "…" in text  # the long name was cut, the amount kept


GOLDEN_32 = """\
        STOREFLEET DEMO
--------------------------------
Receipt R1-000007
2026-11-21 09:00
Cashier c1
--------------------------------
Coffee beans 500g        12.90 A
Milk 1l                   3.30 B
  2 x 1.65
--------------------------------
Subtotal                   16.20
TOTAL CHF                  16.20
--------------------------------
Cash                       16.20
--------------------------------
Tax   rate       net         tax
B     2.6%      3.22        0.08
A     8.1%     11.93        0.97
--------------------------------
             Merci!
"""


def test_receipt_golden_32() -> None:
    cart = Cart(policy=make_policy(), cart_id="g").add_item(COFFEE).add_item(MILK, 2)
    sale = sell(cart, receipt_number=7)
    text = render_receipt(sale, width=32, header=("STOREFLEET DEMO",), footer=("Merci!",))
    assert text == GOLDEN_32


@pytest.mark.parametrize("width", WIDTHS)
def test_return_and_reports_fit(width: int) -> None:
    sale = sell(a_cart(), receipt_number=1)
    ret = build_return(
        sale,
        {1: 1},
        earlier=[],
        currency=CHF,
        return_id="r1",
        register_id="R1",
        receipt_number=2,
        shift_id="S1",
        cashier_id="c1",
        returned_at=T0,
    )
    shift, _ = open_shift(
        shift_id="S1",
        register_id="R1",
        opened_by="c1",
        opened_at=T0,
        currency="CHF",
        exponent=2,
        float_minor=10000,
    )
    shift.record(sale)
    shift.record(ret)
    x = shift.x_report(at=T0 + timedelta(hours=1))
    _, z = shift.close(counted_cash_minor=10000, by="m1", at=T0 + timedelta(hours=2))
    for text in (
        render_return(ret, width=width),
        render_report(x, width=width),
        render_report(z, width=width),
    ):
        assert all(len(line) <= width for line in text.splitlines()), text
    assert "Original R1-000001" in render_return(ret, width=width)
    assert "Z REPORT" in render_report(z, width=width)
    assert "Variance" in render_report(z, width=width)
    assert "Variance" not in render_report(x, width=width)


def test_width_is_checked() -> None:
    sale = sell(Cart(policy=make_policy(), cart_id="w").add_item(COFFEE))
    with pytest.raises(ValueError, match="width"):
        render_receipt(sale, width=40)


def test_exclusive_pricing_shows_tax_before_total() -> None:
    cart = Cart(policy=make_policy(pricing=PricingMode.EXCLUSIVE), cart_id="x").add_item(COFFEE)
    lines = render_receipt(sell(cart), width=42).splitlines()
    tax_at = next(i for i, line in enumerate(lines) if line.startswith("Tax "))
    assert lines[tax_at].endswith("1.04")
    assert lines[tax_at + 1].startswith("TOTAL CHF")
    assert lines[tax_at + 1].endswith("13.94")
