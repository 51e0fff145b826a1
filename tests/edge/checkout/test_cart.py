from decimal import Decimal

import pytest
from hypothesis import given

from edge.checkout.barcodes import gs1_check_digit, parse_barcode
from edge.checkout.cart import AmountOff, Cart, PercentOff
from edge.checkout.catalog import SoldBy
from edge.checkout.errors import InvalidDiscount, InvalidQuantity, UnknownLine
from edge.checkout.staff import ApprovalRequired, Role
from edge.checkout.tax import PricingMode

from .builders import (
    APPLES,
    CASHIER,
    COFFEE,
    MANAGER,
    MILK,
    PROPERTY,
    carts,
    make_item,
    make_policy,
)


def new_cart() -> Cart:
    return Cart(policy=make_policy(), cart_id="cart-1")


@PROPERTY
@given(carts())
def test_totals_never_create_or_lose_a_cent(cart: Cart) -> None:
    totals = cart.totals()
    lines = totals.lines
    assert totals.subtotal_minor == sum(t.gross_minor for t in lines)
    assert totals.line_discount_minor == sum(t.line_discount_minor for t in lines)
    assert totals.basket_discount_minor == sum(t.basket_discount_minor for t in lines)
    for t in lines:
        assert t.gross_minor - t.line_discount_minor - t.basket_discount_minor == t.amount_minor
        assert t.amount_minor >= 0
    assert totals.tax_minor == sum(t.tax_minor for t in lines) == totals.tax.tax_minor
    added_tax = totals.tax_minor if cart.policy.tax.pricing is PricingMode.EXCLUSIVE else 0
    assert totals.total_minor == totals.subtotal_minor - totals.discount_minor + added_tax
    assert totals.total_minor == sum(t.total_minor for t in lines) == totals.tax.gross_minor


@PROPERTY
@given(carts())
def test_basket_discount_allocation_is_exact(cart: Cart) -> None:
    totals = cart.totals()
    shares = [t.basket_discount_minor for t in totals.lines]
    assert sum(shares) == totals.basket_discount_minor
    base = [t.gross_minor - t.line_discount_minor for t in totals.lines]
    for share, amount in zip(shares, base, strict=True):
        assert 0 <= share <= amount


def test_a_simple_sale() -> None:
    cart = new_cart().add_item(COFFEE, 2).add_item(MILK).add_item(APPLES, Decimal("0.512"))
    totals = cart.totals()
    assert [t.gross_minor for t in totals.lines] == [2580, 165, 200]  # 3.90/kg × 0.512 = 1.9968
    assert totals.total_minor == 2945
    assert cart.lines[2].sold_by is SoldBy.WEIGHT


@pytest.mark.parametrize(
    ("item", "quantity"),
    [
        pytest.param(COFFEE, 0, id="zero"),
        pytest.param(COFFEE, -1, id="negative"),
        pytest.param(COFFEE, Decimal("1.5"), id="half-a-piece"),
        pytest.param(APPLES, Decimal(0), id="zero-kg"),
        pytest.param(APPLES, Decimal("-0.2"), id="negative-kg"),
        pytest.param(APPLES, Decimal("NaN"), id="nan-kg"),
    ],
)
def test_bad_quantities_are_typed(item: object, quantity: int | Decimal) -> None:
    with pytest.raises(InvalidQuantity) as info:
        new_cart().add_item(item, quantity)  # type: ignore[arg-type]
    assert info.value.cashier_message


def test_change_quantity_and_void() -> None:
    cart = new_cart().add_item(COFFEE).add_item(MILK)
    cart = cart.change_quantity(1, 3)
    assert cart.totals().lines[0].gross_minor == 3870
    with pytest.raises(InvalidQuantity):
        cart.change_quantity(1, 0)
    cart = cart.void_line(1)
    assert cart.totals().total_minor == 165
    assert len(cart.lines) == 2  # the voided line stays for the record
    with pytest.raises(UnknownLine):
        cart.void_line(1)


def test_price_override_needs_a_manager() -> None:
    cart = new_cart().add_item(COFFEE)
    asked = cart.override_price(1, 990, approval=CASHIER)
    assert asked == ApprovalRequired(
        action="price override", reason="Coffee beans 500g: 1290 → 990", role=Role.MANAGER
    )
    done = cart.override_price(1, 990, approval=MANAGER)
    assert isinstance(done, Cart)
    assert done.lines[0].overridden
    assert done.lines[0].approved_by == "m1"
    assert done.totals().total_minor == 990


def test_small_discounts_need_no_one_large_ones_a_manager() -> None:
    cart = new_cart().add_item(COFFEE, 10)  # 129.00
    small = cart.discount_line(1, PercentOff(Decimal(10)))
    assert isinstance(small, Cart)
    assert small.totals().line_discount_minor == 1290
    big = cart.discount_line(1, PercentOff(Decimal(25)))
    assert isinstance(big, ApprovalRequired)
    assert big.action == "line discount"
    approved = cart.discount_line(1, PercentOff(Decimal(25)), approval=MANAGER)
    assert isinstance(approved, Cart)
    basket = cart.discount_basket(AmountOff(2500))  # above the 20.00 amount limit
    assert isinstance(basket, ApprovalRequired)


@pytest.mark.parametrize(
    "discount",
    [
        pytest.param(PercentOff(Decimal(101)), id="over-100-percent"),
        pytest.param(PercentOff(Decimal(-1)), id="negative-percent"),
        pytest.param(AmountOff(-5), id="negative-amount"),
        pytest.param(AmountOff(1291), id="more-than-the-line"),
    ],
)
def test_impossible_discounts_are_refused(discount: PercentOff | AmountOff) -> None:
    with pytest.raises(InvalidDiscount):
        new_cart().add_item(COFFEE).discount_line(1, discount, approval=MANAGER)


def test_basket_discount_spreads_by_largest_remainder() -> None:
    cart = new_cart()
    for n in range(3):
        cart = cart.add_item(make_item(n, price_minor=100))
    result = cart.discount_basket(AmountOff(100), approval=MANAGER)
    assert isinstance(result, Cart)
    assert [t.basket_discount_minor for t in result.totals().lines] == [34, 33, 33]
    cleared = result.discount_basket(None)
    assert isinstance(cleared, Cart)
    assert cleared.totals().discount_minor == 0


def test_exclusive_pricing_adds_tax() -> None:
    cart = Cart(policy=make_policy(pricing=PricingMode.EXCLUSIVE), cart_id="c").add_item(COFFEE)
    totals = cart.totals()
    assert totals.tax_minor == 104  # 12.90 × 8.1 % = 1.0449
    assert totals.total_minor == 1394


def test_add_scan_uses_what_the_code_carries() -> None:
    weighed = _with_check("2300042" + "00734")
    priced = _with_check("0255555" + "01990")
    cart = new_cart().add_scan(APPLES, parse_barcode(weighed))
    cart = cart.add_scan(COFFEE, parse_barcode(priced)).add_scan(MILK, parse_barcode("4011"))
    assert [line.quantity for line in cart.lines] == [Decimal("0.734"), 1, 1]
    assert [t.gross_minor for t in cart.totals().lines] == [286, 1990, 165]


def _with_check(body12: str) -> str:
    return body12 + str(gs1_check_digit(body12))
