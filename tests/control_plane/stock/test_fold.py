"""The fold on its own: what each kind does to a figure, and lines it cannot place skipped by
reason — never guessed, never allowed to overflow a figure."""

# one case per line reads best:
# ruff: noqa: E501

from __future__ import annotations

from typing import Any

import pytest

from control_plane.stock.fold import Level, fold, item_codes
from protocols.vocabulary import JournalKind as K

MILK = "07610200000019"


def lines(**line: Any) -> dict[str, Any]:
    return {"lines": [line]}


def test_a_count_sets_the_level_and_movements_after_it_add() -> None:
    effects = fold(
        [
            (K.SALE_COMPLETED, 0, lines(sku="I1", quantity="2")),
            (K.STOCK_COUNT_COMMITTED, 0, lines(gtin=MILK, counted=10)),
            (K.SALE_COMPLETED, 86_400_000, lines(sku="I1", quantity="3")),
            (K.SALE_RETURNED, 0, lines(item_id="I1", quantity="1")),
            (K.STOCK_ADJUSTED, 0, lines(gtin=MILK, quantity=-2)),
        ],
        gtin_of={"I1": MILK},
    )
    assert effects.levels == {MILK: Level(set_to=10, delta=-4)}
    assert effects.levels[MILK].apply(999) == 6
    assert effects.sold == {(MILK, 0): 2, (MILK, 1): 3}
    assert effects.item_ids == {MILK: "I1"}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param((K.SALE_COMPLETED, 0, lines(sku="cash-rounding", quantity="1")), "not_a_gtin", id="rounding"),
        pytest.param((K.SALE_COMPLETED, 0, lines(sku=MILK, quantity="0.532")), "not_whole_units", id="weighed"),
        pytest.param((K.SALE_COMPLETED, 0, lines(sku=MILK, quantity="1E+30")), "not_whole_units", id="huge"),
        pytest.param((K.SALE_RETURNED, 0, lines(quantity="1")), "no_code", id="no-code"),
        pytest.param((K.STOCK_COUNT_COMMITTED, 0, lines(gtin=MILK, counted=-1)), "bad_count_line", id="negative-count"),
        pytest.param((K.STOCK_COUNT_COMMITTED, 0, lines(gtin="7610200000019", counted=1)), "bad_count_line", id="count-not-gtin14"),
        pytest.param((K.STOCK_TRANSFER_SENT, 0, lines(gtin=MILK, quantity=1)), "invalid_transfer", id="transfer-no-id"),
    ],
)  # fmt: skip
def test_a_line_the_fold_cannot_place_is_skipped_by_reason(
    record: tuple[str, int, dict[str, Any]], reason: str
) -> None:
    effects = fold([record], gtin_of={})
    assert effects.levels == {}
    assert effects.skipped == {reason: 1}


def test_codes_that_are_no_gtin_are_asked_of_the_catalog_as_the_register_does() -> None:
    records = [
        (K.SALE_COMPLETED, 0, {"lines": [{"sku": "I1"}, {"sku": MILK[1:]}]}),
        (K.SALE_RETURNED, 0, lines(item_id="I2")),
        (K.STOCK_RECEIVED, 0, lines(gtin="I3")),
    ]
    assert item_codes(records) == {"I1", "I2", "I3"}
