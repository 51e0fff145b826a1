"""Loyalty's contract: the rules a store is configured with and the movements a sale carries.

How it works: a store's configuration holds :class:`LoyaltyRules` (the ``loyalty`` section of
:mod:`protocols.store_config`): how many points a currency unit paid earns, what a point is worth
when it is redeemed, and the tiers. A tier is reached by *lifetime* points earned (burning never
lowers a tier) and says how earning is multiplied and how many points a register may redeem for
one customer without asking the cloud (the per-customer offline redeem limit).

Both sides compute with the same pure functions: the register earns with :func:`points_earned`
and tiers with :func:`tier_for` while offline; the cloud recomputes the tier from the ledger it
projects. A sale with a customer carries :class:`SaleLoyalty` in its ``sale.completed`` body
(:mod:`protocols.sale_body`): points earned and burned, store credit redeemed, and the value of a
point when it was redeemed. Points and store credit are *tenders* (:data:`POINTS_TENDER`,
:data:`STORE_CREDIT_TENDER`), not discounts: they are value the customer already holds, so the
sale's lines, tax and gross figures stay as priced and only how it was paid changes (a gift card's
rule), and a return refunds them like any tender. A return may issue store credit
(:class:`ReturnCredit` in the ``sale.returned`` body, refund tender :data:`STORE_CREDIT_TENDER`),
and a return of a sale with a customer takes back the points the returned part earned
(``points_reversed``: returning everything takes back exactly what was earned).

Everything is an integer: points are whole, money is minor units; the multiplier is a decimal
string, and earning rounds down (a customer never earns a point not paid for).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from itertools import pairwise
from typing import Annotated, Final, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from protocols.customer_card import InvalidCustomerCard, normalise_customer_id
from protocols.limits import PRINTABLE_PATTERN

#: Tender kind of points redeemed at the till: ``amount_minor`` = points × point value.
POINTS_TENDER: Final = "loyalty_points"
#: Tender kind of store credit redeemed at the till, and refund kind of credit issued on a return.
STORE_CREDIT_TENDER: Final = "store_credit"
#: Tender kinds that spend a customer's balance: a sale paying with one must name its customer.
BALANCE_TENDERS: Final = frozenset({POINTS_TENDER, STORE_CREDIT_TENDER})

#: Largest number of points or minor units a single movement may carry (bounded, fits BIGINT).
MOVEMENT_MAX: Final = 10**12

Points = Annotated[int, Field(strict=True, ge=0, le=MOVEMENT_MAX)]
Minor = Annotated[int, Field(strict=True, ge=0, le=MOVEMENT_MAX)]
TierName = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE_PATTERN)]
#: How earning is multiplied in a tier, a decimal string: "1", "1.25", "2".
Multiplier = Annotated[str, StringConstraints(pattern=r"^[0-9](\.[0-9]{1,2})?$")]


def customer_id_or_error(text: str) -> str:
    """``text`` if it is a canonical customer id; ``ValueError`` naming the fault otherwise."""
    try:
        canonical = normalise_customer_id(text)
    except InvalidCustomerCard as err:
        raise ValueError(err.reason) from err
    if canonical != text:
        raise ValueError("customer_id must be written in its canonical form")
    return text


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tier(_Frozen):
    """A tier: reached at ``threshold_points`` lifetime points earned."""

    name: TierName = Field(description="what the kiosk and the console call it")
    threshold_points: Points = Field(description="lifetime points earned to reach it")
    multiplier: Multiplier = Field("1", description='earning multiplied by this ("1.5")')
    offline_redeem_limit_points: Points = Field(
        500, description="points a register may redeem for one customer without the cloud"
    )

    @property
    def multiplier_decimal(self) -> Decimal:
        """The multiplier as the Decimal earning computes with."""
        return Decimal(self.multiplier)


def _default_tiers() -> list[Tier]:
    """Member from the first point (500 offline), Silver at 1,000 (1,000), Gold at 5,000 (2,500)."""
    return [
        Tier(name="Member", threshold_points=0),
        Tier(
            name="Silver",
            threshold_points=1000,
            multiplier="1.25",
            offline_redeem_limit_points=1000,
        ),
        Tier(
            name="Gold",
            threshold_points=5000,
            multiplier="1.5",
            offline_redeem_limit_points=2500,
        ),
    ]


class LoyaltyRules(_Frozen):
    """The store's loyalty programme: earning, the value of a point, tiers and offline limits."""

    enabled: bool = Field(True, description="off: registers neither earn nor redeem")
    points_per_unit: Annotated[int, Field(strict=True, ge=0, le=1000)] = Field(
        1, description="points earned per whole currency unit paid (before the tier's multiplier)"
    )
    point_value_minor: Annotated[int, Field(strict=True, ge=1, le=10_000)] = Field(
        1, description="what one point pays when redeemed, in minor units"
    )
    offline_store_credit_limit_minor: Minor = Field(
        5000, description="store credit a register may redeem for one customer without the cloud"
    )
    tiers: Annotated[list[Tier], Field(min_length=1, max_length=8)] = Field(
        default_factory=_default_tiers, description="tiers, lowest first; the first starts at 0"
    )
    digital_receipt_url: Annotated[
        str,
        StringConstraints(max_length=200, pattern=r"^(https://[^\s{}]*(\{sale_id\})?[^\s{}]*)?$"),
    ] = Field(
        "",
        description="printed on a customer's receipt; {sale_id} is replaced (empty: no link)",
    )

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Self:
        if self.tiers[0].threshold_points != 0:
            raise ValueError("the first tier must start at threshold_points 0")
        thresholds = [t.threshold_points for t in self.tiers]
        if any(b <= a for a, b in pairwise(thresholds)):
            raise ValueError("tier thresholds must rise strictly, lowest tier first")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        return self


def tier_for(rules: LoyaltyRules, lifetime_points: int) -> Tier:
    """The highest tier whose threshold ``lifetime_points`` reaches."""
    reached = rules.tiers[0]
    for tier in rules.tiers:
        if lifetime_points >= tier.threshold_points:
            reached = tier
    return reached


def points_earned(rules: LoyaltyRules, tier: Tier, *, paid_minor: int, exponent: int) -> int:
    """Points for ``paid_minor`` paid in money (not in points or credit), rounded down."""
    if not rules.enabled or paid_minor <= 0:
        return 0
    units = Decimal(paid_minor).scaleb(-exponent)
    earned = units * rules.points_per_unit * tier.multiplier_decimal
    return int(earned.to_integral_value(rounding=ROUND_FLOOR))


def digital_receipt_link(rules: LoyaltyRules, sale_id: str) -> str | None:
    """The link printed on a customer's receipt, or None when the store prints none."""
    if not rules.digital_receipt_url:
        return None
    return rules.digital_receipt_url.replace("{sale_id}", sale_id)


def points_value_minor(rules: LoyaltyRules, points: int) -> int:
    """What ``points`` pay at the till, in minor units."""
    return points * rules.point_value_minor


class SaleLoyalty(_Frozen):
    """The loyalty movements of one sale: what the ``sale.completed`` body's ``loyalty`` holds."""

    tier: TierName
    points_earned: Points = 0
    points_burned: Points = 0
    point_value_minor: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 1
    store_credit_redeemed_minor: Minor = 0

    @property
    def points_tender_minor(self) -> int:
        """What the burned points paid: the sale's ``loyalty_points`` tenders add up to it."""
        return self.points_burned * self.point_value_minor


class ReturnCredit(_Frozen):
    """What a return moved on a customer's balance: credit issued, points earned taken back."""

    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    store_credit_issued_minor: Minor
    points_reversed: Points = 0

    @model_validator(mode="after")
    def _customer(self) -> Self:
        customer_id_or_error(self.customer_id)
        return self


def return_credit(body: dict[str, object]) -> ReturnCredit | None:
    """What a ``sale.returned`` body moved for its customer, or None (most returns move none)."""
    customer_id = body.get("customer_id")
    issued = body.get("store_credit_issued_minor") or 0
    reversed_points = body.get("points_reversed") or 0
    if customer_id is None or not (issued or reversed_points):
        return None
    return ReturnCredit.model_validate(
        {
            "customer_id": customer_id,
            "store_credit_issued_minor": issued,
            "points_reversed": reversed_points,
        }
    )
