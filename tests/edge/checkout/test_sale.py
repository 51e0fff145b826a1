import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given

from edge.checkout.cart import AmountOff, Cart
from edge.checkout.errors import JournalBodyError, TenderShort
from edge.checkout.money import CHF
from edge.checkout.records import decode_journal_body
from edge.checkout.sale import Sale, complete_sale, void_sale
from edge.checkout.tenders import Payment

from .builders import APPLES, COFFEE, MANAGER, MILK, PROPERTY, T0, carts, make_policy, sell


def walk(value: Any) -> None:
    """Only dicts, lists, str, int, bool, None: the ledger's canonical JSON has no floats."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            walk(item)
    elif isinstance(value, list):
        for item in value:
            walk(item)
    else:
        assert value is None or type(value) in (str, int, bool), repr(value)


@PROPERTY
@given(carts())
def test_journal_body_is_json_safe_and_round_trips(cart: Cart) -> None:
    sale = sell(cart)
    body = sale.to_journal_body()
    walk(body)
    assert body["kind"] == "sale.completed"
    assert json.loads(json.dumps(body)) == body
    assert Sale.from_journal_body(body) == sale
    assert decode_journal_body(body) == sale


def test_a_sale_record() -> None:
    cart = Cart(policy=make_policy(), cart_id="cart-7")
    cart = cart.add_item(COFFEE, 2).add_item(APPLES, Decimal("0.512")).add_item(MILK)
    result = cart.discount_basket(AmountOff(300), approval=MANAGER)
    assert isinstance(result, Cart)
    sale = sell(result.void_line(3), receipt_number=42)
    assert sale.receipt_id == "R1-000042"
    assert sale.voided_lines == 1
    assert sale.basket_approved_by == "m1"
    assert sum(line.total_minor for line in sale.lines) == sale.total_minor
    assert sale.paid_minor == sum(t.amount_minor for t in sale.tenders)
    body = sale.to_journal_body()
    assert body["lines"][1]["quantity"] == "0.512"
    assert body["tax_rows"][0]["rate"] == "0.026"


def test_unpaid_sale_cannot_complete() -> None:
    cart = Cart(policy=make_policy(), cart_id="c").add_item(COFFEE)
    payment = Payment.start(due_minor=1290, currency=CHF, register_id="R1", cart_id="c")
    with pytest.raises(TenderShort):
        complete_sale(
            cart,
            payment.add_cash(1000),
            register_id="R1",
            receipt_number=1,
            shift_id="S1",
            cashier_id="c1",
            completed_at=T0,
        )


def test_pressing_pay_twice_gives_one_key() -> None:
    cart = Cart(policy=make_policy(), cart_id="c").add_item(COFFEE)
    first, second = sell(cart, receipt_number=1), sell(cart, receipt_number=2)
    assert first.idempotency_key == second.idempotency_key  # the ledger's UNIQUE refuses #2


def test_voided_sale_round_trips() -> None:
    voided = void_sale(
        Cart(policy=make_policy(), cart_id="v").add_item(MILK),
        register_id="R1",
        shift_id="S1",
        cashier_id="c1",
        voided_at=T0,
    )
    assert decode_journal_body(voided.to_journal_body()) == voided


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b.update(kind="sale.exploded"), id="unknown-kind"),
        pytest.param(lambda b: b.update(v=99), id="unknown-version"),
        pytest.param(lambda b: b.pop("total_minor"), id="missing-field"),
        pytest.param(lambda b: b.update(total_minor=12.5), id="float-money"),
        pytest.param(lambda b: b["lines"][0].update(quantity=1), id="decimal-not-string"),
        pytest.param(lambda b: b.update(pricing="sideways"), id="bad-enum"),
    ],
)
def test_malformed_bodies_are_typed_errors(mutate: Any) -> None:
    body = sell(Cart(policy=make_policy(), cart_id="c").add_item(COFFEE)).to_journal_body()
    mutate(body)
    with pytest.raises(JournalBodyError):
        decode_journal_body(body)
