"""The typed fallback code: round trips, forgiving reading, a check symbol that catches typos."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.errors import MalformedToken
from provisioning.fallback_code import (
    ALPHABET,
    DATA_SYMBOLS,
    LENGTH,
    check_symbol,
    damm_step,
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


# -- the check symbol: every single substitution and every adjacent swap, exhaustively -----------
#
# Reading runs state = state * symbol over the 12 symbols. Two lemmas over the 32x32 table, each
# checked for every case, make the proof complete for codes of any content:
#   1. every row and every column is a permutation: a different symbol at one position gives a
#      different state there, and every later step maps different states to different states;
#   2. the table is totally anti-symmetric: (c*x)*y == (c*y)*x only when x == y, so a swap of
#      neighbours x != y gives a different state after the pair, and lemma 1 carries it to the end.
# The end-to-end tests then try every position and every ordered pair of symbols on real codes.

SYMBOLS = range(len(ALPHABET))


def test_every_row_and_column_of_the_quasigroup_is_a_permutation() -> None:
    rows = [sorted(damm_step(x, y) for y in SYMBOLS) for x in SYMBOLS]
    columns = [sorted(damm_step(x, y) for x in SYMBOLS) for y in SYMBOLS]

    assert rows == columns == [list(SYMBOLS)] * len(ALPHABET)


def test_the_quasigroup_is_totally_anti_symmetric() -> None:
    collisions = [
        (c, x, y)
        for c in SYMBOLS
        for x in SYMBOLS
        for y in SYMBOLS
        if x != y and damm_step(damm_step(c, x), y) == damm_step(damm_step(c, y), x)
    ]

    assert collisions == []


def _valid_code(fixed: dict[int, str], *, filler: str) -> str:
    """A valid code with the symbols of ``fixed`` at their positions, ``filler`` elsewhere."""
    data = [fixed.get(position, filler) for position in range(DATA_SYMBOLS)]
    if DATA_SYMBOLS not in fixed:
        code = "".join(data) + check_symbol("".join(data))
    else:
        # the check symbol is asked for: the last free data symbol sets the state before it,
        # and each state has its own check symbol, so exactly one choice ends as wanted
        free = max(p for p in range(DATA_SYMBOLS) if p not in fixed)
        fits = [
            s
            for s in ALPHABET
            if check_symbol("".join(data[:free]) + s + "".join(data[free + 1 :]))
            == fixed[DATA_SYMBOLS]
        ]
        data[free] = fits[0]
        code = "".join(data) + fixed[DATA_SYMBOLS]
    assert normalise_fallback_code(code) == code
    assert all(code[position] == symbol for position, symbol in fixed.items())
    return code


@pytest.mark.parametrize("filler", [pytest.param(f, id=f"filler-{f}") for f in "0Z7"])
def test_every_single_substitution_at_every_position_is_caught(filler: str) -> None:
    missed = []
    for position in range(LENGTH):
        for right in ALPHABET:
            code = _valid_code({position: right}, filler=filler)
            for wrong in ALPHABET.replace(right, ""):
                typo = code[:position] + wrong + code[position + 1 :]
                with contextlib.suppress(MalformedToken):
                    normalise_fallback_code(typo)
                    missed.append(typo)

    assert missed == []


@pytest.mark.parametrize("filler", [pytest.param(f, id=f"filler-{f}") for f in "0Z7"])
def test_every_adjacent_transposition_at_every_position_is_caught(filler: str) -> None:
    missed = []
    for position in range(LENGTH - 1):
        for first in ALPHABET:
            for second in ALPHABET.replace(first, ""):
                code = _valid_code({position: first, position + 1: second}, filler=filler)
                swapped = code[:position] + second + first + code[position + 2 :]
                with contextlib.suppress(MalformedToken):
                    normalise_fallback_code(swapped)
                    missed.append(swapped)

    assert missed == []


def test_a_swap_of_0_and_z_is_caught() -> None:
    """Regression: Luhn mod 32 let `0Z` <-> `Z0` through, since 0 and 31 double to the same sum."""
    canonical = _code("0Z" + "1" * (DATA_SYMBOLS - 2))
    swapped = "Z0" + canonical[2:]

    with pytest.raises(MalformedToken, match="check character does not match"):
        normalise_fallback_code(swapped)


# -- compatibility with appliances that still check with Luhn mod 32 ----------------------------


def _passes_luhn_mod_32(code: str) -> bool:
    """The check older appliance images run, written out here independently of the module."""
    total = 0
    for position, symbol in enumerate(reversed(code)):
        addend = ALPHABET.index(symbol) * (2 if position % 2 else 1)
        total += addend // 32 + addend % 32
    return total % 32 == 0


@pytest.mark.parametrize("draw", range(200))
def test_new_codes_pass_the_old_luhn_check_too(draw: int) -> None:
    canonical = normalise_fallback_code(new_fallback_code())

    assert _passes_luhn_mod_32(canonical)


def test_all_zero_code_is_valid_and_a_last_symbol_change_is_not() -> None:
    """The control plane API tests use 0000-0000-0001 as the code with a bad check."""
    assert normalise_fallback_code("0000-0000-0000") == "0" * LENGTH
    with pytest.raises(MalformedToken, match="check character"):
        normalise_fallback_code("0000-0000-0001")
