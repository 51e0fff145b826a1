"""Printed columns: wide characters take two, combining marks none; cuts and pads by columns."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.text_columns import center, clean, columns, fit, pad_left, pad_right

from .builders import PROPERTY


@pytest.mark.parametrize(
    ("text", "width"),
    [
        pytest.param("Milk 1l", 7, id="ascii"),
        pytest.param("咖啡", 4, id="cjk-ideographs"),
        pytest.param("ｶﾌｪ", 3, id="halfwidth-katakana"),
        pytest.param("ＡＢ", 4, id="fullwidth-latin"),
        pytest.param("e\u0301", 1, id="combining-acute"),
        pytest.param("a\u200db", 2, id="zero-width-joiner"),
        pytest.param("Straße €", 8, id="latin-1-and-euro"),
        pytest.param("Ω±°", 3, id="ambiguous-is-one"),
    ],
)
def test_columns(text: str, width: int) -> None:
    assert columns(text) == width


def test_fit_never_splits_a_wide_character() -> None:
    assert fit("咖啡豆", 5) == "咖啡"
    assert fit("咖啡豆", 5, ellipsis="…") == "咖啡…"
    assert fit("Coffee", 6, ellipsis="…") == "Coffee"


def test_clean_replaces_what_would_break_a_line() -> None:
    assert clean("a\nb\tc\x1bd\u2028e\x85f") == "a?b?c?d?e?f"
    assert clean("Cafe\u0301") == "Café"


def test_pads_and_centre_count_columns() -> None:
    assert pad_right("咖", 4) == "咖  "
    assert pad_left("咖", 4) == "  咖"
    assert center("咖啡", 8) == "  咖啡  "
    assert center("Merci!", 32) == "Merci!".center(32)


@PROPERTY
@given(st.text(), st.integers(min_value=0, max_value=64), st.sampled_from(["", "…", "..."]))
def test_fit_is_within_width(text: str, width: int, ellipsis: str) -> None:
    cut = fit(text, width, ellipsis=ellipsis)
    assert columns(cut) <= width
    assert columns(pad_right(cut, width)) == width == columns(pad_left(cut, width))
    if columns(text) <= width:
        assert cut == text
