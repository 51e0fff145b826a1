"""Customer ids and card payloads: round trips, forgiving reading, a check that catches typos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.customer_card import (
    CARD_PREFIX,
    DATA_SYMBOLS,
    ID_LENGTH,
    InvalidCustomerCard,
    format_customer_card,
    is_customer_card,
    new_customer_id,
    normalise_customer_id,
    parse_customer_card,
)
from protocols.damm32 import ALPHABET, check_symbol
from protocols.errors import ProtocolError

DATA = st.text(alphabet=ALPHABET, min_size=DATA_SYMBOLS, max_size=DATA_SYMBOLS)


def _id(data: str) -> str:
    return "C" + data + check_symbol(data)


def test_new_ids_are_the_mark_twelve_symbols_and_a_check() -> None:
    customer_id = new_customer_id()

    assert len(customer_id) == ID_LENGTH == 14
    assert customer_id.startswith("C")
    assert set(customer_id[1:]) <= set(ALPHABET)
    assert normalise_customer_id(customer_id) == customer_id


def test_new_ids_are_random() -> None:
    assert len({new_customer_id() for _ in range(1000)}) == 1000


@given(data=DATA)
def test_card_payload_round_trips(data: str) -> None:
    customer_id = _id(data)
    card = format_customer_card(customer_id)

    assert card == CARD_PREFIX + customer_id
    assert is_customer_card(card)
    assert parse_customer_card(card) == customer_id


@given(data=DATA)
def test_typed_id_forgives_case_spaces_and_look_alikes(data: str) -> None:
    customer_id = _id(data)
    typed = " ".join(customer_id).lower().replace("1", "l").replace("0", "o")

    assert normalise_customer_id(typed) == customer_id
    assert parse_customer_card("sfc1:" + typed) == customer_id


@given(data=DATA, position=st.integers(1, ID_LENGTH - 1), shift=st.integers(1, len(ALPHABET) - 1))
def test_every_single_substitution_is_refused(data: str, position: int, shift: int) -> None:
    customer_id = _id(data)
    wrong = ALPHABET[(ALPHABET.index(customer_id[position]) + shift) % len(ALPHABET)]
    misread = customer_id[:position] + wrong + customer_id[position + 1 :]

    with pytest.raises(InvalidCustomerCard, match="check character does not match"):
        parse_customer_card(CARD_PREFIX + misread)


@given(data=DATA, position=st.integers(1, ID_LENGTH - 2))
def test_every_adjacent_transposition_is_refused(data: str, position: int) -> None:
    customer_id = _id(data)
    first, second = customer_id[position], customer_id[position + 1]
    swapped = customer_id[:position] + second + first + customer_id[position + 2 :]

    if first == second:  # swapping equal neighbours is no typo at all
        assert normalise_customer_id(swapped) == customer_id
    else:
        with pytest.raises(InvalidCustomerCard, match="check character does not match"):
            normalise_customer_id(swapped)


def test_every_substitution_and_swap_of_one_id_is_refused_exhaustively() -> None:
    customer_id = new_customer_id()
    refused = 0
    for position in range(1, ID_LENGTH):
        for wrong in ALPHABET.replace(customer_id[position], ""):
            with pytest.raises(InvalidCustomerCard):
                normalise_customer_id(customer_id[:position] + wrong + customer_id[position + 1 :])
            refused += 1
    swaps = [
        customer_id[:p] + customer_id[p + 1] + customer_id[p] + customer_id[p + 2 :]
        for p in range(1, ID_LENGTH - 1)
        if customer_id[p] != customer_id[p + 1]
    ]
    for swapped in swaps:
        with pytest.raises(InvalidCustomerCard):
            normalise_customer_id(swapped)
        refused += 1

    assert refused == (ID_LENGTH - 1) * (len(ALPHABET) - 1) + len(swaps)


@pytest.mark.parametrize(
    ("scanned", "reason"),
    [
        pytest.param("4006381333931", "does not start with 'SFC1:'", id="an-item-barcode"),
        pytest.param("SFC1:", "starts with 'C'", id="empty-id"),
        pytest.param("SFC1:X5T0K8J2M9QXR7", "starts with 'C'", id="wrong-mark"),
        pytest.param("SFC1:C5T0K8J2M9QX", "has 14 characters, this one has 12", id="cut-short"),
        pytest.param("SFC1:C5T0K8J2M9QXR7U", "has 14 characters, this one has 15", id="too-long"),
        pytest.param("SFC1:C5T0K8J2M9QX!U", "never printed: !U", id="foreign-characters"),
    ],
)
def test_malformed_cards_say_what_is_wrong(scanned: str, reason: str) -> None:
    with pytest.raises(InvalidCustomerCard, match=reason) as raised:
        parse_customer_card(scanned)

    assert isinstance(raised.value, ProtocolError)
    assert raised.value.reason


def test_a_bad_id_is_never_formatted_for_printing() -> None:
    customer_id = new_customer_id()
    damaged = customer_id[:-1] + ("0" if customer_id[-1] != "0" else "1")

    with pytest.raises(InvalidCustomerCard):
        format_customer_card(damaged)


def test_an_item_barcode_is_not_a_customer_card() -> None:
    assert not is_customer_card("4006381333931")
    assert is_customer_card(" sfc1:C5T0K8J2M9QXR7 ")  # a damaged card is still meant as a card
