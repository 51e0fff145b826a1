"""Shared builders and hypothesis strategies for the checkout tests (plain values, no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st

from edge.checkout.cart import AmountOff, Cart, CartPolicy, PercentOff
from edge.checkout.catalog import Item, SoldBy
from edge.checkout.money import CHF, Currency
from edge.checkout.sale import Sale, complete_sale
from edge.checkout.staff import Approval, Role
from edge.checkout.tax import PricingMode, TaxClass, TaxPolicy, TaxRounding
from edge.checkout.tenders import CardApproved, Payment

# Property tests are deterministic (same examples every run) and never fail on timing.
PROPERTY = settings(deadline=None, derandomize=True, max_examples=100)
MANAGER = Approval(approver_id="m1", role=Role.MANAGER)
CASHIER = Approval(approver_id="c1", role=Role.CASHIER)
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SWISS_TAX = (
    TaxClass("A", Decimal("0.081"), "standard"),
    TaxClass("B", Decimal("0.026"), "reduced"),
    TaxClass("C", Decimal("0.038"), "lodging"),
    TaxClass("Z", Decimal("0"), "exempt"),
)


def make_policy(
    *,
    currency: Currency = CHF,
    pricing: PricingMode = PricingMode.INCLUSIVE,
    rounding: TaxRounding = TaxRounding.PER_TOTAL,
) -> CartPolicy:
    return CartPolicy(
        currency=currency, tax=TaxPolicy(SWISS_TAX, pricing=pricing, rounding=rounding)
    )


def make_item(n: int, *, price_minor: int = 450, tax_class: str = "A", **kw: object) -> Item:
    fields: dict[str, object] = {
        "id": f"item-{n}",
        "name": f"Item {n}",
        "price_minor": price_minor,
        "tax_class": tax_class,
        "department": f"dept-{n % 7}",
        "plu": None,
        "sku": f"SKU{n:07d}",
    }
    fields.update(kw)
    return Item(**fields)  # type: ignore[arg-type]


COFFEE = make_item(1, price_minor=1290, name="Coffee beans 500g", department="grocery")
APPLES = make_item(2, price_minor=390, name="Apples", sold_by=SoldBy.WEIGHT, tax_class="B")
MILK = make_item(3, price_minor=165, name="Milk 1l", tax_class="B", department="dairy")


def sell(
    cart: Cart, *, card_minor: int = 0, receipt_number: int = 1, register_id: str = "R1"
) -> Sale:
    """Pay ``card_minor`` by card (terminal ref TREF-<n>) and the rest exactly in cash."""
    total = cart.totals().total_minor
    payment = Payment.start(
        due_minor=total,
        currency=cart.policy.currency,
        register_id=register_id,
        cart_id=cart.cart_id,
    )
    if card_minor:
        payment = payment.add_card(
            CardApproved(f"TREF-{receipt_number}", card_minor, "4242", "VISA")
        )
    if not payment.settled:
        payment = payment.add_cash(payment.cash_due_minor)
    return complete_sale(
        cart,
        payment,
        register_id=register_id,
        receipt_number=receipt_number,
        shift_id="S1",
        cashier_id="c1",
        completed_at=T0,
    )


policies = st.builds(
    make_policy,
    pricing=st.sampled_from(PricingMode),
    rounding=st.sampled_from(TaxRounding),
)
discounts = st.one_of(
    st.none(),
    st.builds(PercentOff, st.decimals(min_value=0, max_value=100, places=2)),
    st.builds(AmountOff, st.integers(min_value=0, max_value=500)),
)
line_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=200_000),  # unit price
        st.one_of(
            st.integers(min_value=1, max_value=50).map(Decimal),
            st.decimals(min_value=Decimal("0.001"), max_value=Decimal("9.999"), places=3),
        ),
        st.sampled_from(["A", "B", "C", "Z"]),
        discounts,
    ),
    min_size=0,
    max_size=12,
)


@st.composite
def carts(draw: st.DrawFn) -> Cart:
    """Carts with piece and weight lines, line discounts, voids and a basket discount."""
    policy = draw(policies)
    cart = Cart(policy=policy, cart_id=f"cart-{draw(st.integers(0, 10**6))}")
    for n, (price, qty, tax_class, drawn) in enumerate(draw(line_specs)):
        by = SoldBy.PIECE if qty == qty.to_integral_value() else SoldBy.WEIGHT
        cart = cart.add_item(make_item(n, price_minor=price, tax_class=tax_class, sold_by=by), qty)
        discount = drawn
        if discount is not None:
            if isinstance(discount, AmountOff):
                gross = cart.totals().lines[-1].gross_minor
                discount = AmountOff(min(discount.amount_minor, gross))
            result = cart.discount_line(cart.lines[-1].line_id, discount, approval=MANAGER)
            assert isinstance(result, Cart)
            cart = result
    void_one = draw(st.booleans())
    if cart.lines and void_one:
        cart = cart.void_line(draw(st.sampled_from(cart.lines)).line_id)
    basket = draw(discounts)
    if basket is not None:
        if isinstance(basket, AmountOff):
            base = sum(t.amount_minor for t in cart.totals().lines)
            basket = AmountOff(min(basket.amount_minor, base))
        result = cart.discount_basket(basket, approval=MANAGER)
        assert isinstance(result, Cart)
        cart = result
    return cart
