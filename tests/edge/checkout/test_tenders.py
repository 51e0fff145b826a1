import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.errors import TenderExceedsDue, TenderShort
from edge.checkout.money import CHF, EUR, Currency
from edge.checkout.tenders import CardApproved, Payment, TenderKind, payment_key

from .builders import PROPERTY


def start(due: int, currency: Currency = CHF, cart_id: str = "cart-1") -> Payment:
    return Payment.start(due_minor=due, currency=currency, register_id="R1", cart_id=cart_id)


def test_cash_with_change_and_rounding() -> None:
    payment = start(1233)
    assert payment.cash_due_minor == 1235
    paid = payment.add_cash(2000)
    assert paid.settled
    assert paid.rounding_minor == 2
    assert paid.change_minor == 765
    assert paid.tenders[0].amount_minor == 1235


@PROPERTY
@given(
    st.integers(min_value=1, max_value=10**8),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from([CHF, EUR, Currency("SEK", 2, 100)]),
)
def test_change_is_exact(due: int, extra: int, currency: Currency) -> None:
    payment = start(due, currency)
    received = payment.cash_due_minor + extra
    paid = payment.add_cash(received)
    assert paid.settled
    assert paid.change_minor == extra
    assert paid.paid_minor == due + paid.rounding_minor
    assert received - paid.change_minor == paid.paid_minor
    assert abs(paid.rounding_minor) * 2 <= currency.cash_increment_minor


@PROPERTY
@given(
    st.integers(min_value=2, max_value=10**7),
    st.data(),
)
def test_split_tender_card_then_cash(due: int, data: st.DataObject) -> None:
    card = data.draw(st.integers(min_value=1, max_value=due - 1))
    payment = start(due).add_card(CardApproved("T1", card, "4242", "VISA"))
    assert payment.remaining_minor == due - card
    settled = payment.add_cash(payment.cash_due_minor)
    assert settled.settled
    assert [t.kind for t in settled.tenders] == [TenderKind.CARD, TenderKind.CASH]
    assert settled.paid_minor == due + settled.rounding_minor


def test_partial_cash_then_short() -> None:
    payment = start(5000).add_cash(2000)
    assert payment.remaining_minor == 3000
    with pytest.raises(TenderShort) as info:
        payment.require_settled()
    assert info.value.short_minor == 3000


def test_card_cannot_pay_more_than_due() -> None:
    with pytest.raises(TenderExceedsDue):
        start(1000).add_card(CardApproved("T1", 1001, "4242", "VISA"))


def test_nothing_more_once_settled() -> None:
    with pytest.raises(TenderExceedsDue):
        start(1000).add_cash(1000).add_cash(100)


def test_between_exact_and_rounded_cash_settles_without_change() -> None:
    paid = start(1233).add_cash(1234)  # rounded due is 12.35, exact is 12.33
    assert paid.settled
    assert paid.change_minor == 0
    assert paid.rounding_minor == 1


def test_idempotency_key_is_stable_per_cart() -> None:
    first, second = start(1000), start(1000)
    assert first.idempotency_key == second.idempotency_key == payment_key("R1", "cart-1")
    assert start(1000, cart_id="cart-2").idempotency_key != first.idempotency_key
    assert first.next_card_reference() == second.next_card_reference()
