from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.money import RoundingRule
from edge.checkout.tax import (
    PricingMode,
    TaxableLine,
    TaxPolicy,
    TaxRounding,
    compute_tax,
)

from .builders import PROPERTY, SWISS_TAX

taxable_lines = st.lists(
    st.builds(
        TaxableLine,
        st.sampled_from(["A", "B", "C", "Z"]),
        st.integers(min_value=0, max_value=10**7),
    ),
    max_size=20,
)
tax_policies = st.builds(
    TaxPolicy,
    st.just(SWISS_TAX),
    st.sampled_from(PricingMode),
    st.sampled_from(TaxRounding),
    st.sampled_from([RoundingRule.HALF_UP, RoundingRule.HALF_EVEN]),
)


@PROPERTY
@given(tax_policies, taxable_lines)
def test_tax_summary_reconciles_exactly(policy: TaxPolicy, lines: list[TaxableLine]) -> None:
    result = compute_tax(policy, lines)
    amounts = sum(line.amount_minor for line in lines)
    assert sum(result.line_tax) == result.tax_minor
    for row in result.rows:
        assert row.net_minor + row.tax_minor == row.gross_minor
    if policy.pricing is PricingMode.INCLUSIVE:
        assert result.gross_minor == amounts
    else:
        assert result.net_minor == amounts
        assert result.gross_minor == amounts + result.tax_minor


@pytest.mark.parametrize(
    ("pricing", "rounding", "tax"),
    [
        pytest.param(PricingMode.INCLUSIVE, TaxRounding.PER_TOTAL, 226, id="incl-total"),
        pytest.param(PricingMode.INCLUSIVE, TaxRounding.PER_LINE, 225, id="incl-line"),
        pytest.param(PricingMode.EXCLUSIVE, TaxRounding.PER_TOTAL, 244, id="excl-total"),
        pytest.param(PricingMode.EXCLUSIVE, TaxRounding.PER_LINE, 243, id="excl-line"),
    ],
)
def test_rounding_per_line_or_per_total(
    pricing: PricingMode, rounding: TaxRounding, tax: int
) -> None:
    # three lines of 10.06 at 8.1 %: 75.38 tax each inclusive, so per line 3 × 75 = 225 while
    # per total round(226.15) = 226; exclusive 81.49 each: 3 × 81 = 243 against round(244.46)
    policy = TaxPolicy(SWISS_TAX, pricing, rounding)
    lines = [TaxableLine("A", 1006)] * 3
    assert compute_tax(policy, lines).tax_minor == tax


def test_rows_per_rate() -> None:
    policy = TaxPolicy(SWISS_TAX)
    result = compute_tax(policy, [TaxableLine("B", 500), TaxableLine("A", 1000)])
    assert [row.rate for row in result.rows] == [Decimal("0.026"), Decimal("0.081")]
    assert [row.codes for row in result.rows] == [("B",), ("A",)]
