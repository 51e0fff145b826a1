"""Loyalty's contract: earning, tiers, and the sale body's movements (issue 14).

Properties, not examples, where a rule holds for every input: earning never pays a point not
paid for and grows with what was paid; a tier never falls as lifetime points grow; a body with
loyalty movements reads back to the same canonical text, and one whose tenders disagree with its
movements is refused by name. Old bodies (no customer) stay byte-for-byte what they were.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocols.canonical import canonical_text
from protocols.customer_card import new_customer_id
from protocols.loyalty import (
    POINTS_TENDER,
    STORE_CREDIT_TENDER,
    LoyaltyRules,
    points_earned,
    return_credit,
    tier_for,
)
from protocols.sale_body import InvalidSaleBody, SaleBody
from protocols.store_config import parse_store_config

RULES = LoyaltyRules()
CUSTOMER = new_customer_id()


def _body(
    *, total: int, points: int = 0, value: int = 1, credit: int = 0, cash: int | None = None
) -> dict[str, Any]:
    tenders: list[dict[str, Any]] = []
    if points:
        tenders.append({"kind": POINTS_TENDER, "amount_minor": points * value, "reference": None})
    if credit:
        tenders.append({"kind": STORE_CREDIT_TENDER, "amount_minor": credit, "reference": None})
    rest = total - points * value - credit if cash is None else cash
    if rest > 0:
        tenders.append({"kind": "cash", "amount_minor": rest, "reference": None})
    return {
        "sale_id": "s-1",
        "register_id": "1",
        "receipt_no": 1,
        "currency": "EUR",
        "total_minor": total,
        "tendered_minor": sum(t["amount_minor"] for t in tenders),
        "change_minor": 0,
        "lines": [
            {
                "sku": "a",
                "description": "A",
                "quantity": "1",
                "unit_price_minor": total,
                "amount_minor": total,
            }
        ],
        "tenders": tenders,
        "customer_id": CUSTOMER,
        "loyalty": {
            "tier": "Member",
            "points_earned": 3,
            "points_burned": points,
            "point_value_minor": value,
            "store_credit_redeemed_minor": credit,
        },
    }


@settings(max_examples=200)
@given(
    paid=st.integers(min_value=-(10**6), max_value=10**9),
    more=st.integers(min_value=0, max_value=10**6),
    exponent=st.integers(min_value=0, max_value=3),
    lifetime=st.integers(min_value=0, max_value=10**6),
)
def test_earning_never_pays_a_point_not_paid_for_and_grows_with_the_amount(
    paid: int, more: int, exponent: int, lifetime: int
) -> None:
    tier = tier_for(RULES, lifetime)
    earned = points_earned(RULES, tier, paid_minor=paid, exponent=exponent)
    ceiling = max(0, paid) * RULES.points_per_unit * tier.multiplier_decimal
    assert 0 <= earned <= ceiling / Decimal(10) ** exponent
    assert earned >= 0
    assert points_earned(RULES, tier, paid_minor=paid + more, exponent=exponent) >= earned


@given(a=st.integers(min_value=0, max_value=10**7), b=st.integers(min_value=0, max_value=10**7))
def test_a_tier_never_falls_as_lifetime_points_grow(a: int, b: int) -> None:
    low, high = sorted((a, b))
    names = [t.name for t in RULES.tiers]
    assert names.index(tier_for(RULES, low).name) <= names.index(tier_for(RULES, high).name)


@pytest.mark.parametrize(
    ("lifetime", "tier"),
    [
        pytest.param(0, "Member", id="start"),
        pytest.param(999, "Member", id="one-short-of-silver"),
        pytest.param(1000, "Silver", id="silver-at-threshold"),
        pytest.param(5000, "Gold", id="gold-at-threshold"),
    ],
)
def test_tiers_are_reached_at_their_thresholds(lifetime: int, tier: str) -> None:
    assert tier_for(RULES, lifetime).name == tier


def test_a_gold_customer_earns_one_and_a_half_points_per_unit_rounded_down() -> None:
    gold = tier_for(RULES, 6000)
    assert points_earned(RULES, gold, paid_minor=1099, exponent=2) == 16  # 10.99 × 1.5 = 16.485


@pytest.mark.parametrize(
    ("tiers", "words"),
    [
        pytest.param([{"name": "A", "threshold_points": 5}], "start at", id="first-not-zero"),
        pytest.param(
            [{"name": "A", "threshold_points": 0}, {"name": "B", "threshold_points": 0}],
            "rise strictly",
            id="not-rising",
        ),
        pytest.param(
            [{"name": "A", "threshold_points": 0}, {"name": "A", "threshold_points": 9}],
            "unique",
            id="same-name",
        ),
    ],
)
def test_rules_with_unordered_tiers_are_refused(tiers: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        LoyaltyRules.model_validate({"tiers": tiers})


def test_the_store_configuration_has_a_loyalty_section_with_defaults() -> None:
    doc = parse_store_config(
        {
            "store": {"id": "s1", "name": "S", "address": {"lines": ["x"], "country": "CH"}},
            "currency": {"code": "CHF"},
            "tax": {"classes": [{"code": "A", "rate": "0.081"}]},
            "hours": {"time_zone": "Europe/Zurich"},
        }
    )
    assert doc.loyalty == LoyaltyRules()


@settings(max_examples=150)
@given(
    total=st.integers(min_value=1, max_value=10**7),
    share=st.floats(min_value=0, max_value=1),  # test data only: the split of the total
    value=st.integers(min_value=1, max_value=100),
    credit_share=st.floats(min_value=0, max_value=1),
)
def test_a_body_with_movements_reads_back_to_the_same_canonical_text(
    total: int, share: float, value: int, credit_share: float
) -> None:
    points = int(total * share) // value
    credit = int((total - points * value) * credit_share)
    body = _body(total=total, points=points, value=value, credit=credit)
    sale = SaleBody.from_body(body)
    assert canonical_text(sale.to_body()) == canonical_text(body)
    assert sale.loyalty is not None
    assert sale.loyalty.points_burned == points


def test_a_sale_without_a_customer_has_no_new_keys() -> None:
    body = _body(total=100)
    del body["customer_id"], body["loyalty"]
    assert SaleBody.from_body(body).to_body().keys() == body.keys()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(
            {"loyalty": {"tier": "Member", "points_burned": 7}},
            "loyalty_points tenders 50 are not",
            id="points-tender-disagrees",
        ),
        pytest.param(
            {"loyalty": {"tier": "Member", "points_burned": 50}},
            "store_credit tenders 20 are not",
            id="credit-tender-disagrees",
        ),
        pytest.param({"customer_id": None}, "must name its customer_id", id="no-customer"),
        pytest.param({"customer_id": "C0000000000001"}, "check character", id="bad-check"),
        pytest.param(
            {"loyalty": {"tier": "Member", "points_burned": -1}},
            "greater than or equal",
            id="negative-burn",
        ),
    ],
)
def test_a_body_whose_tenders_disagree_with_its_movements_is_refused(
    change: dict[str, Any], words: str
) -> None:
    body = {**_body(total=100, points=50, credit=20), **change}
    if change.get("customer_id", CUSTOMER) is None:
        del body["loyalty"]
    with pytest.raises(InvalidSaleBody, match=words):
        SaleBody.from_body(body)


def test_a_return_issuing_credit_names_its_customer() -> None:
    assert return_credit({"refund_minor": 5}) is None
    credit = return_credit({"customer_id": CUSTOMER, "store_credit_issued_minor": 250})
    assert credit is not None
    assert credit.store_credit_issued_minor == 250


def test_a_return_taking_back_points_names_its_customer_without_credit() -> None:
    assert return_credit({"customer_id": CUSTOMER, "store_credit_issued_minor": 0}) is None
    credit = return_credit(
        {"customer_id": CUSTOMER, "store_credit_issued_minor": 0, "points_reversed": 13}
    )
    assert credit is not None
    assert (credit.points_reversed, credit.store_credit_issued_minor) == (13, 0)
