"""GS1 EPC TDS decoding: golden vectors from the TDS 1.13 examples, partitions, round trips."""

import contextlib
import re
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.epc import (
    SET_82,
    MalformedEpcError,
    OtherEpc,
    Sgtin,
    UnencodableEpcError,
    decode_epc,
    encode_sgtin,
    gtin_check_digit,
)

GOLDEN = [
    # TDS 1.13 section 14.5.1 / annex E.3 worked example
    pytest.param(
        "3074257BF7194E4000001A85",
        Sgtin(
            scheme="sgtin-96",
            filter=3,
            company_prefix="0614141",
            item_reference="812345",
            serial="6789",
        ),
        "80614141123458",
        "urn:epc:id:sgtin:0614141.812345.6789",
        id="tds-sgtin-96",
    ),
    # TDS annex E.3: urn:epc:tag:sgtin-198:3.0614141.812345.32a%2Fb (trailing zero padding cut)
    pytest.param(
        "3674257BF7194E59B2C2BF1000000000000000000000000000",
        Sgtin(
            scheme="sgtin-198",
            filter=3,
            company_prefix="0614141",
            item_reference="812345",
            serial="32a/b",
        ),
        "80614141123458",
        "urn:epc:id:sgtin:0614141.812345.32a%2Fb",
        id="tds-sgtin-198",
    ),
]


@pytest.mark.parametrize(("hex_epc", "sgtin", "gtin", "uri"), GOLDEN)
def test_golden_decode(hex_epc: str, sgtin: Sgtin, gtin: str, uri: str) -> None:
    decoded = decode_epc(bytes.fromhex(hex_epc))
    assert (decoded, decoded.gtin, decoded.uri) == (sgtin, gtin, uri)  # type: ignore[union-attr]


@pytest.mark.parametrize(("hex_epc", "sgtin", "gtin", "uri"), GOLDEN)
def test_golden_encode(hex_epc: str, sgtin: Sgtin, gtin: str, uri: str) -> None:
    bits = 96 if sgtin.scheme == "sgtin-96" else 198
    wire = encode_sgtin(
        gtin=gtin, serial=sgtin.serial, company_prefix_digits=7, filter_value=3, bits=bits
    )
    assert wire == bytes.fromhex(hex_epc)


@pytest.mark.parametrize(
    ("prefix_digits", "partition"),
    [pytest.param(12 - p, p, id=f"partition-{p}") for p in range(7)],
)
def test_every_partition_keeps_the_gtin(prefix_digits: int, partition: int) -> None:
    gtin = "1" + "2345678901" + "23"
    gtin = gtin[:13] + str(gtin_check_digit(gtin[:13]))
    wire = encode_sgtin(gtin=gtin, serial="42", company_prefix_digits=prefix_digits)
    assert (wire[1] >> 2) & 0b111 == partition
    decoded = decode_epc(wire)
    assert isinstance(decoded, Sgtin)
    assert (decoded.gtin, len(decoded.company_prefix), decoded.serial) == (
        gtin,
        prefix_digits,
        "42",
    )


@pytest.mark.parametrize(
    ("hex_epc", "header", "scheme"),
    [
        pytest.param("3114257BF4000000000004D2", 0x31, "sscc-96", id="sscc-96"),
        pytest.param("3214257BF7194E4000001A85", 0x32, "sgln-96", id="sgln-96"),
        pytest.param("3314257BF7194E4000001A85", 0x33, "grai-96", id="grai-96"),
        pytest.param("3414257BF400000000001A85", 0x34, "giai-96", id="giai-96"),
        pytest.param("E20000172211014418909E47", 0xE2, "unknown", id="unknown-header"),
    ],
)
def test_other_schemes_are_reported_raw(hex_epc: str, header: int, scheme: str) -> None:
    raw = bytes.fromhex(hex_epc)
    assert decode_epc(raw) == OtherEpc(header=header, scheme=scheme, raw=raw)


@pytest.mark.parametrize(
    "hex_epc",
    [
        pytest.param("", id="empty"),
        pytest.param("3074257BF7194E40", id="sgtin-96-truncated"),
        pytest.param("307C257BF7194E4000001A85", id="partition-7"),
    ],
)
def test_malformed(hex_epc: str) -> None:
    with pytest.raises(MalformedEpcError):
        decode_epc(bytes.fromhex(hex_epc))


@pytest.mark.parametrize(
    ("gtin", "serial", "bits"),
    [
        pytest.param("80614141123459", "1", 96, id="bad-check-digit"),
        pytest.param("80614141123458", "0123", 96, id="leading-zero-serial"),
        pytest.param("80614141123458", str(2**38), 96, id="serial-over-38-bits"),
        pytest.param("80614141123458", "x" * 21, 198, id="serial-over-20-chars"),
        pytest.param("80614141123458", "a b", 198, id="space-in-serial"),
    ],
)
def test_unencodable(gtin: str, serial: str, bits: int) -> None:
    with pytest.raises(UnencodableEpcError):
        encode_sgtin(gtin=gtin, serial=serial, company_prefix_digits=7, bits=bits)


gtins = st.text("0123456789", min_size=13, max_size=13).map(lambda d: d + str(gtin_check_digit(d)))


@settings(derandomize=True)  # same examples on every run
@given(
    gtin=gtins,
    serial=st.integers(0, 2**38 - 1).map(str),
    prefix_digits=st.integers(6, 12),
    filter_value=st.integers(0, 7),
)
def test_sgtin_96_round_trip(gtin: str, serial: str, prefix_digits: int, filter_value: int) -> None:
    wire = encode_sgtin(
        gtin=gtin, serial=serial, company_prefix_digits=prefix_digits, filter_value=filter_value
    )
    decoded = decode_epc(wire)
    assert isinstance(decoded, Sgtin)
    assert (decoded.gtin, decoded.serial, decoded.filter) == (gtin, serial, filter_value)


@settings(derandomize=True)  # same examples on every run
@given(
    gtin=gtins,
    serial=st.text(st.sampled_from(SET_82), min_size=1, max_size=20),
    prefix_digits=st.integers(6, 12),
)
def test_every_encodable_sgtin_198_serial_round_trips(
    gtin: str, serial: str, prefix_digits: int
) -> None:
    wire = encode_sgtin(gtin=gtin, serial=serial, company_prefix_digits=prefix_digits, bits=198)
    decoded = decode_epc(wire)
    assert isinstance(decoded, Sgtin)
    assert (decoded.gtin, decoded.serial) == (gtin, serial)
    assert _is_pure_identity_uri(decoded.uri)


@settings(derandomize=True)  # same examples on every run
@given(st.binary(min_size=12, max_size=12))
def test_any_96_bits_decode_or_fail_in_the_error_tree(raw: bytes) -> None:
    """A reader loop only has to catch the codec's own errors."""
    with contextlib.suppress(MalformedEpcError):
        decode_epc(raw)


# -- GS1 AI encodable character set 82 (GS1 General Specifications figure 7.11-1, TDS table A-1) --

NOT_IN_SET_82_BELOW_0x7B = "#$@[\\]^`"  # the holes in 0x21-0x7A
ABOVE_0x7A = "{|}~\x7f"


def test_set_82_is_iso_646_0x21_to_0x7a_without_its_eight_holes() -> None:
    printable = {chr(code) for code in range(0x21, 0x7B)}
    assert len(SET_82) == len(set(SET_82)) == 82
    assert set(SET_82) == printable - set(NOT_IN_SET_82_BELOW_0x7B)


@pytest.mark.parametrize(
    "char", [pytest.param(c, id=f"0x{ord(c):02x}") for c in NOT_IN_SET_82_BELOW_0x7B + ABOVE_0x7A]
)
def test_encoder_refuses_a_serial_character_outside_set_82(char: str) -> None:
    """Regression: `# $ @ [ \\ ] ^` and the backtick used to be encoded."""
    with pytest.raises(UnencodableEpcError, match="set 82"):
        encode_sgtin(gtin=TDS_GTIN, serial=f"A{char}1", company_prefix_digits=7, bits=198)


TDS_GTIN = "80614141123458"
TDS_SGTIN_198 = bytes.fromhex("3674257BF7194E59B2C2BF1000000000000000000000000000")


def _tds_sgtin_198_with_serial(codes: list[int]) -> bytes:
    """The TDS example SGTIN-198 with its 20 serial segments set to ``codes`` (zero padded)."""
    value = int.from_bytes(TDS_SGTIN_198, "big") >> 2  # 198 bits; the last 2 of 200 are padding
    value = (value >> 140) << 140
    for i, code in enumerate(codes):
        value |= code << (7 * (19 - i))
    return (value << 2).to_bytes(25, "big")


def test_serial_segments_helper_rebuilds_the_tds_example() -> None:
    assert _tds_sgtin_198_with_serial([ord(c) for c in "32a/b"]) == TDS_SGTIN_198


@pytest.mark.parametrize(
    "char", [pytest.param(c, id=f"0x{ord(c):02x}") for c in NOT_IN_SET_82_BELOW_0x7B + ABOVE_0x7A]
)
def test_decoder_refuses_a_serial_character_outside_set_82(char: str) -> None:
    """Regression: `{ | } ~` and DEL used to decode into an invalid EPC URI."""
    wire = _tds_sgtin_198_with_serial([ord("A"), ord(char), ord("1")])
    with pytest.raises(MalformedEpcError, match="set 82"):
        decode_epc(wire)


def test_all_zero_sgtin_198_serial_is_malformed() -> None:
    """Regression: it decoded as an empty serial; TDS URIs need 1 to 20 serial characters."""
    with pytest.raises(MalformedEpcError, match="empty"):
        decode_epc(_tds_sgtin_198_with_serial([]))


def test_sgtin_198_serial_characters_after_the_terminator_are_malformed() -> None:
    with pytest.raises(MalformedEpcError, match="after its zero terminator"):
        decode_epc(_tds_sgtin_198_with_serial([ord("A"), 0, ord("B")]))


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        pytest.param('"', "%22", id="quote"),
        pytest.param("%", "%25", id="percent"),
        pytest.param("&", "%26", id="ampersand"),
        pytest.param("/", "%2F", id="slash"),
        pytest.param("<", "%3C", id="less-than"),
        pytest.param(">", "%3E", id="greater-than"),
        pytest.param("?", "%3F", id="question-mark"),
    ],
)
def test_uri_escapes_what_tds_table_a1_escapes(char: str, escaped: str) -> None:
    wire = encode_sgtin(gtin=TDS_GTIN, serial=f"a{char}b", company_prefix_digits=7, bits=198)
    decoded = decode_epc(wire)
    assert isinstance(decoded, Sgtin)
    assert decoded.uri == f"urn:epc:id:sgtin:0614141.812345.a{escaped}b"


# -- digits are ASCII digits: str.isdigit() is true for ² ١ ۱ １ and more -----------------------

FOREIGN_DIGITS = [
    pytest.param("\u00b2", id="superscript-two"),
    pytest.param("\u0661\u0662", id="arabic-indic-12"),
    pytest.param("\u06f1\u06f2", id="extended-arabic-indic-12"),
    pytest.param("\uff11\uff12", id="fullwidth-12"),
    pytest.param("1\u0968", id="devanagari-two"),
]


@pytest.mark.parametrize("serial", FOREIGN_DIGITS)
def test_sgtin_96_serial_is_ascii_digits_only(serial: str) -> None:
    """Regression: ² raised a bare ValueError and Arabic-Indic digits encoded as if ASCII."""
    with pytest.raises(UnencodableEpcError, match="ASCII digits"):
        encode_sgtin(gtin=TDS_GTIN, serial=serial, company_prefix_digits=7)


@pytest.mark.parametrize("digits", FOREIGN_DIGITS)
def test_gtin_is_ascii_digits_only(digits: str) -> None:
    gtin = TDS_GTIN[: 14 - len(digits)] + digits
    with pytest.raises(UnencodableEpcError, match="ASCII digits"):
        encode_sgtin(gtin=gtin, serial="1", company_prefix_digits=7)
    with pytest.raises(UnencodableEpcError, match="ASCII digits"):
        gtin_check_digit(gtin[:12] + digits)


# -- properties ----------------------------------------------------------------------------------

# EPC TDS section 5 and 6.3.1: SGTIN-URI = "urn:epc:id:sgtin:" 2*(PaddedNumericComponent ".")
# GS3A3Component; GS3A3Component = 1*GS3A3Char; GS3A3Char = Digit / UpperAlpha / LowerAlpha /
# OtherChar / Escape, where the escapes are the %-forms of table A-1.
_GS3A3_CHAR = r"(?:[0-9A-Za-z!'()*+,\-.:;=_]|%(?:22|25|26|2F|3C|3E|3F))"
_SGTIN_URI = re.compile(rf"urn:epc:id:sgtin:([0-9]+)\.([0-9]+)\.({_GS3A3_CHAR}+)")


def _is_pure_identity_uri(uri: str) -> bool:
    match = _SGTIN_URI.fullmatch(uri)
    return match is not None and len(match[1]) + len(match[2]) == 13


@settings(derandomize=True)  # same examples on every run
@given(
    prefix=st.text(st.sampled_from(SET_82), max_size=19),
    bad=st.characters().filter(lambda c: c not in SET_82),
    suffix=st.text(st.sampled_from(SET_82), max_size=19),
)
def test_every_character_outside_set_82_is_refused_on_encode(
    prefix: str, bad: str, suffix: str
) -> None:
    serial = (prefix + bad + suffix)[:20] if len(prefix) < 20 else prefix[:19] + bad
    with pytest.raises(UnencodableEpcError):
        encode_sgtin(gtin=TDS_GTIN, serial=serial, company_prefix_digits=7, bits=198)


serial_codes = st.lists(
    st.one_of(st.sampled_from([ord(c) for c in SET_82]), st.integers(0, 0x7F)), max_size=20
)


@st.composite
def sgtin_bits(draw: st.DrawFn) -> tuple[bytes, int]:
    """Any SGTIN-96 or SGTIN-198 bit string: every field drawn, valid or not."""
    header, bits, serial_bits = draw(st.sampled_from([(0x30, 96, 38), (0x36, 198, 140)]))
    if bits == 96:
        serial = draw(st.integers(0, 2**38 - 1))
    else:  # 20 segments of 7 bits, zero padded
        serial = 0
        for code in [*draw(serial_codes), *[0] * 20][:20]:
            serial = (serial << 7) | code
    value = (header << 3) | draw(st.integers(0, 7))  # filter
    value = (value << 3) | draw(st.integers(0, 7))  # partition, 7 is reserved
    value = (value << 44) | draw(st.integers(0, 2**44 - 1))  # company prefix + item reference
    value = (value << serial_bits) | serial
    nbytes = (bits + 7) // 8
    return (value << (nbytes * 8 - bits)).to_bytes(nbytes, "big"), bits


@settings(max_examples=300, derandomize=True)  # same examples on every run
@given(sgtin_bits())
def test_every_decoded_sgtin_has_a_valid_pure_identity_uri_and_encodes_back(
    sgtin: tuple[bytes, int],
) -> None:
    """Any SGTIN bits either decode into a valid EPC URI, or fail in the module's error tree."""
    wire, bits = sgtin
    with contextlib.suppress(MalformedEpcError):
        decoded = decode_epc(wire)
        assert isinstance(decoded, Sgtin)
        assert _is_pure_identity_uri(decoded.uri), decoded.uri
        assert urllib.parse.unquote(decoded.uri.rsplit(".", 1)[1]) == decoded.serial
        again = encode_sgtin(
            gtin=decoded.gtin,
            serial=decoded.serial,
            company_prefix_digits=len(decoded.company_prefix),
            filter_value=decoded.filter,
            bits=bits,
        )
        assert again == wire
