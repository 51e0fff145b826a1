from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.cart import Cart
from edge.checkout.catalog import SoldBy
from edge.checkout.errors import InvalidQuantity, ReturnExceedsSold, UnknownLine
from edge.checkout.money import CHF
from edge.checkout.payment_terminal_client import TcpPaymentTerminal
from edge.checkout.payment_terminal_sim import Outcome, PaymentTerminalSimulator
from edge.checkout.returns import (
    SaleReturn,
    build_return,
    build_unreceipted_return,
    refund_cards,
)
from edge.checkout.sale import Sale
from edge.checkout.staff import ApprovalRequired
from edge.checkout.tenders import TenderKind

from .builders import APPLES, COFFEE, MANAGER, MILK, PROPERTY, T0, carts, make_policy, sell


def a_sale(card_minor: int = 0) -> Sale:
    cart = Cart(policy=make_policy(), cart_id="cart-1")
    cart = cart.add_item(COFFEE, 3).add_item(MILK, 2).add_item(APPLES, Decimal("0.750"))
    return sell(cart, card_minor=card_minor)


def give_back(
    sale: Sale, quantities: dict[int, int | Decimal], earlier: list[SaleReturn]
) -> SaleReturn:
    n = len(earlier) + 1
    return build_return(
        sale,
        quantities,
        earlier=earlier,
        currency=CHF,
        return_id=f"ret-{n}",
        register_id="R1",
        receipt_number=100 + n,
        shift_id="S1",
        cashier_id="c1",
        returned_at=T0 + timedelta(hours=n),
    )


def test_partial_return_refunds_what_was_paid() -> None:
    sale = a_sale()
    ret = give_back(sale, {1: 1}, [])
    assert ret.refund_minor == 1290
    assert ret.original_receipt == "R1-000001"
    assert [t.kind for t in ret.refunds] == [TenderKind.CASH]


def test_never_more_than_sold_counting_earlier_returns() -> None:
    sale = a_sale()
    first = give_back(sale, {1: 2}, [])
    with pytest.raises(ReturnExceedsSold) as info:
        give_back(sale, {1: 2}, [first])
    assert info.value.already_returned == 2
    assert "Only 1" in info.value.cashier_message
    give_back(sale, {1: 1}, [first])


@pytest.mark.parametrize(
    ("quantities", "error"),
    [
        pytest.param({}, InvalidQuantity, id="nothing"),
        pytest.param({1: 0}, InvalidQuantity, id="zero"),
        pytest.param({1: -1}, InvalidQuantity, id="negative"),
        pytest.param({9: 1}, UnknownLine, id="no-such-line"),
        pytest.param({3: Decimal("0.751")}, ReturnExceedsSold, id="more-kg-than-sold"),
        pytest.param({1: Decimal("0.5")}, InvalidQuantity, id="half-a-piece"),
    ],
)
def test_bad_returns(quantities: dict[int, int | Decimal], error: type[Exception]) -> None:
    with pytest.raises(error):
        give_back(a_sale(), quantities, [])


@PROPERTY
@given(carts(), st.data())
def test_refunds_never_exceed_sales(cart: Cart, data: st.DataObject) -> None:
    sale = sell(cart)
    earlier: list[SaleReturn] = []
    for line in sale.lines:
        left = line.quantity
        while left > 0:
            if line.sold_by is SoldBy.PIECE:
                options = {left, Decimal(1), max(Decimal(1), left // 2)}
            else:
                options = {left, max(Decimal("0.001"), (left / 2).quantize(Decimal("0.001")))}
            step = data.draw(st.sampled_from(sorted(options)))
            earlier.append(give_back(sale, {line.line_id: step}, earlier))
            left -= step
    refunded = sum(r.refund_minor for r in earlier)
    assert refunded == sale.total_minor
    assert sum(r.tax_minor for r in earlier) == sale.tax_minor
    for line in sale.lines:
        got = sum(rl.refund_minor for r in earlier for rl in r.lines if rl.line_id == line.line_id)
        assert got == line.total_minor


def test_back_to_the_card_first_then_cash() -> None:
    sale = a_sale(card_minor=3000)  # total 4497: 30.00 card, 14.97 → 14.95 cash
    first = give_back(sale, {1: 3}, [])  # 38.70: 30.00 to the card, 8.70 cash
    assert [(t.kind, t.amount_minor) for t in first.refunds] == [
        (TenderKind.CARD, 3000),
        (TenderKind.CASH, 870),
    ]
    assert first.refunds[0].terminal_reference == "TREF-1"
    second = give_back(sale, {2: 2}, [first])  # the card is used up: all cash
    assert [t.kind for t in second.refunds] == [TenderKind.CASH]


def test_return_without_receipt_needs_a_manager() -> None:
    kwargs = {
        "policy": make_policy(),
        "return_id": "ret-x",
        "register_id": "R1",
        "receipt_number": 7,
        "shift_id": "S1",
        "cashier_id": "c1",
        "returned_at": T0,
    }
    asked = build_unreceipted_return([(COFFEE, 1)], approval=None, **kwargs)  # type: ignore[arg-type]
    assert isinstance(asked, ApprovalRequired)
    done = build_unreceipted_return([(COFFEE, 1)], approval=MANAGER, **kwargs)  # type: ignore[arg-type]
    assert isinstance(done, SaleReturn)
    assert done.refund_minor == 1290
    assert done.approved_by == "m1"
    assert done.original_receipt is None


async def test_card_refund_that_fails_is_paid_in_cash() -> None:
    sale = a_sale(card_minor=3000)
    ret = give_back(sale, {1: 1}, [])
    async with PaymentTerminalSimulator(script=[Outcome.DECLINE]) as sim:
        terminal = TcpPaymentTerminal(host=sim.host, port=sim.port)
        done = await refund_cards(terminal, ret, currency=CHF)
    assert [(t.kind, t.amount_minor) for t in done.refunds] == [(TenderKind.CASH, 1290)]
    async with PaymentTerminalSimulator() as sim:
        terminal = TcpPaymentTerminal(host=sim.host, port=sim.port)
        done = await refund_cards(terminal, ret, currency=CHF)
        assert sim.requests[0]["original_ref"] == "TREF-1"
    assert [(t.kind, t.amount_minor) for t in done.refunds] == [(TenderKind.CARD, 1290)]
