"""The catalog import's plain-code row check (issue 14's speed) takes exactly what
``CatalogItem`` takes: a row past any of its limits is refused in pydantic's own words, and a
taken row's body is the JSON ``CatalogItem`` writes."""

from __future__ import annotations

import pytest

from control_plane.catalog.import_rows import read_rows
from control_plane.catalog.schemas import CatalogItem

HEADER = "id,name,price,tax_class,department,gtins,plu,sku,sold_by\n"


def _refusal(row: str) -> tuple[int, str, str]:
    result = read_rows(HEADER + row + "\n", fmt="csv", exponent=2)
    assert result.items == []
    (error,) = result.errors
    return error.row, error.column, error.reason


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        pytest.param("I1,,1.00,A,,,,,", "name", "at least 1 character", id="empty-name"),
        pytest.param(f"I1,{'n' * 201},1.00,A,,,,,", "name", "at most 200", id="long-name"),
        pytest.param(f"{'i' * 65},N,1.00,A,,,,,", "id", "at most 64", id="long-id"),
        pytest.param("I1,N\x07,1.00,A,,,,,", "name", "match pattern", id="control-char"),
        pytest.param("I1,N,1.00,ABCDEFGHIJKLMNOPQ,,,,,", "tax_class", "at most 16", id="tax"),
        pytest.param(f"I1,N,1.00,A,{'d' * 101},,,,", "department", "at most 100", id="dept"),
        pytest.param("I1,N,1.00,A,,,12345678901234567,,", "plu", "at most 16", id="plu"),
        pytest.param("I1,N,1.00,A,,,,,kilo", "sold_by", "'piece' or 'weight'", id="sold-by"),
        pytest.param(
            "I1,N,1.00,A,," + " ".join(["7610200000019"] * 33) + ",,,",
            "gtins",
            "at most 32 items",
            id="gtins",
        ),
        pytest.param(
            "I1,N,99999999999999999999,A,,,,,",
            "price",
            "less than or equal",
            id="price-too-big",
        ),
    ],
)
def test_a_row_past_a_limit_is_refused_in_pydantics_words(
    row: str, column: str, words: str
) -> None:
    number, refused_column, reason = _refusal(row)
    assert (number, refused_column) == (2, column)
    assert words in reason


@pytest.mark.parametrize(
    ("price", "exponent", "minor"),
    [("1.750", 2, 175), ("1,234.5", 2, 123450), ("100.", 0, 100), (".5", 1, 5), ("7", 3, 7000)],
)
def test_prices_read_as_decimal_reads_them(price: str, exponent: int, minor: int) -> None:
    result = read_rows(f'id,name,price,tax_class\nI1,N,"{price}",A\n', fmt="csv", exponent=exponent)
    assert [item.price_minor for item in result.items] == [minor]


def test_a_taken_rows_body_is_the_json_catalog_item_writes() -> None:
    text = (
        "id,name,price,tax_class,department,gtins,plu,sku,sold_by,active\n"
        'I"1,"Crème ""brûlée"" \\ 🍮",3.50,B,Desserts,7610200000019 4006381333931,42,S-1,weight,\n'
        "I2,Plain,0,A,,,,,,no\n"
    )
    result = read_rows(text, fmt="csv", exponent=2)
    assert result.errors == []
    for item in result.items:
        expected = CatalogItem.model_validate({**item._asdict(), "version": 7})
        assert item.body(7) == expected.model_dump_json()
        assert item.as_catalog_item(7) == expected
