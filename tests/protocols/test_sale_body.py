"""The one ``sale.completed`` body: what the register writes is what the cloud reads, and no more.

The cloud used to read a sale with ``body.get("total_minor", 0)``: a body without a total was
booked as a sale of 0. A body is now a :class:`SaleBody` or it is refused, naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.canonical import canonical_text
from protocols.limits import ID_LENGTH, INT64_MAX
from protocols.sale_body import InvalidSaleBody, SaleBody, quantity

#: A body as the ledger has written it since the first release (captured from a ledger).
GOLDEN: dict[str, Any] = {
    "sale_id": "sale-1",
    "register_id": "1",
    "receipt_no": 1,
    "currency": "EUR",
    "total_minor": 447,
    "tendered_minor": 500,
    "change_minor": 53,
    "lines": [
        {
            "sku": "4006381333931",
            "description": "Stabilo pen",
            "quantity": "2",
            "unit_price_minor": 129,
            "amount_minor": 258,
        },
        {
            "sku": "2012345002500",
            "description": "Apples (weighed)",
            "quantity": "0.756",
            "unit_price_minor": 250,
            "amount_minor": 189,
        },
    ],
    "tenders": [{"kind": "cash", "amount_minor": 500, "reference": None}],
    "shift_id": "shift-7",
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**GOLDEN, **changes}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOLDEN.items() if k != key}


def test_a_body_the_ledger_wrote_reads_back_to_the_same_canonical_text() -> None:
    sale = SaleBody.from_body(GOLDEN)

    assert sale.total_minor == 447
    assert quantity(sale.lines[1]) == Decimal("0.756")
    assert canonical_text(sale.to_body()) == canonical_text(GOLDEN)


def test_checkout_detail_and_extra_keys_are_kept_as_they_are() -> None:
    detail = {"kind": "sale.completed", "v": 1, "tax_rows": [{"rate": "0.081"}]}

    body = SaleBody.from_body(_with(checkout=detail)).to_body()

    assert body["checkout"] == detail
    assert body["shift_id"] == "shift-7"
    assert "checkout" not in SaleBody.from_body(GOLDEN).to_body()


REFUSED = [
    pytest.param(_without("total_minor"), "total_minor: Field required", id="no-total"),
    pytest.param(_without("currency"), "currency: Field required", id="no-currency"),
    pytest.param(_with(currency="EURO"), "currency: String should match", id="currency-EURO"),
    pytest.param(_with(currency="eur"), "currency: String should match", id="currency-lower"),
    pytest.param(
        _with(sale_id="s" * (ID_LENGTH + 1)),
        "sale_id: String should have at most",
        id="long-sale-id",
    ),
    pytest.param(_with(sale_id="sale\x001"), "sale_id: String should match", id="nul-in-sale-id"),
    pytest.param(_with(receipt_no=0), "receipt_no: Input should be greater", id="receipt-zero"),
    pytest.param(
        _with(receipt_no=INT64_MAX + 1), "receipt_no: Input should be less", id="receipt-2^63"
    ),
    pytest.param(
        _with(total_minor="447"), "total_minor: Input should be a valid integer", id="total-string"
    ),
    pytest.param(
        _with(total_minor=448, change_minor=52), "not the sum of the lines", id="total-off"
    ),
    pytest.param(_with(tendered_minor=499), "not the sum of the tenders", id="tendered-off"),
    pytest.param(_with(change_minor=0), "change_minor 0 is not tendered", id="change-off"),
    pytest.param(_with(lines=[]), "lines: List should have at least 1 item", id="no-lines"),
    pytest.param(
        _with(
            tenders=[{"kind": "cash", "amount_minor": 400, "reference": None}],
            tendered_minor=400,
            change_minor=0,
        ),
        "do not cover the total",
        id="tender-short",
    ),
    pytest.param(
        _with(lines=[{**GOLDEN["lines"][0], "quantity": 2}, GOLDEN["lines"][1]]),
        "lines.0.quantity: Input should be a valid string",
        id="quantity-number",
    ),
    pytest.param(
        _with(lines=[{**GOLDEN["lines"][0], "quantity": "NaN"}, GOLDEN["lines"][1]]),
        "lines.0.quantity: String should match pattern",
        id="quantity-nan",
    ),
    pytest.param(
        _with(lines=[{**GOLDEN["lines"][0], "quantity": "two"}, GOLDEN["lines"][1]]),
        "lines.0.quantity: String should match pattern",
        id="quantity-words",
    ),
    pytest.param(
        _with(lines=[{**GOLDEN["lines"][0], "discount": 1}, GOLDEN["lines"][1]]),
        "lines.0.discount: Extra inputs are not permitted",
        id="unknown-line-field",
    ),
]


@pytest.mark.parametrize(("body", "reason"), REFUSED)
def test_a_body_that_is_not_a_sale_is_refused_naming_the_field(
    body: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidSaleBody) as info:
        SaleBody.from_body(body)

    assert info.value.reason.startswith("sale.completed body invalid at ")
    assert reason in info.value.reason


# -- generated sales ------------------------------------------------------------------------------

names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)
money = st.integers(-(10**9), 10**9)
quantities = st.decimals(
    min_value=Decimal("-999"), max_value=Decimal("999"), places=3, allow_nan=False
).filter(lambda q: q != 0)


@st.composite
def sale_bodies(draw: st.DrawFn) -> dict[str, Any]:
    lines = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "sku": names,
                    "description": st.text(max_size=40).filter(lambda t: "\x00" not in t),
                    "quantity": quantities.map(str),
                    "unit_price_minor": money,
                    "amount_minor": money,
                }
            ),
            min_size=1,
            max_size=5,
        )
    )
    total = sum(line["amount_minor"] for line in lines)
    amounts = draw(st.lists(st.integers(1, 10**9), max_size=3))
    if sum(amounts) < total:
        amounts.append(total - sum(amounts))
    tenders = [
        {"kind": draw(names), "amount_minor": amount, "reference": draw(st.none() | names)}
        for amount in amounts
    ]
    return {
        "sale_id": draw(names),
        "register_id": draw(names),
        "receipt_no": draw(st.integers(1, INT64_MAX)),
        "currency": draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)),
        "total_minor": total,
        "tendered_minor": sum(amounts),
        "change_minor": sum(amounts) - total,
        "lines": lines,
        "tenders": tenders,
    }


@settings(derandomize=True, max_examples=200)
@given(body=sale_bodies())
def test_every_valid_sale_reads_back_to_the_body_it_was_read_from(body: dict[str, Any]) -> None:
    assert canonical_text(SaleBody.from_body(body).to_body()) == canonical_text(body)


@settings(derandomize=True, max_examples=200)
@given(body=sale_bodies(), key=st.sampled_from(sorted(GOLDEN.keys() - {"shift_id"})))
def test_a_sale_missing_any_summary_field_is_refused(body: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidSaleBody, match=f"{key}: Field required"):
        SaleBody.from_body({k: v for k, v in body.items() if k != key})
