"""GS1 EPC Tag Data Standard (TDS 1.13 / 2.x) binary decoding and encoding.

How it works: an EPC read from a UHF tag is a bit string whose first 8 bits (the *header*) name
the coding scheme. For SGTIN-96 (header 0x30) and SGTIN-198 (0x36) the layout is::

    header(8) filter(3) partition(3) company-prefix(P bits) item-reference(44-P bits) serial

The *partition* value says how the 44 bits between filter and serial split between the GS1
company prefix and the item reference (TDS table 14-2, reproduced in ``_PARTITIONS``). The
GTIN-14 is the item reference's first digit (the indicator), the company prefix, the rest of the
item reference and a computed mod-10 check digit. SGTIN-96 carries a numeric serial in 38 bits;
SGTIN-198 carries 1 to 20 characters in 140 bits, 7 bits each, zero padded.

Which characters: a GS1 serial (AI 21) is drawn from *GS1 AI encodable character set 82*
(GS1 General Specifications figure 7.11-1; EPC TDS table A-1 gives each one's 7-bit ISO 646
code and its form in a URI). Set 82 is ISO 646 0x21-0x7A *without* ``# $ @ [ \\ ] ^`` and the
backtick, and nothing above 0x7A. Encoding and decoding both hold to it, so every serial we
decode has a pure-identity URI, and ``" % & / < > ?`` are %-escaped in that URI as table A-1
says. Numbers in text are ASCII digits only (``0123456789``): ``str.isdigit`` is true for
superscripts and other scripts' digits, and ``int()`` would quietly read Arabic-Indic ones.

Every other header is reported as :class:`OtherEpc` with its scheme name, so a count can show
"3 SSCC-96 tags" instead of dropping them. The module is pure: bytes in, dataclasses out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SET_82",
    "EpcError",
    "MalformedEpcError",
    "OtherEpc",
    "Sgtin",
    "UnencodableEpcError",
    "decode_epc",
    "encode_sgtin",
    "gtin_check_digit",
]


class EpcError(ValueError):
    """Base of the EPC errors; ``epc`` is the hex of the offending bytes (or ``""``).

    ::

        EpcError
        ├── MalformedEpcError     decode_epc: bytes that break their scheme's layout
        └── UnencodableEpcError   encode_sgtin / gtin_check_digit: values the scheme cannot hold

    Nothing else escapes this module for bad input: a reader loop catches ``EpcError`` only.
    """

    def __init__(self, reason: str, *, epc: str = "") -> None:
        super().__init__(f"{reason} (epc={epc or '-'})")
        self.reason = reason
        self.epc = epc


class MalformedEpcError(EpcError):
    """The bytes claim a scheme but do not follow its layout (bad partition, too short…)."""


class UnencodableEpcError(EpcError):
    """The values given to an encoder do not fit the scheme (serial too long, bad GTIN…)."""


# partition -> (company prefix bits, company prefix digits, item reference bits, item digits)
# TDS 1.13 table 14-2 "SGTIN Partition Table".
_PARTITIONS: dict[int, tuple[int, int, int, int]] = {
    0: (40, 12, 4, 1),
    1: (37, 11, 7, 2),
    2: (34, 10, 10, 3),
    3: (30, 9, 14, 4),
    4: (27, 8, 17, 5),
    5: (24, 7, 20, 6),
    6: (20, 6, 24, 7),
}
_DIGITS_TO_PARTITION = {digits: p for p, (_, digits, _, _) in _PARTITIONS.items()}

SGTIN_96 = 0x30
SGTIN_198 = 0x36

# TDS 1.13 table 14-1 (EPC binary header values) plus TDS 2.0 additions we have met in stores.
SCHEMES: dict[int, str] = {
    0x00: "unprogrammed",
    0x2C: "gdti-96",
    0x2D: "gsrn-96",
    0x2E: "gsrnp-96",
    0x2F: "usdod-96",
    0x30: "sgtin-96",
    0x31: "sscc-96",
    0x32: "sgln-96",
    0x33: "grai-96",
    0x34: "giai-96",
    0x35: "gid-96",
    0x36: "sgtin-198",
    0x37: "grai-170",
    0x38: "giai-202",
    0x39: "sgln-195",
    0x3A: "gdti-113",
    0x3B: "adi-var",
    0x3C: "cpi-96",
    0x3D: "cpi-var",
    0x3E: "gdti-174",
    0x3F: "sgcn-96",
    0x40: "itip-110",
    0x41: "itip-212",
}

# GS1 AI encodable character set 82 (GS1 General Specifications figure 7.11-1, EPC TDS table
# A-1), in ISO 646 order: 0x21-0x22, 0x25-0x3F, 0x41-0x5A, 0x5F, 0x61-0x7A.
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_SET_82 = frozenset(SET_82)

# The set-82 characters TDS table A-1 writes %-escaped in a pure-identity URI.
_URI_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
SERIAL_198_CHARS = 20
_ASCII_DIGITS = re.compile(r"[0-9]+")  # a character class of ASCII digits, unlike \d or isdigit


@dataclass(frozen=True, slots=True, kw_only=True)
class Sgtin:
    """A serialised GTIN read from an SGTIN-96 or SGTIN-198 tag."""

    scheme: str
    filter: int
    company_prefix: str
    item_reference: str
    serial: str

    @property
    def gtin(self) -> str:
        """GTIN-14 with its check digit: what the catalog and the count key on."""
        body = self.item_reference[0] + self.company_prefix + self.item_reference[1:]
        return body + str(gtin_check_digit(body))

    @property
    def uri(self) -> str:
        """Pure-identity URI, e.g. ``urn:epc:id:sgtin:0614141.812345.6789``."""
        serial = "".join(_URI_ESCAPES.get(c, c) for c in self.serial)
        return f"urn:epc:id:sgtin:{self.company_prefix}.{self.item_reference}.{serial}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherEpc:
    """Any EPC we do not decode further: kept raw with its header and scheme name."""

    header: int
    scheme: str
    raw: bytes


def _ascii_digits(text: str) -> bool:
    """True for a non-empty string of ``0``-``9`` only (no other script's digits)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def gtin_check_digit(digits: str) -> int:
    """GS1 mod-10 check digit over ``digits`` (weights 3,1,3… from the right)."""
    if not _ascii_digits(digits):
        raise UnencodableEpcError(f"a GS1 check digit is computed over ASCII digits: {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def decode_epc(epc: bytes) -> Sgtin | OtherEpc:
    """Decode an EPC as read from a tag's EPC memory (without PC word and CRC)."""
    if not epc:
        raise MalformedEpcError("empty EPC")
    header = epc[0]
    if header == SGTIN_96:
        return _decode_sgtin(epc, bits=96, serial_bits=38, scheme="sgtin-96")
    if header == SGTIN_198:
        return _decode_sgtin(epc, bits=198, serial_bits=140, scheme="sgtin-198")
    return OtherEpc(header=header, scheme=SCHEMES.get(header, "unknown"), raw=bytes(epc))


def _decode_sgtin(epc: bytes, *, bits: int, serial_bits: int, scheme: str) -> Sgtin:
    nbytes = (bits + 7) // 8
    if len(epc) < nbytes:
        raise MalformedEpcError(f"{scheme} needs {nbytes} bytes, got {len(epc)}", epc=epc.hex())
    value = int.from_bytes(epc[:nbytes], "big") >> (nbytes * 8 - bits)
    serial_value = value & ((1 << serial_bits) - 1)
    value >>= serial_bits
    rest = value & ((1 << 44) - 1)
    partition = (value >> 44) & 0b111
    filter_value = (value >> 47) & 0b111
    if partition not in _PARTITIONS:
        raise MalformedEpcError(f"partition {partition} is reserved", epc=epc.hex())
    _, cp_digits, ir_bits, ir_digits = _PARTITIONS[partition]
    company = rest >> ir_bits
    item = rest & ((1 << ir_bits) - 1)
    if company >= 10**cp_digits or item >= 10**ir_digits:
        raise MalformedEpcError("company prefix or item reference out of range", epc=epc.hex())
    serial = str(serial_value) if bits == 96 else _decode_serial_chars(serial_value, epc)
    return Sgtin(
        scheme=scheme,
        filter=filter_value,
        company_prefix=str(company).zfill(cp_digits),
        item_reference=str(item).zfill(ir_digits),
        serial=serial,
    )


def _decode_serial_chars(value: int, epc: bytes) -> str:
    """The TDS "String" decoding method (TDS section 14) over the 140-bit serial.

    The serial is 20 segments of 7 bits; the first all-zero segment ends it and every segment
    after it must be zero too (padding). Each character must be in set 82 (table A-1). An
    all-zero serial would decode to the empty string, which the TDS does not allow: the URI
    grammar (TDS section 5: ``GS3A3Component = 1*GS3A3Char``, the serial of the SGTIN URI) needs
    at least one character, the "String" encoding method only takes a string that matches that
    grammar, the GS1 Tag Data Translation pattern for the serial is ``{1,20}`` characters, and
    AI (21) is "X..20", 1 to 20 characters. So an all-zero serial is not an SGTIN with an empty
    serial but a tag whose EPC memory was never written properly: malformed, as for any other
    bit string the decoding procedure refuses.
    """
    codes = [(value >> (7 * (SERIAL_198_CHARS - 1 - i))) & 0x7F for i in range(SERIAL_198_CHARS)]
    length = codes.index(0) if 0 in codes else SERIAL_198_CHARS
    if length == 0:
        raise MalformedEpcError("SGTIN-198 serial is empty (all zero bits)", epc=epc.hex())
    if any(codes[length:]):
        raise MalformedEpcError(
            "SGTIN-198 serial has characters after its zero terminator", epc=epc.hex()
        )
    text = "".join(chr(code) for code in codes[:length])
    outside = sorted({c for c in text if c not in _SET_82})
    if outside:
        raise MalformedEpcError(
            f"SGTIN-198 serial has characters outside GS1 set 82: {''.join(outside)!r}",
            epc=epc.hex(),
        )
    return text


def encode_sgtin(
    *, gtin: str, serial: str, company_prefix_digits: int, filter_value: int = 1, bits: int = 96
) -> bytes:
    """Encode a GTIN-14 + serial as SGTIN-96 (``bits=96``) or SGTIN-198 (``bits=198``).

    The company prefix length is not in the GTIN itself, so the caller says it (GS1 assigns it).
    """
    if len(gtin) != 14 or not _ascii_digits(gtin):
        raise UnencodableEpcError(f"GTIN-14 must be 14 ASCII digits, got {gtin!r}")
    if gtin_check_digit(gtin[:13]) != int(gtin[13]):
        raise UnencodableEpcError(f"GTIN {gtin} has a wrong check digit")
    if company_prefix_digits not in _DIGITS_TO_PARTITION:
        raise UnencodableEpcError(f"company prefix length {company_prefix_digits} is not 6-12")
    if not 0 <= filter_value <= 7:
        raise UnencodableEpcError(f"filter value {filter_value} is not 0-7")
    partition = _DIGITS_TO_PARTITION[company_prefix_digits]
    cp_bits, _, ir_bits, _ = _PARTITIONS[partition]
    company = int(gtin[1 : 1 + company_prefix_digits])
    item = int(gtin[0] + gtin[1 + company_prefix_digits : 13])
    if bits == 96:
        header, serial_bits, serial_value = SGTIN_96, 38, _serial_96(serial)
    elif bits == 198:
        header, serial_bits, serial_value = SGTIN_198, 140, _serial_198(serial)
    else:
        raise UnencodableEpcError(f"SGTIN has 96 or 198 bits, not {bits}")
    value = header
    value = (value << 3) | filter_value
    value = (value << 3) | partition
    value = (value << cp_bits) | company
    value = (value << ir_bits) | item
    value = (value << serial_bits) | serial_value
    nbytes = (bits + 7) // 8
    return (value << (nbytes * 8 - bits)).to_bytes(nbytes, "big")


def _serial_96(serial: str) -> int:
    # TDS: SGTIN-96 serials are decimal integers < 2^38 without leading zeros.
    if not _ascii_digits(serial) or (len(serial) > 1 and serial[0] == "0"):
        raise UnencodableEpcError(
            f"SGTIN-96 serial must be ASCII digits without leading zero: {serial!r}"
        )
    value = int(serial)
    if value >= 1 << 38:
        raise UnencodableEpcError(f"SGTIN-96 serial {serial} does not fit 38 bits")
    return value


def _serial_198(serial: str) -> int:
    """TDS "String" encoding method: 1-20 set-82 characters, 7 bits each, zero padded."""
    if not 1 <= len(serial) <= SERIAL_198_CHARS:
        raise UnencodableEpcError(
            f"SGTIN-198 serial must be 1-{SERIAL_198_CHARS} characters: {serial!r}"
        )
    outside = sorted({c for c in serial if c not in _SET_82})
    if outside:
        raise UnencodableEpcError(
            f"SGTIN-198 serial has characters outside GS1 set 82 {''.join(outside)!r}: {serial!r}"
        )
    value = 0
    for c in serial.ljust(SERIAL_198_CHARS, "\x00"):
        value = (value << 7) | ord(c)
    return value
