from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.money import (
    CHF,
    JPY,
    KWD,
    Currency,
    RoundingRule,
    allocate,
    cash_round,
    format_amount,
    format_minor,
    from_minor,
    multiply,
    to_minor,
)

from .builders import PROPERTY


@pytest.mark.parametrize(
    ("amount", "rule", "minor"),
    [
        pytest.param("12.345", RoundingRule.HALF_UP, 1235, id="half-up"),
        pytest.param("12.345", RoundingRule.HALF_EVEN, 1234, id="half-even-down"),
        pytest.param("12.355", RoundingRule.HALF_EVEN, 1236, id="half-even-up"),
        pytest.param("-12.345", RoundingRule.HALF_UP, -1235, id="half-up-negative"),
        pytest.param("12.349", RoundingRule.DOWN, 1234, id="down"),
    ],
)
def test_to_minor_names_its_rounding(amount: str, rule: RoundingRule, minor: int) -> None:
    assert to_minor(Decimal(amount), CHF, rule) == minor


def test_to_minor_refuses_float() -> None:
    with pytest.raises(TypeError):
        to_minor(12.35, CHF, RoundingRule.HALF_UP)  # type: ignore[arg-type]


@PROPERTY
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_minor_major_round_trip(minor: int) -> None:
    assert to_minor(from_minor(minor, CHF), CHF, RoundingRule.HALF_EVEN) == minor
    assert to_minor(from_minor(minor, JPY), JPY, RoundingRule.HALF_EVEN) == minor


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        pytest.param(1235, "12.35", id="plain"),
        pytest.param(5, "0.05", id="small"),
        pytest.param(-700, "-7.00", id="negative"),
    ],
)
def test_format_minor(minor: int, text: str) -> None:
    assert format_minor(minor, CHF) == text


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        pytest.param(1235, JPY, "1235", id="JPY-no-decimals"),
        pytest.param(1235, KWD, "1.235", id="KWD-three-decimals"),
        pytest.param(-5, KWD, "-0.005", id="KWD-negative"),
        pytest.param(123456789, CHF, "1,234,567.89", id="CHF-grouped"),
        pytest.param(123456789, JPY, "123,456,789", id="JPY-grouped"),
    ],
)
def test_format_minor_uses_the_currency_exponent(minor: int, currency: Currency, text: str) -> None:
    grouped = "," in text
    assert format_minor(minor, currency, grouping=grouped) == text


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        pytest.param("1200", JPY, "1,200", id="JPY"),
        pytest.param("1.2345", KWD, "1.234", id="KWD-half-even"),
        pytest.param("21.735", CHF, "21.74", id="CHF-half-even-up"),
        pytest.param("-1.00", CHF, "-1.00", id="negative"),
    ],
)
def test_format_amount_rounds_by_a_named_rule(amount: str, currency: Currency, text: str) -> None:
    assert format_amount(Decimal(amount), currency, grouping=True) == text


@pytest.mark.parametrize(
    ("minor", "rounded"),
    [
        pytest.param(1232, 1230, id="down-to-0.30"),
        pytest.param(1233, 1235, id="up-to-0.35"),
        pytest.param(1237, 1235, id="down-to-0.35"),
        pytest.param(1238, 1240, id="up-to-0.40"),
        pytest.param(1235, 1235, id="exact"),
    ],
)
def test_cash_round_chf(minor: int, rounded: int) -> None:
    assert cash_round(minor, CHF.cash_increment_minor) == rounded


@PROPERTY
@given(st.integers(min_value=-(10**9), max_value=10**9), st.sampled_from([1, 5, 10, 100]))
def test_cash_round_is_nearest_multiple(minor: int, increment: int) -> None:
    rounded = cash_round(minor, increment)
    assert rounded % increment == 0
    assert abs(rounded - minor) * 2 <= increment


def test_multiply_weight() -> None:
    assert multiply(1290, Decimal("0.512"), RoundingRule.HALF_UP) == 660  # 660.48


@PROPERTY
@given(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30),
)
def test_allocate_is_exact_and_fair(total: int, weights: list[int]) -> None:
    shares = allocate(total, weights)
    assert sum(shares) == total
    weight_sum = sum(weights) or len(weights)
    effective = weights if sum(weights) else [1] * len(weights)
    for share, weight in zip(shares, effective, strict=True):
        exact = Decimal(total) * weight / weight_sum
        assert abs(Decimal(share) - exact) < 1


def test_allocate_nothing_over_nothing() -> None:
    assert allocate(0, []) == []
    with pytest.raises(ValueError, match="no weights"):
        allocate(1, [])
