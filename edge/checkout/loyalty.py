"""Loyalty at the till: the balance the register last saw, what it may redeem, what a sale moves.

How it works: a customer is attached to the sale by their pseudonymous id (a card or QR scanned,
or a search online); the register knows their balance as the cloud last told it
(:class:`KnownBalance`, cached per customer id). Redeeming works against that balance: while the
answer is fresh (fetched online for this sale) up to the whole balance; offline up to the
customer's offline limit from the configuration (their tier's), less what this register has
already redeemed for them offline. Earning always works: :func:`settle` computes the points the
money part of the payment earns (the rules of :mod:`protocols.loyalty`) and what the sale burned,
and :func:`after_sale` moves the cached balance so the next sale at this register sees it.
Points and store credit are tenders (``TenderKind.POINTS``, ``TenderKind.STORE_CREDIT``).
A return may pay its refund as store credit to the attached customer (:func:`as_store_credit`),
and a return of a sale with a customer takes back the points its returned part earned
(:func:`with_points_reversed`): cumulative shares of the sale's total, like a line's refund, so
any sequence of partial returns of the whole sale takes back exactly what it earned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from edge.checkout.money import RoundingRule, round_to_int
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale
from edge.checkout.sale_loyalty import SaleLoyalty
from edge.checkout.tenders import Payment, Tender, TenderKind
from protocols.loyalty import LoyaltyRules, points_earned, tier_for


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownBalance:
    """A customer's balance as this register knows it; ``fresh``: from the cloud for this sale."""

    customer_id: str
    points: int = 0
    lifetime_points: int = 0
    store_credit_minor: int = 0
    fresh: bool = False
    #: what may still be redeemed without the cloud (the tier's limit less offline redemptions)
    offline_points_left: int = 0
    offline_credit_left_minor: int = 0
    #: the cloud's answer holds this register's own journal up to this seq (0: unknown)
    cloud_seq: int = 0

    def tier(self, rules: LoyaltyRules) -> str:
        """The tier the register shows and journals (recomputed from lifetime points)."""
        return tier_for(rules, self.lifetime_points).name

    def redeemable_points(self) -> int:
        """Points this register may redeem now."""
        if self.fresh:
            return max(0, self.points)
        return max(0, min(self.points, self.offline_points_left))

    def redeemable_credit_minor(self) -> int:
        """Store credit this register may redeem now."""
        if self.fresh:
            return max(0, self.store_credit_minor)
        return max(0, min(self.store_credit_minor, self.offline_credit_left_minor))


def first_seen(customer_id: str, rules: LoyaltyRules) -> KnownBalance:
    """A customer this register never saw: nothing to redeem, earning starts at the first tier."""
    return KnownBalance(
        customer_id=customer_id,
        offline_points_left=rules.tiers[0].offline_redeem_limit_points,
        offline_credit_left_minor=rules.offline_store_credit_limit_minor,
    )


def settle(
    rules: LoyaltyRules, balance: KnownBalance, payment: Payment, *, exponent: int
) -> SaleLoyalty:
    """The movements of a settled payment for the attached customer."""
    points_minor = payment.balance_paid_minor(TenderKind.POINTS)
    credit_minor = payment.balance_paid_minor(TenderKind.STORE_CREDIT)
    money = payment.due_minor + payment.rounding_minor - points_minor - credit_minor
    tier = tier_for(rules, balance.lifetime_points)
    return SaleLoyalty(
        tier=tier.name,
        points_earned=points_earned(rules, tier, paid_minor=money, exponent=exponent),
        points_burned=points_minor // rules.point_value_minor,
        point_value_minor=rules.point_value_minor,
        store_credit_redeemed_minor=credit_minor,
    )


def after_sale(balance: KnownBalance, loyalty: SaleLoyalty) -> KnownBalance:
    """The balance this register knows once the sale is booked (offline allowances used up)."""
    spent_offline = not balance.fresh
    return replace(
        balance,
        points=balance.points + loyalty.points_earned - loyalty.points_burned,
        lifetime_points=balance.lifetime_points + loyalty.points_earned,
        store_credit_minor=balance.store_credit_minor - loyalty.store_credit_redeemed_minor,
        offline_points_left=balance.offline_points_left
        - (loyalty.points_burned if spent_offline else 0),
        offline_credit_left_minor=balance.offline_credit_left_minor
        - (loyalty.store_credit_redeemed_minor if spent_offline else 0),
        fresh=False,  # the cloud has not seen this sale yet
    )


def as_store_credit(ret: SaleReturn, customer_id: str) -> SaleReturn:
    """The return's refund paid as store credit to ``customer_id`` (no cash, no card)."""
    paid = ret.refund_minor
    credit = Tender(TenderKind.STORE_CREDIT, paid, paid)
    return replace(
        ret,
        refunds=(credit,) if paid else (),
        rounding_minor=0,
        customer_id=customer_id,
        store_credit_issued_minor=paid,
    )


def _reversed_share(earned: int, refunded_minor: int, total_minor: int) -> int:
    if total_minor <= 0:
        return 0
    share = round_to_int(Decimal(earned) * refunded_minor / total_minor, RoundingRule.HALF_UP)
    return min(earned, share)


def with_points_reversed(sale: Sale, ret: SaleReturn, earlier: Sequence[SaleReturn]) -> SaleReturn:
    """``ret`` taking back the points its share of ``sale`` earned (named to the sale's customer).

    The share is cumulative: ``round(earned × refunded so far / total)`` less what earlier
    returns took, so returning the whole sale in any steps takes back exactly ``points_earned``.
    """
    if sale.customer_id is None or sale.loyalty is None or sale.loyalty.points_earned <= 0:
        return ret
    earned = sale.loyalty.points_earned
    before = sum(r.refund_minor for r in earlier if r.original_sale_id == sale.sale_id)
    taken = _reversed_share(earned, before, sale.total_minor)
    now = _reversed_share(earned, before + ret.refund_minor, sale.total_minor)
    if now <= taken:
        return ret
    return replace(ret, customer_id=sale.customer_id, points_reversed=now - taken)
