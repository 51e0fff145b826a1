"""A cashier who rings sales by themselves, through the same register API the kiosk calls.

The demo uses it so stores sell while nobody touches them: every sale goes through the cart,
tax, cash rounding, payment and the ledger exactly as a touch sale does. Only the person is
simulated. It signs in, opens a shift if none is open, and rings baskets of pieced items.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from edge.checkout.catalog import SoldBy
from edge.checkout.errors import CheckoutError
from edge.pos import payments
from edge.pos.errors import NoSaleInProgress, RegisterError
from edge.pos.register import Register
from edge.pos.shift_desk import open_new_shift

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CashierSettings:
    """Who signs in and how fast they ring."""

    employee_id: str = "E01"
    pin: str = "1234"
    rate: float = 1.0
    float_minor: int = 20000
    seed: int | None = None


async def ring_at_register(register: Register, settings: CashierSettings) -> None:
    """Ring sales at ``settings.rate`` per second until cancelled."""
    rng = random.Random(settings.seed)
    await register.sign_in(settings.employee_id, settings.pin)
    if register.shift is None:
        await open_new_shift(register, settings.float_minor)
    barcodes = [
        item.gtins[0]
        for item in register.catalog
        if item.gtins
        and item.sold_by is SoldBy.PIECE
        and item.active
        and len(item.gtins[0]) in (8, 12, 13, 14)  # printed barcodes, not in-store keys
    ]
    interval = 1.0 / settings.rate
    while True:
        try:
            await _one_sale(register, rng, barcodes)
        except (CheckoutError, RegisterError) as err:  # a refused sale is the domain speaking
            log.warning("simulated cashier: sale refused (%s); ringing the next one", err)
        await asyncio.sleep(rng.uniform(0.5, 1.5) * interval)


async def _one_sale(register: Register, rng: random.Random, barcodes: list[str]) -> None:
    if register.cashier is None:  # signed out by the idle auto-lock, as a person would be
        await register.sign_in("E01", "1234")
    for code in rng.sample(barcodes, rng.randint(1, 4)):
        await register.scan(code, cart_id=register.cart.cart_id)
    cart_id = register.cart.cart_id
    await payments.start_payment(register, cart_id=cart_id)
    if register.payment is None:
        raise NoSaleInProgress("Press Pay first.")
    due = register.payment.cash_due_minor
    # customers hand over the next round note; the register gives change
    await payments.pay_cash(register, -(-due // 1000) * 1000, cart_id=cart_id)
