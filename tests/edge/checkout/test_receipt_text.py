from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.cart import Cart, PercentOff
from edge.checkout.money import CHF, JPY, KWD, Currency
from edge.checkout.receipt_text import render_receipt, render_report, render_return
from edge.checkout.returns import build_return
from edge.checkout.sale import complete_sale
from edge.checkout.shift import open_shift
from edge.checkout.tax import PricingMode
from edge.checkout.tenders import CardApproved, Payment
from edge.checkout.text_columns import columns

from .builders import APPLES, COFFEE, MANAGER, MILK, PROPERTY, T0, make_item, make_policy, sell

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
    assert all(columns(line) <= width for line in lines), text
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
        assert all(columns(line) <= width for line in text.splitlines()), text
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


CJK_NAME = "有機栽培コーヒー豆 深煎り 500グラム 袋入り"  # 44 columns in 25 characters


@pytest.mark.parametrize("width", WIDTHS)
def test_wide_characters_count_two_columns(width: int) -> None:
    cart = Cart(policy=make_policy(), cart_id="j").add_item(make_item(8, name=CJK_NAME))
    lines = render_receipt(sell(cart), width=width).splitlines()
    item = next(line for line in lines if line.endswith("4.50 A"))
    assert columns(item) == width  # amount right-aligned in printed columns, not characters
    assert item.startswith("有機栽培")
    assert "…" in item


def test_combining_marks_take_no_column() -> None:
    name = "Cafe\u0301 cre\u0300me bru\u0302le\u0301e"  # decomposed accents
    cart = Cart(policy=make_policy(), cart_id="n").add_item(make_item(8, name=name))
    lines = render_receipt(sell(cart), width=32).splitlines()
    assert "Café crème brûlée         4.50 A" in lines


def test_control_characters_in_a_name_never_break_the_line() -> None:
    cart = Cart(policy=make_policy(), cart_id="c")
    cart = cart.add_item(make_item(8, name="Tea\nbags\x1b@\u2028x"))
    text = render_receipt(sell(cart), width=42)
    assert "Tea?bags?@?x" in text
    assert "\x1b" not in text


def test_the_receipt_names_the_cashier() -> None:
    cart = Cart(policy=make_policy(), cart_id="a").add_item(COFFEE)
    text = render_receipt(sell(cart), width=42, cashier_name="Anna")
    assert "Cashier Anna" in text.splitlines()


@pytest.mark.parametrize(
    ("currency", "total"),
    [pytest.param(JPY, "1290", id="JPY"), pytest.param(KWD, "1.290", id="KWD")],
)
def test_amounts_use_the_currency_exponent(currency: Currency, total: str) -> None:
    cart = Cart(policy=make_policy(currency=currency), cart_id="x").add_item(COFFEE)
    lines = render_receipt(sell(cart), width=32).splitlines()
    assert f"TOTAL {currency.code}".ljust(32 - len(total)) + total in lines


@PROPERTY
@given(st.lists(st.text(max_size=60), min_size=1, max_size=4), st.sampled_from([32, 42, 48]))
def test_any_names_fit_the_paper(names: list[str], width: int) -> None:
    cart = Cart(policy=make_policy(), cart_id="p")
    for n, name in enumerate(names):
        cart = cart.add_item(make_item(10 + n, name=name or "x"))
    sale = sell(cart)
    text = render_receipt(sale, width=width, header=names, cashier_name=names[0])
    lines = text.splitlines()
    assert len(lines) == text.count("\n")  # no name added a line break
    assert all(columns(line) <= width for line in lines), text
