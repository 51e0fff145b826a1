import contextlib
import dataclasses
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.barcodes import (
    EmbeddedKind,
    EmbeddedLayout,
    EmbeddedPrice,
    EmbeddedWeight,
    Gtin,
    Plu,
    Symbology,
    expand_upce,
    gs1_check_digit,
    has_valid_check_digit,
    parse_barcode,
    price_check_digit,
    scanned_digits,
    to_gtin14,
)
from edge.checkout.errors import BadCheckDigit, BarcodeError, UnknownBarcode

from .builders import PROPERTY


@pytest.mark.parametrize(
    ("code", "gtin14", "symbology"),
    [
        pytest.param("4006381333931", "04006381333931", Symbology.EAN13, id="ean13-stabilo"),
        pytest.param("5901234123457", "05901234123457", Symbology.EAN13, id="ean13-gs1-example"),
        pytest.param("036000291452", "00036000291452", Symbology.UPCA, id="upca-wikipedia"),
        pytest.param("96385074", "00000096385074", Symbology.EAN8, id="ean8-wikipedia"),
        pytest.param("04252614", "00042100005264", Symbology.UPCE, id="upce-expands"),
        pytest.param("10012345678902", "10012345678902", Symbology.GTIN14, id="gtin14"),
    ],
)
def test_published_gtins(code: str, gtin14: str, symbology: Symbology) -> None:
    assert parse_barcode(code) == Gtin(gtin14, symbology)
    assert to_gtin14(code) == gtin14


@pytest.mark.parametrize(
    ("upce", "upca"),
    [
        pytest.param("04252614", "042100005264", id="last-digit-1"),
        pytest.param("01234565", "012345000065", id="last-digit-5"),
        pytest.param("01234531", "012300000451", id="last-digit-3"),
        pytest.param("01234543", "012340000053", id="last-digit-4"),
    ],
)
def test_upce_expansion(upce: str, upca: str) -> None:
    assert expand_upce(upce) == upca
    assert has_valid_check_digit(upca)


def test_ambiguous_eight_digits_follow_the_scanner() -> None:
    # 01234565 is both a valid EAN-8 and a valid UPC-E; the scanner's symbology decides
    assert parse_barcode("01234565").symbology is Symbology.EAN8  # type: ignore[union-attr]
    upce = parse_barcode("01234565", symbology=Symbology.UPCE)
    assert upce == Gtin("00012345000065", Symbology.UPCE)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("4006381333932", 1, id="ean13"),
        pytest.param("036000291453", 2, id="upca"),
        pytest.param("96385075", 4, id="ean8"),
        pytest.param("10012345678903", 2, id="gtin14"),
    ],
)
def test_bad_check_digit(code: str, expected: int) -> None:
    with pytest.raises(BadCheckDigit) as info:
        parse_barcode(code)
    assert info.value.expected == expected
    assert "Scan again" in info.value.cashier_message


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("ABC123", id="letters"),
        pytest.param("123", id="three-digits"),
        pytest.param("1234567890", id="ten-digits"),
        pytest.param("", id="empty"),
    ],
)
def test_unknown_barcode(code: str) -> None:
    with pytest.raises(UnknownBarcode) as info:
        parse_barcode(code)
    assert info.value.reason
    assert info.value.cashier_message.startswith("Barcode not recognised")


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=7, max_size=13), st.data())
def test_check_digit_catches_every_single_digit_error(body: str, data: st.DataObject) -> None:
    code = body + str(gs1_check_digit(body))
    assert has_valid_check_digit(code)
    i = data.draw(st.integers(min_value=0, max_value=len(code) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != code[i]]))
    assert not has_valid_check_digit(code[:i] + wrong + code[i + 1 :])


@pytest.mark.parametrize(
    ("price", "digit"),
    [
        pytest.param("2875", 9, id="gs1-4-digit-example"),
        pytest.param("14685", 6, id="gs1-5-digit-example"),
        pytest.param("0000", 0, id="zero"),
    ],
)
def test_price_check_digit(price: str, digit: int) -> None:
    assert price_check_digit(price) == digit


def _with_check(body12: str) -> str:
    return body12 + str(gs1_check_digit(body12))


def test_embedded_price_with_price_check_digit() -> None:
    code = _with_check("20" + "12345" + str(price_check_digit("2875")) + "2875")
    assert parse_barcode(code) == EmbeddedPrice(item_key="2012345", price_minor=2875, raw=code)


def test_embedded_price_check_digit_wrong() -> None:
    code = _with_check("20" + "12345" + "0" + "2875")
    with pytest.raises(BadCheckDigit) as info:
        parse_barcode(code)
    assert info.value.what == "price check digit"


def test_embedded_weight() -> None:
    code = _with_check("23" + "00042" + "01234")
    assert parse_barcode(code) == EmbeddedWeight(
        item_key="2300042", weight_kg=Decimal("1.234"), raw=code
    )


def test_embedded_price_prefix_02() -> None:
    code = _with_check("02" + "55555" + "01990")
    assert parse_barcode(code) == EmbeddedPrice(item_key="0255555", price_minor=1990, raw=code)


@pytest.mark.parametrize(
    "code", [pytest.param("4011", id="plu4"), pytest.param("94011", id="plu5")]
)
def test_plu(code: str) -> None:
    assert parse_barcode(code) == Plu(code)


def test_upca_number_system_2_is_an_in_store_code() -> None:
    code = "2" + "55555" + "01990"
    code += str(gs1_check_digit(code))
    assert parse_barcode(code) == EmbeddedPrice(
        item_key="0255555", price_minor=1990, raw="0" + code
    )


@pytest.mark.parametrize(
    ("prefix", "item_digits"),
    [pytest.param("30", 5, id="not-in-store"), pytest.param("20", 6, id="too-many-digits")],
)
def test_layouts_are_checked(prefix: str, item_digits: int) -> None:
    with pytest.raises(ValueError, match=r"prefix|digits"):
        EmbeddedLayout(prefix, EmbeddedKind.PRICE, item_digits, 5, 2)


# -- what a scanner can really send ---------------------------------------------------------------
# A keyboard-wedge scanner types through the host's layout: Persian types U+06F0-06F9 on the number
# row, Arabic with Eastern Arabic numerals U+0660-0669, a Japanese IME in full-width mode
# U+FF10-FF19. Those are the keys 0-9 and are read as such; nothing else is.

WEDGE_ZEROS = [
    pytest.param(0xFF10, id="fullwidth"),
    pytest.param(0x0660, id="arabic-indic"),
    pytest.param(0x06F0, id="extended-arabic-indic"),
]


def _in_script(code: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in code)


@pytest.mark.parametrize("zero", WEDGE_ZEROS)
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("4006381333931", Gtin("04006381333931", Symbology.EAN13), id="ean13"),
        pytest.param("96385074", Gtin("00000096385074", Symbology.EAN8), id="ean8"),
        pytest.param("4011", Plu("4011"), id="plu"),
    ],
)
def test_wedge_layout_digits_read_as_ascii(zero: int, code: str, expected: object) -> None:
    """Regression: these used to come back as a non-ASCII GTIN the catalog never matches."""
    typed = _in_script(code, zero)

    assert parse_barcode(typed) == expected
    assert scanned_digits(typed) == code


@pytest.mark.parametrize("zero", WEDGE_ZEROS)
def test_wedge_layout_digits_give_an_ascii_gtin14(zero: int) -> None:
    assert to_gtin14(_in_script("036000291452", zero)) == "00036000291452"


def test_embedded_price_from_a_wedge_layout_is_ascii() -> None:
    code = _with_check("02" + "55555" + "01990")
    parsed = parse_barcode(_in_script(code, 0x06F0))
    assert parsed == EmbeddedPrice(item_key="0255555", price_minor=1990, raw=code)


NOT_SCANNER_DIGITS = [
    pytest.param("400638133393\u00b9", id="superscript-one"),
    pytest.param("\u00b2\u00b3\u00b9\u2070", id="superscripts-only"),
    pytest.param("400638133393\u2081", id="subscript-one"),
    pytest.param("400638133393\u2460", id="circled-one"),
    pytest.param("\u0966\u0967\u0968\u0969", id="devanagari"),
    pytest.param("\u09e6\u09e7\u09e8\u09e9", id="bengali"),
    pytest.param("\U0001d7ce\U0001d7cf\U0001d7d0\U0001d7d1", id="mathematical-bold"),
    pytest.param("4006381333931\x00", id="nul"),
    pytest.param("4006-381333931", id="dash"),
]


@pytest.mark.parametrize("code", NOT_SCANNER_DIGITS)
def test_other_digits_are_refused_with_the_cashier_message(code: str) -> None:
    """Regression: superscripts pass str.isdigit() and int() raised a bare ValueError."""
    with pytest.raises(UnknownBarcode) as info:
        parse_barcode(code)

    assert info.value.code == code
    assert info.value.cashier_message == (
        "Barcode not recognised (not all digits 0-9). Scan again or type the code."
    )


@pytest.mark.parametrize("code", NOT_SCANNER_DIGITS)
def test_other_digits_are_refused_as_a_gtin(code: str) -> None:
    with pytest.raises(UnknownBarcode):
        to_gtin14(code)
    assert not has_valid_check_digit(code)


@pytest.mark.parametrize("body", [pytest.param("\u00b2" * 12, id="superscripts")])
def test_check_digit_of_non_ascii_digits_is_refused_in_the_checkout_tree(body: str) -> None:
    with pytest.raises(UnknownBarcode):
        gs1_check_digit(body)


@PROPERTY
@given(
    st.text(
        st.characters(categories=["Nd", "No", "Nl"]) | st.sampled_from("0123456789 x"), max_size=16
    )
)
def test_any_text_parses_to_ascii_keys_or_raises_a_barcode_error(text: str) -> None:
    """Whatever arrives, the kiosk sees ASCII keys or a checkout error with a cashier message."""
    with contextlib.suppress(BarcodeError):
        parsed = parse_barcode(text)
        keys = [value for value in dataclasses.astuple(parsed) if isinstance(value, str)]
        assert all(re.fullmatch(r"[0-9]+", key) for key in keys), keys


@PROPERTY
@given(
    st.text(alphabet="0123456789", min_size=12, max_size=12),
    st.sampled_from([0xFF10, 0x0660, 0x06F0]),
)
def test_wedge_digits_parse_like_their_ascii_twins(body: str, zero: int) -> None:
    code = _with_check(body)
    assert parse_barcode(_in_script(code, zero)) == parse_barcode(code)
