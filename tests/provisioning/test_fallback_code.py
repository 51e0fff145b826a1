"""The typed fallback code: round trips, forgiving reading, a check symbol that catches typos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.errors import MalformedToken
from provisioning.fallback_code import (
    ALPHABET,
    DATA_SYMBOLS,
    LENGTH,
    check_symbol,
    format_code,
    hash_fallback_code,
    new_fallback_code,
    normalise_fallback_code,
)

DATA = st.text(alphabet=ALPHABET, min_size=DATA_SYMBOLS, max_size=DATA_SYMBOLS)


def _code(data: str) -> str:
    return data + check_symbol(data)


def test_new_codes_are_twelve_symbols_in_groups_of_four() -> None:
    code = new_fallback_code()

    assert len(code) == 14
    assert [len(group) for group in code.split("-")] == [4, 4, 4]
    assert normalise_fallback_code(code) == code.replace("-", "")


@given(data=DATA)
def test_formatted_code_round_trips(data: str) -> None:
    canonical = _code(data)

    assert normalise_fallback_code(format_code(canonical)) == canonical


@given(data=DATA)
def test_reading_forgives_case_spaces_and_look_alikes(data: str) -> None:
    canonical = _code(data)
    typed = " ".join(canonical).lower().replace("1", "l").replace("0", "o")

    assert normalise_fallback_code(typed) == canonical
    assert hash_fallback_code(typed) == hash_fallback_code(format_code(canonical))


@given(data=DATA, position=st.integers(0, LENGTH - 1), shift=st.integers(1, len(ALPHABET) - 1))
def test_check_symbol_catches_any_single_mistyped_symbol(
    data: str, position: int, shift: int
) -> None:
    canonical = _code(data)
    wrong = ALPHABET[(ALPHABET.index(canonical[position]) + shift) % len(ALPHABET)]
    typo = canonical[:position] + wrong + canonical[position + 1 :]

    with pytest.raises(MalformedToken, match="check character does not match"):
        normalise_fallback_code(typo)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        pytest.param("ABCD-EFGH-JK", "has 10 characters", id="too-short"),
        pytest.param("ABCD-EFGH-JKMNP", "has 13 characters", id="too-long"),
        pytest.param("ABCD-EFGH-JKU!", "never printed: !U", id="foreign-characters"),
    ],
)
def test_malformed_codes_say_what_is_wrong(typed: str, message: str) -> None:
    with pytest.raises(MalformedToken, match=message) as raised:
        normalise_fallback_code(typed)

    assert "re-type the 12-character code" in str(raised.value)
