"""The appliance refuses at start a value the cloud could not store, naming the variable and fix.

The defect: ``STOREFLEET_EDGE_CURRENCY=EURO`` was accepted, every sale carried it, SQLite in the
cloud stored it, PostgreSQL's 3-character column refused it, and that device's replication stopped
for good.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from edge.settings import EdgeSettings, describe
from protocols.limits import CurrencyCode, Identifier

BAD_CURRENCIES = [
    pytest.param("EURO", id="four-letters"),
    pytest.param("eur", id="lower-case"),
    pytest.param("EU", id="two-letters"),
    pytest.param("", id="empty"),
    pytest.param("E1R", id="digit"),
    pytest.param("ÉUR", id="non-ascii"),
    pytest.param("EUR\n", id="trailing-newline"),
]


def _settings(**values: str) -> EdgeSettings:
    return EdgeSettings(device_id="reg-1", **values)


@pytest.mark.parametrize("currency", BAD_CURRENCIES)
def test_a_currency_the_cloud_cannot_store_is_refused_naming_the_variable_and_fix(
    currency: str,
) -> None:
    with pytest.raises(ValidationError) as info:
        _settings(currency=currency)

    assert describe(info.value, EdgeSettings) == (
        f"STOREFLEET_EDGE_CURRENCY={currency}: not a currency code the cloud can store: set the"
        " ISO 4217 code the store sells in, 3 capital letters such as EUR, CHF or GBP"
    )


def test_the_currency_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFLEET_EDGE_DEVICE_ID", "reg-1")
    monkeypatch.setenv("STOREFLEET_EDGE_CURRENCY", "EURO")

    with pytest.raises(ValidationError) as info:
        EdgeSettings()

    assert describe(info.value, EdgeSettings).startswith("STOREFLEET_EDGE_CURRENCY=EURO: ")


@pytest.mark.parametrize("currency", ["EUR", "CHF", "JPY", "GBP"])
def test_an_iso_4217_code_is_accepted(currency: str) -> None:
    assert _settings(currency=currency).currency == currency


@pytest.mark.parametrize(
    "register_id",
    [
        pytest.param("", id="empty"),
        pytest.param("R" * 65, id="longer-than-the-column"),
        pytest.param("R\x001", id="nul"),
        pytest.param("R\n1", id="newline"),
    ],
)
def test_a_register_id_the_sale_body_cannot_carry_is_refused(register_id: str) -> None:
    with pytest.raises(ValidationError) as info:
        _settings(register_id=register_id)

    message = describe(info.value, EdgeSettings)
    assert message.startswith("STOREFLEET_EDGE_REGISTER_ID=")
    assert message.endswith(
        ": cannot name a register: set 1 to 64 characters without control"
        " characters, such as 1 or R2"
    )


@pytest.mark.parametrize("register_id", ["1", "R2", "R" * 64])
def test_a_register_id_within_the_limits_is_accepted(register_id: str) -> None:
    assert _settings(register_id=register_id).register_id == register_id


def _accepts(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


CURRENCY = TypeAdapter(CurrencyCode)
IDENTIFIER = TypeAdapter(Identifier)


@settings(derandomize=True, max_examples=300)
@given(value=st.text(max_size=5) | st.text("ABCXYZabc1 ", min_size=2, max_size=4))
def test_the_settings_accept_exactly_the_currencies_the_sale_body_accepts(value: str) -> None:
    assert _accepts_setting("currency", value) == _accepts(CURRENCY, value)


@settings(derandomize=True, max_examples=300)
@given(value=st.text(max_size=70) | st.text("R1\x00\x1f\x7f", max_size=4))
def test_the_settings_accept_exactly_the_register_ids_the_sale_body_accepts(value: str) -> None:
    assert _accepts_setting("register_id", value) == _accepts(IDENTIFIER, value)


def _accepts_setting(field: str, value: str) -> bool:
    try:
        _settings(**{field: value})
    except ValidationError:
        return False
    return True
