"""The register's update lease: held while a sale is open, gone when it closes, never forever."""

from __future__ import annotations

from datetime import timedelta

from edge.pos import payments
from edge.pos.register import LEASE_IDLE_S, Register
from edge.register.health import RegisterHealth
from tests.edge.pos.conftest import CABLE, Clock, signed_in_with_shift


async def test_the_lease_is_held_from_the_first_line_until_the_sale_is_paid(
    register: Register, clock: Clock
) -> None:
    health = RegisterHealth(register_id="1")
    health.open_sale = register.open_sale
    await signed_in_with_shift(register)
    idle = health.heartbeat().lease

    await register.scan(CABLE)
    cart_id = register.cart.cart_id
    open_cart = health.heartbeat().lease
    await payments.start_payment(register, cart_id=cart_id)
    paying = register.open_sale()
    await payments.pay_cash(register, 2000, cart_id=cart_id)
    paid = health.heartbeat().lease

    assert idle is None
    assert open_cart is not None
    assert open_cart.owner == "register 1"
    assert open_cart.reason == f"sale {cart_id} open (1 lines)"
    expected = clock.now + timedelta(seconds=LEASE_IDLE_S)
    assert open_cart.expires_at == int(expected.timestamp() * 1000)
    assert paying is not None
    assert paying[0] == f"payment of sale {cart_id} in progress"
    assert paid is None


async def test_an_abandoned_cart_stops_holding_at_its_expiry(
    register: Register, clock: Clock
) -> None:
    await signed_in_with_shift(register)
    await register.scan(CABLE)
    held = register.open_sale()
    clock.advance(seconds=LEASE_IDLE_S + 1)  # nobody touched the till since

    assert held is not None
    assert held[1] < clock.now
