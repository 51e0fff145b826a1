"""Card payments through the real TCP adapter against the simulator on loopback."""

from collections.abc import AsyncIterator

import pytest

from edge.checkout.money import CHF
from edge.checkout.payment_terminal_client import (
    MalformedFrame,
    TcpPaymentTerminal,
    decode_frame,
    encode_frame,
)
from edge.checkout.payment_terminal_sim import Outcome, PaymentTerminalSimulator
from edge.checkout.tenders import (
    CardApproved,
    CardCustomerCancel,
    CardDeclined,
    CardTimeout,
    Payment,
    pay_by_card,
)


@pytest.fixture
async def sim() -> AsyncIterator[PaymentTerminalSimulator]:
    async with PaymentTerminalSimulator() as simulator:
        yield simulator


def adapter(sim: PaymentTerminalSimulator, timeout: float = 5.0) -> TcpPaymentTerminal:
    return TcpPaymentTerminal(host=sim.host, port=sim.port, timeout=timeout)


def payment(due: int = 2590) -> Payment:
    return Payment.start(due_minor=due, currency=CHF, register_id="R1", cart_id="cart-9")


async def test_approve(sim: PaymentTerminalSimulator) -> None:
    settled, result = await pay_by_card(adapter(sim), payment())
    assert isinstance(result, CardApproved)
    assert (result.amount_minor, result.last4, result.scheme) == (2590, "4242", "VISA")
    assert settled.settled
    assert settled.tenders[0].terminal_reference == result.terminal_reference
    assert sim.charged_minor == 2590


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        pytest.param(Outcome.DECLINE, CardDeclined, id="decline"),
        pytest.param(Outcome.CUSTOMER_CANCEL, CardCustomerCancel, id="customer-cancel"),
    ],
)
async def test_not_approved_books_nothing(
    sim: PaymentTerminalSimulator, outcome: Outcome, expected: type
) -> None:
    sim.push(outcome)
    after, result = await pay_by_card(adapter(sim), payment())
    assert isinstance(result, expected)
    assert after.tenders == ()
    assert after.remaining_minor == 2590
    assert sim.charged_minor == 0
    retried, again = await pay_by_card(adapter(sim), after)  # a new attempt, a new reference
    assert isinstance(again, CardApproved)
    assert retried.settled


async def test_timeout_cancels_the_attempt(sim: PaymentTerminalSimulator) -> None:
    sim.push(Outcome.TIMEOUT)
    after, result = await pay_by_card(adapter(sim, timeout=0.2), payment())
    assert isinstance(result, CardTimeout)
    assert result.reference in sim.cancelled
    assert after.tenders == ()
    assert sim.charged_minor == 0


async def test_same_reference_charges_once(sim: PaymentTerminalSimulator) -> None:
    terminal = adapter(sim)
    first = await terminal.authorize(1000, "CHF", "ref-1")
    second = await terminal.authorize(1000, "CHF", "ref-1")
    assert first == second
    assert sim.charged_minor == 1000


async def test_refund_to_the_original_reference(sim: PaymentTerminalSimulator) -> None:
    terminal = adapter(sim)
    sale = await terminal.authorize(1000, "CHF", "ref-1")
    assert isinstance(sale, CardApproved)
    refund = await terminal.refund(400, "CHF", "ret-1", sale.terminal_reference)
    assert isinstance(refund, CardApproved)
    assert sim.requests[-1]["original_ref"] == sale.terminal_reference
    assert sim.charged_minor == 600


async def test_unreachable_terminal_is_a_decline() -> None:
    async with PaymentTerminalSimulator() as sim:
        port = sim.port
    result = await TcpPaymentTerminal(host="127.0.0.1", port=port).authorize(1, "CHF", "r")
    assert isinstance(result, CardDeclined)


def test_frames_round_trip_and_reject_garbage() -> None:
    frame = {"op": "authorize", "ref": "r", "amount_minor": 5, "currency": "CHF"}
    assert decode_frame(encode_frame(frame)) == frame
    for bad in (b"[1]\n", b"{nope\n", b"\xff\n"):
        with pytest.raises(MalformedFrame):
            decode_frame(bad)
