"""The contract's ISO 4217 minor units: an amount reads with its currency's digits on every side."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.money import CHF, EUR, JPY, KWD, SEK, USD, Currency
from edge.checkout.money import format_minor as edge_format_minor
from protocols.currency import MINOR_UNIT_DIGITS, format_minor, minor_unit_digits


@pytest.mark.parametrize(
    ("minor", "code", "text"),
    [
        pytest.param(1290, "JPY", "1290", id="JPY-no-digits"),
        pytest.param(1290, "EUR", "12.90", id="EUR-two-digits"),
        pytest.param(1290, "KWD", "1.290", id="KWD-three-digits"),
        pytest.param(-5, "BHD", "-0.005", id="BHD-negative"),
        pytest.param(12345, "CLF", "1.2345", id="CLF-four-digits"),
        pytest.param(7, "XYZ", "0.07", id="unlisted-code-two-digits"),
    ],
)
def test_an_amount_has_its_currencys_digits(minor: int, code: str, text: str) -> None:
    assert format_minor(minor, code) == text


@given(minor=st.integers(-(2**63), 2**63 - 1), code=st.sampled_from([*MINOR_UNIT_DIGITS, "EUR"]))
def test_the_text_reads_back_to_the_same_minor_units(minor: int, code: str) -> None:
    assert Decimal(format_minor(minor, code)).scaleb(minor_unit_digits(code)) == minor


@pytest.mark.parametrize("currency", [CHF, EUR, SEK, USD, JPY, KWD], ids=lambda c: c.code)
def test_the_registers_currencies_agree_with_the_contracts_table(currency: Currency) -> None:
    assert minor_unit_digits(currency.code) == currency.exponent
    assert format_minor(123456, currency.code) == edge_format_minor(123456, currency)
