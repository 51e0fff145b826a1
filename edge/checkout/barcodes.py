"""Scanned and typed codes → typed item keys.

How it works: ``parse_barcode`` looks only at the digits. By length and prefix it decides what the
code is, checks the GS1 mod-10 check digit, and returns one of

* ``Gtin``            — any EAN-13, EAN-8, UPC-A, UPC-E or GTIN-14, normalised to 14 digits,
* ``EmbeddedPrice``   — an in-store code (prefix 02, 20–29) carrying the line price,
* ``EmbeddedWeight``  — an in-store code carrying the weight in kg,
* ``Plu``             — a 4–5 digit price look-up code typed or scanned at the scale,

or raises ``UnknownBarcode`` / ``BadCheckDigit`` with a reason for the cashier. Which in-store
prefixes carry what is tenant configuration: an ``EmbeddedLayout`` per prefix says how many
digits are the item reference, how many the price or weight, its decimals, and whether a GS1
price check digit sits in front of the value (GS1 General Specifications §7.9.2–7.9.3).

What a scanner can really send: the bars of EAN/UPC/ITF encode the digits 0-9 and a serial or
USB-POS scanner sends them as ASCII. A *keyboard-wedge* scanner instead presses keys, and the
host's keyboard layout turns the number-row keys into characters: on a Persian layout they type
Extended Arabic-Indic digits (U+06F0-06F9), on an Arabic layout with Eastern Arabic numerals the
Arabic-Indic digits (U+0660-0669), and with a Japanese IME in full-width mode the fullwidth
digits (U+FF10-FF19). Those three are the same keys as 0-9, so :func:`scanned_digits` maps them
to ASCII. Nothing else is a digit a scanner types — superscripts, circled digits and other
scripts' digits pass ``str.isdigit()`` but no number-row key produces them — so they are refused
with ``UnknownBarcode`` and its cashier message, never a Python ``ValueError``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from edge.checkout.errors import BadCheckDigit, UnknownBarcode

_ASCII_DIGITS = re.compile(r"[0-9]*")  # unlike str.isdigit() or \d: 0-9 and nothing else
_NOT_DIGITS = "not all digits 0-9"
# The number-row digits of the layouts a keyboard-wedge scanner may type through (see above).
_WEDGE_DIGITS = str.maketrans(
    {chr(zero + d): str(d) for zero in (0xFF10, 0x0660, 0x06F0) for d in range(10)}
)


def scanned_digits(code: str) -> str:
    """The code as ASCII digits: blanks stripped, wedge layouts' digits mapped to 0-9.

    Raises ``UnknownBarcode`` for anything else, with the code as it arrived.
    """
    digits = code.strip().translate(_WEDGE_DIGITS)
    if not digits or not _ASCII_DIGITS.fullmatch(digits):
        raise UnknownBarcode(code=code, reason=_NOT_DIGITS)
    return digits


def gs1_check_digit(body: str) -> int:
    """GS1 mod-10 check digit for the digits before it (weights 3,1,3… from the right)."""
    if not _ASCII_DIGITS.fullmatch(body):
        raise UnknownBarcode(code=body, reason=_NOT_DIGITS)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def has_valid_check_digit(code: str) -> bool:
    """Whether the last digit of a GTIN of any length (ASCII digits) is its GS1 check digit."""
    return (
        len(code) >= 2
        and _ASCII_DIGITS.fullmatch(code) is not None
        and gs1_check_digit(code[:-1]) == int(code[-1])
    )


def _check(code: str) -> None:
    expected = gs1_check_digit(code[:-1])
    if expected != int(code[-1]):
        raise BadCheckDigit(code=code, expected=expected, found=int(code[-1]))


def expand_upce(upce: str) -> str:
    """Expand an 8-digit UPC-E (number system, 6 digits, check) to the 12-digit UPC-A."""
    if len(upce) != 8 or not _ASCII_DIGITS.fullmatch(upce) or upce[0] not in "01":
        raise UnknownBarcode(code=upce, reason="UPC-E needs 8 digits starting with 0 or 1")
    ns, d, check = upce[0], upce[1:7], upce[7]
    last = d[5]
    if last in "012":
        body = f"{d[0]}{d[1]}{last}0000{d[2]}{d[3]}{d[4]}"
    elif last == "3":
        body = f"{d[0]}{d[1]}{d[2]}00000{d[3]}{d[4]}"
    elif last == "4":
        body = f"{d[0]}{d[1]}{d[2]}{d[3]}00000{d[4]}"
    else:
        body = f"{d[0]}{d[1]}{d[2]}{d[3]}{d[4]}0000{last}"
    return f"{ns}{body}{check}"


def to_gtin14(code: str) -> str:
    """Normalise EAN-8/UPC-A/EAN-13/GTIN-14 (and UPC-E via UPC-A) to a checked GTIN-14."""
    digits = scanned_digits(code)
    if len(digits) == 8 and digits[0] in "01" and not has_valid_check_digit(digits):
        # an EAN-8 that fails its check may be a UPC-E: try the expansion before giving up
        digits = expand_upce(digits)
    if len(digits) not in (8, 12, 13, 14):
        raise UnknownBarcode(code=code, reason=f"{len(digits)} digits")
    _check(digits)
    return digits.zfill(14)


class Symbology(enum.Enum):
    """What the code looked like when it was scanned."""

    EAN13 = "ean13"
    EAN8 = "ean8"
    UPCA = "upca"
    UPCE = "upce"
    GTIN14 = "gtin14"


@dataclass(frozen=True, slots=True)
class Gtin:
    """A trade item number, always 14 digits; the catalog indexes these."""

    gtin14: str
    symbology: Symbology


@dataclass(frozen=True, slots=True)
class EmbeddedPrice:
    """An in-store code with the line price in it; ``item_key`` is what the catalog knows."""

    item_key: str
    price_minor: int
    raw: str


@dataclass(frozen=True, slots=True)
class EmbeddedWeight:
    """An in-store code with the weight in kg in it."""

    item_key: str
    weight_kg: Decimal
    raw: str


@dataclass(frozen=True, slots=True)
class Plu:
    """A price look-up code (4 or 5 digits), typed or from the scale."""

    code: str


ParsedBarcode: TypeAlias = Gtin | EmbeddedPrice | EmbeddedWeight | Plu


class EmbeddedKind(enum.Enum):
    """What the value digits of an in-store code mean."""

    PRICE = "price"
    WEIGHT = "weight"


@dataclass(frozen=True, slots=True)
class EmbeddedLayout:
    """How one in-store prefix is laid out in an EAN-13 (tenant configuration).

    ``prefix`` + item reference + optional price check digit + value + check digit = 13 digits.
    ``decimals`` is the position of the decimal point in the value: 2 for 12.35 in cents, 3 for kg
    in grams. The item key the catalog sees is ``prefix + item reference``.
    """

    prefix: str
    kind: EmbeddedKind
    item_digits: int
    value_digits: int
    decimals: int
    price_check_digit: bool = False

    def __post_init__(self) -> None:
        if not (self.prefix == "02" or (len(self.prefix) == 2 and self.prefix[0] == "2")):
            raise ValueError(f"in-store prefixes are 02 and 20–29, not {self.prefix!r}")
        used = len(self.prefix) + self.item_digits + self.value_digits + self.price_check_digit
        if used != 12:
            raise ValueError(f"layout {self.prefix} uses {used} digits, needs 12 before the check")
        if self.price_check_digit and self.value_digits not in (4, 5):
            raise ValueError("a GS1 price check digit covers 4 or 5 value digits")


# A common European layout: 2x IIIII C PPPP K with a price check digit for prices; kg in grams.
DEFAULT_LAYOUTS: Mapping[str, EmbeddedLayout] = {
    "02": EmbeddedLayout("02", EmbeddedKind.PRICE, 5, 5, 2),
    "20": EmbeddedLayout("20", EmbeddedKind.PRICE, 5, 4, 2, price_check_digit=True),
    "21": EmbeddedLayout("21", EmbeddedKind.PRICE, 5, 5, 2),
    "22": EmbeddedLayout("22", EmbeddedKind.PRICE, 5, 5, 2),
    "23": EmbeddedLayout("23", EmbeddedKind.WEIGHT, 5, 5, 3),
    "24": EmbeddedLayout("24", EmbeddedKind.WEIGHT, 5, 5, 3),
    "25": EmbeddedLayout("25", EmbeddedKind.WEIGHT, 5, 5, 3),
    "26": EmbeddedLayout("26", EmbeddedKind.WEIGHT, 5, 5, 3),
    "27": EmbeddedLayout("27", EmbeddedKind.WEIGHT, 5, 5, 3),
    "28": EmbeddedLayout("28", EmbeddedKind.PRICE, 5, 5, 2),
    "29": EmbeddedLayout("29", EmbeddedKind.PRICE, 5, 5, 2),
}


# GS1 weighted products for the price check digit (General Specifications §7.9.3).
def _w2minus(d: int) -> int:
    p = 2 * d
    return (p % 10 - p // 10) % 10


def _w3(d: int) -> int:
    return (3 * d) % 10


def _w5plus(d: int) -> int:
    p = 5 * d
    return (p % 10 + p // 10) % 10


def _w5minus(d: int) -> int:
    p = 5 * d
    return (p % 10 - p // 10) % 10


def price_check_digit(value: str) -> int:
    """GS1 price check digit over a 4- or 5-digit price field."""
    d = [int(c) for c in value]
    if len(d) == 4:
        total = _w2minus(d[0]) + _w2minus(d[1]) + _w3(d[2]) + _w5minus(d[3])
        return (total * 3) % 10
    if len(d) == 5:
        total = _w5plus(d[0]) + _w2minus(d[1]) + _w5minus(d[2]) + _w5plus(d[3]) + _w2minus(d[4])
        target = (10 - total % 10) % 10
        return next(c for c in range(10) if _w5minus(c) == target)
    raise ValueError("price check digits cover 4 or 5 digits")


def _parse_embedded(
    code: str, layout: EmbeddedLayout, exponent: int
) -> EmbeddedPrice | EmbeddedWeight:
    start = len(layout.prefix)
    item_ref = code[start : start + layout.item_digits]
    pos = start + layout.item_digits
    if layout.price_check_digit:
        value = code[pos + 1 : pos + 1 + layout.value_digits]
        expected = price_check_digit(value)
        if expected != int(code[pos]):
            raise BadCheckDigit(
                code=code, expected=expected, found=int(code[pos]), what="price check digit"
            )
    else:
        value = code[pos : pos + layout.value_digits]
    key = layout.prefix + item_ref
    if layout.kind is EmbeddedKind.PRICE:
        # the value digits are minor units when decimals == exponent; rescale otherwise
        price = Decimal(int(value)).scaleb(exponent - layout.decimals)
        if price != price.to_integral_value():
            raise UnknownBarcode(code=code, reason="price finer than the currency allows")
        return EmbeddedPrice(item_key=key, price_minor=int(price), raw=code)
    weight = Decimal(int(value)).scaleb(-layout.decimals)
    return EmbeddedWeight(item_key=key, weight_kg=weight, raw=code)


def parse_barcode(
    code: str,
    layouts: Mapping[str, EmbeddedLayout] = DEFAULT_LAYOUTS,
    *,
    currency_exponent: int = 2,
    symbology: Symbology | None = None,
) -> ParsedBarcode:
    """Classify a scanned or typed code; raise ``UnknownBarcode`` or ``BadCheckDigit``.

    An 8-digit code is ambiguous (EAN-8 or UPC-E): pass the scanner's ``symbology`` when it
    reports one; without it an 8-digit code is an EAN-8 if its check digit fits, else UPC-E.
    Embedded prices are rescaled from the layout's ``decimals`` to ``currency_exponent``.
    """
    digits = scanned_digits(code)
    n = len(digits)
    if n in (4, 5):
        return Plu(digits)
    if n == 8:
        if symbology is not Symbology.UPCE and has_valid_check_digit(digits):
            return Gtin(digits.zfill(14), Symbology.EAN8)
        if digits[0] in "01":
            upca = expand_upce(digits)
            _check(upca)
            return Gtin(upca.zfill(14), Symbology.UPCE)
        _check(digits)
    if n == 12:
        _check(digits)
        if digits[0] == "2" and "02" in layouts:  # a UPC-A of number system 2 is EAN-13 "02…"
            return _parse_embedded("0" + digits, layouts["02"], currency_exponent)
        return Gtin(digits.zfill(14), Symbology.UPCA)
    if n == 13:
        _check(digits)
        layout = layouts.get(digits[:2])
        if layout is not None:
            return _parse_embedded(digits, layout, currency_exponent)
        return Gtin(digits.zfill(14), Symbology.EAN13)
    if n == 14:
        _check(digits)
        return Gtin(digits, Symbology.GTIN14)
    raise UnknownBarcode(code=code, reason=f"{n} digits")
