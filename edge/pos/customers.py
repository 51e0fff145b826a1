"""Customers at the register: attach one by card or QR, redeem points or store credit, earn.

How it works: a scanned ``SFC1:`` code (:mod:`protocols.customer_card`) is read offline into a
pseudonymous customer id — the appliance holds no name, e-mail or phone — and attached to the
current sale. The register then asks the cloud for the customer's balance through a
:class:`BalanceSource` (the device route ``/api/loyalty/device/customers/{id}``); when the cloud
cannot be reached it keeps the balance it last saw for that id (:attr:`LoyaltyDesk.cache`), and
a customer it never saw starts at zero. Redeeming is limited as :class:`KnownBalance` says: the
whole balance when fresh, the tier's offline limit when not. Earning needs nothing but the rules
from the store configuration. After each sale the cached balance moves by what the sale earned
and burned, so the next sale here sees it; the next online answer replaces it.
"""

from __future__ import annotations

from edge.checkout.loyalty import KnownBalance
from edge.checkout.money import format_minor
from edge.checkout.tenders import Payment, TenderKind
from edge.pos.errors import NoSaleInProgress, NotAllowed
from edge.pos.loyalty_client import SearchOffline
from edge.pos.loyalty_desk import read_card
from edge.pos.payments import complete_settled
from edge.pos.register import Register
from protocols.customer_card import InvalidCustomerCard, normalise_customer_id
from protocols.loyalty import points_value_minor


async def attach_card(register: Register, text: str, *, cart_id: str | None = None) -> KnownBalance:
    """A scanned card or QR: attach its customer to the current sale."""
    return await attach(register, read_card(text), cart_id=cart_id)


async def attach(
    register: Register, customer_id: str, *, cart_id: str | None = None
) -> KnownBalance:
    """Attach ``customer_id`` to the sale, with the freshest balance the register can get."""
    try:
        customer_id = normalise_customer_id(customer_id)
    except InvalidCustomerCard as err:
        raise NotAllowed(f"Not a customer: {err.reason}.") from err
    async with register.command():
        register.require_cart(cart_id)
        if register.payment is not None and register.payment.tenders:
            raise NotAllowed("Tenders were taken: attach the customer before paying.")
        return await register.loyalty.attach(
            customer_id, register.config.loyalty, acked_seq=register.ledger.acked_seq
        )


async def detach(register: Register, *, cart_id: str | None = None) -> None:
    """Take the customer off the sale (before any points or credit were tendered)."""
    async with register.command():
        register.require_cart(cart_id)
        if register.payment is not None and any(
            t.kind in (TenderKind.POINTS, TenderKind.STORE_CREDIT) for t in register.payment.tenders
        ):
            raise NotAllowed("Points or credit were tendered: finish or void the sale.")
        register.loyalty.attached = None


async def pay_points(register: Register, points: int | None, *, cart_id: str | None) -> int:
    """Redeem ``points`` (default: as many as may and are due) as a tender; the points used."""
    async with register.command():
        payment, balance = _paying_customer(register, cart_id)
        rules = register.config.loyalty
        if not rules.enabled:
            raise NotAllowed("Loyalty is switched off for this store.")
        already = payment.balance_paid_minor(TenderKind.POINTS) // rules.point_value_minor
        may = balance.redeemable_points() - already
        due_points = payment.remaining_minor // rules.point_value_minor
        wanted = min(may, due_points) if points is None else points
        if wanted <= 0 or wanted > may:
            where = "" if balance.fresh else " offline"
            raise NotAllowed(f"Only {max(may, 0)} points may be redeemed{where} for this customer.")
        if wanted > due_points:
            raise NotAllowed(f"At most {due_points} points are due on this sale.")
        register.payment = payment.add_balance(TenderKind.POINTS, points_value_minor(rules, wanted))
        await _settle_if_paid(register)
        return wanted


async def pay_store_credit(
    register: Register, amount_minor: int | None, *, cart_id: str | None
) -> int:
    """Redeem store credit (default: as much as may and is due) as a tender; the amount used."""
    async with register.command():
        payment, balance = _paying_customer(register, cart_id)
        already = payment.balance_paid_minor(TenderKind.STORE_CREDIT)
        may = balance.redeemable_credit_minor() - already
        wanted = min(may, payment.remaining_minor) if amount_minor is None else amount_minor
        if wanted <= 0 or wanted > may:
            shown = format_minor(max(may, 0), register.config.currency)
            raise NotAllowed(f"Only {shown} of store credit may be redeemed for this customer.")
        register.payment = payment.add_balance(TenderKind.STORE_CREDIT, wanted)
        await _settle_if_paid(register)
        return wanted


def _paying_customer(register: Register, cart_id: str | None) -> tuple[Payment, KnownBalance]:
    register.require_cart(cart_id)
    if register.payment is None:
        raise NoSaleInProgress("Press Pay first.")
    balance = register.loyalty.attached
    if balance is None:
        raise NotAllowed("Scan the customer's loyalty card first.")
    return register.payment, balance


async def _settle_if_paid(register: Register) -> None:
    await complete_settled(register)


async def search(register: Register, text: str) -> list[tuple[str, str]]:
    """Customers by name, phone or e-mail (online only): pseudonymous ids and masked names."""
    finder = register.loyalty.finder
    if finder is None:
        raise SearchOffline
    return await finder.search(text)
