"""An item whose tax class the store's tax table lacks is refused as a line, with what to do."""

from __future__ import annotations

import pytest

from edge.checkout.barcodes import parse_barcode
from edge.checkout.cart import Cart
from edge.checkout.errors import CheckoutError, UnknownTaxClass
from edge.checkout.tax import TaxableLine, compute_tax

from .builders import MILK, make_item, make_policy

UNTAXED = make_item(9, name="Gift wrap", tax_class="Q", gtins=("7610200000095",))


def test_adding_an_item_of_an_unknown_tax_class_is_refused_with_what_to_do() -> None:
    cart = Cart(policy=make_policy(), cart_id="c").add_item(MILK)
    with pytest.raises(UnknownTaxClass) as refused:
        cart.add_item(UNTAXED)
    err = refused.value
    assert isinstance(err, CheckoutError)
    assert (err.tax_class, err.item_id, err.item_name) == ("Q", "item-9", "Gift wrap")
    message = err.cashier_message
    assert "Gift wrap" in message
    assert "item-9" in message
    assert "add tax class Q to the store's tax table in the console" in message
    assert cart.totals().total_minor == MILK.price_minor  # the cart as it was still totals


def test_scanning_an_item_of_an_unknown_tax_class_is_refused() -> None:
    cart = Cart(policy=make_policy(), cart_id="c")
    with pytest.raises(UnknownTaxClass):
        cart.add_scan(UNTAXED, parse_barcode("7610200000095", currency_exponent=2))


def test_tax_of_an_unknown_class_is_a_checkout_error_not_a_key_error() -> None:
    with pytest.raises(UnknownTaxClass) as refused:
        compute_tax(make_policy().tax, [TaxableLine("Q", 100)])
    assert refused.value.tax_class == "Q"
