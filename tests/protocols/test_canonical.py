"""Canonical JSON: one byte string per value, the same on the appliance and in the cloud."""

import functools
import json
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.canonical import JsonValue, canonical_bytes, canonical_text
from protocols.errors import NonCanonicalValue

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"b": 1, "a": 2}, b'{"a":2,"b":1}', id="sorted-keys"),
        pytest.param(
            {"a": [1, 2], "b": {"d": None, "c": True}},
            b'{"a":[1,2],"b":{"c":true,"d":null}}',
            id="nested",
        ),
        pytest.param(["x", False, None, -7], b'["x",false,null,-7]', id="list"),
        pytest.param(("x", 1), b'["x",1]', id="tuple-is-list"),
        pytest.param("café", '"café"'.encode(), id="utf8-not-escaped"),
        pytest.param("tab\there", b'"tab\\there"', id="control-escaped"),
        pytest.param({"€": "1.00"}, '{"€":"1.00"}'.encode(), id="non-ascii-key"),
        pytest.param(True, b"true", id="bool-not-int"),
        pytest.param(10**20, b"100000000000000000000", id="big-int"),
        pytest.param({}, b"{}", id="empty-object"),
        pytest.param({"Z": 1, "a": 2, "_": 3}, b'{"Z":1,"_":3,"a":2}', id="code-point-order"),
    ],
)
def test_golden_canonical_bytes(value: object, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


@settings(derandomize=True)
@given(value=json_objects)
def test_key_order_does_not_matter(value: dict[str, JsonValue]) -> None:
    reordered = dict(reversed(list(value.items())))

    assert canonical_bytes(reordered) == canonical_bytes(value)


@settings(derandomize=True)
@given(value=json_values)
def test_round_trips_through_json(value: JsonValue) -> None:
    assert json.loads(canonical_bytes(value)) == value


@settings(derandomize=True)
@given(value=json_values)
def test_is_a_fixed_point(value: JsonValue) -> None:
    once = canonical_bytes(value)

    assert canonical_bytes(json.loads(once)) == once


visible_text = st.text(st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), max_size=8)
visible_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers() | visible_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(visible_text, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(derandomize=True)
@given(value=visible_values)
def test_has_no_insignificant_white_space(value: JsonValue) -> None:
    out = canonical_bytes(value)

    assert not set(out) & set(b" \t\r\n")


@pytest.mark.parametrize(
    ("value", "path", "kind"),
    [
        pytest.param(1.5, "$", "float", id="top-level-float"),
        pytest.param({"total": 12.99}, ".total", "float", id="float-in-object"),
        pytest.param(
            {"lines": [{"qty": 1}, {"qty": 0.5}]}, ".lines[1].qty", "float", id="deep-float"
        ),
        pytest.param([1, float("nan")], "[1]", "float", id="nan"),
        pytest.param({"x": float("inf")}, ".x", "float", id="infinity"),
        pytest.param({"n": 1.0}, ".n", "float", id="integral-float"),
        pytest.param(Decimal("1.00"), "$", "Decimal", id="top-level-decimal"),
        pytest.param({"price": Decimal("2.50")}, ".price", "Decimal", id="decimal-in-object"),
        pytest.param({"a": {"b": [Decimal(1)]}}, ".a.b[0]", "Decimal", id="deep-decimal"),
    ],
)
def test_floats_and_decimals_are_refused_by_path(value: object, path: str, kind: str) -> None:
    with pytest.raises(NonCanonicalValue, match=rf"^{kind} at {re.escape(path)}:") as info:
        canonical_bytes(value)

    assert info.value.metric_label == "non_canonical"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        pytest.param({1: "a"}, "$", id="int-key"),
        pytest.param({None: "a"}, "$", id="none-key"),
        pytest.param({("a", "b"): 1}, "$", id="tuple-key"),
        pytest.param({"a": {True: 1}}, ".a", id="nested-bool-key"),
    ],
)
def test_non_string_keys_are_refused(value: object, path: str) -> None:
    with pytest.raises(NonCanonicalValue, match=rf"non-string key .* at {re.escape(path)}$"):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param(object(), id="object"),
        pytest.param({"when": complex(1, 2)}, id="complex"),
    ],
)
def test_values_without_a_json_form_are_refused(value: object) -> None:
    with pytest.raises(NonCanonicalValue):
        canonical_bytes(value)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        pytest.param(b"\x00\x01", "$", id="bytes"),
        pytest.param({"blob": bytearray(b"ab")}, ".blob", id="bytearray"),
        pytest.param({"a": [memoryview(b"ab")]}, ".a[0]", id="memoryview"),
    ],
)
def test_bytes_are_refused_by_path(value: object, path: str) -> None:
    with pytest.raises(NonCanonicalValue, match=rf"^bytes at {re.escape(path)}:"):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(json.loads('{"description": "\\ud800"}'), id="lone-high-surrogate"),
        pytest.param(["\udfff"], id="lone-low-surrogate"),
        pytest.param("é\ud83d", id="half-a-pair"),
    ],
)
@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
def test_lone_surrogates_are_refused(value: object, check: bool) -> None:
    with pytest.raises(NonCanonicalValue, match="not valid Unicode"):
        canonical_bytes(value, checked=check)


@settings(derandomize=True)
@given(value=json_values)
def test_text_is_the_bytes_decoded(value: JsonValue) -> None:
    assert canonical_text(value).encode() == canonical_bytes(value)


@settings(derandomize=True)
@given(value=json_values)
def test_unchecked_form_is_the_same_for_canonical_values(value: JsonValue) -> None:
    assert canonical_bytes(value, checked=False) == canonical_bytes(value)


# -- the fast encoder writes the defining text ----------------------------------------------------
# canonical_text is DEFINED as the standard library's sorted, compact, unescaped json.dumps: every
# hash in every ledger was computed over that text. orjson writes it now; these generated values
# cover what a journal body holds (every kind of character, quantities and prices as Decimal
# strings, nesting, integers beyond 64 bits) and must give the same bytes through both.


def _defining_text(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


tricky_characters = st.sampled_from(
    ["\x00", "\x1f", "\x7f", '"', "\\", "/", "\u2028", "\u2029", "\ufeff", "\uffff", "\U0010ffff"]
)
any_text = st.text(st.characters(codec="utf-8") | tricky_characters, max_size=12)
decimal_strings = st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)
wide_integers = st.integers(-(2**64), 2**64) | st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**30)]
)
body_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | wide_integers | any_text | decimal_strings,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=30,
)
sale_like_bodies = st.fixed_dictionaries(
    {
        "sale_id": st.uuids().map(str),
        "currency": st.sampled_from(["EUR", "CHF", "JPY"]),
        "total_minor": wide_integers,
        "lines": st.lists(
            st.fixed_dictionaries(
                {"sku": any_text, "description": any_text, "quantity": decimal_strings}
            ),
            max_size=4,
        ),
    },
    optional={"checkout": st.dictionaries(any_text, body_values, max_size=4)},
)


@settings(derandomize=True, max_examples=300)
@given(value=body_values | sale_like_bodies)
def test_fast_encoder_writes_the_defining_text(value: JsonValue) -> None:
    expected = _defining_text(value)

    assert canonical_text(value) == expected
    assert canonical_text(value, checked=False) == expected
    assert canonical_bytes(value, checked=False) == expected.encode()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"n": 2**64}, id="beyond-64-bits"),
        pytest.param({"n": -(2**63) - 1}, id="below-int64"),
        pytest.param(functools.reduce(lambda inner, _: [inner], range(300), 0), id="deep-300"),
    ],
)
def test_values_only_the_standard_library_writes_keep_their_text(value: object) -> None:
    assert canonical_text(value) == _defining_text(value)
    assert canonical_bytes(value) == _defining_text(value).encode()


def test_lone_surrogate_unchecked_text_is_the_defining_text() -> None:
    value = {"description": "\ud800"}

    assert canonical_text(value, checked=False) == _defining_text(value)
