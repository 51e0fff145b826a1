"""GS1 EPC TDS decoding: golden vectors from the TDS 1.13 examples, partitions, round trips."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.epc import (
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
    serial=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7A), min_size=1, max_size=20),
    prefix_digits=st.integers(6, 12),
)
def test_sgtin_198_round_trip(gtin: str, serial: str, prefix_digits: int) -> None:
    wire = encode_sgtin(gtin=gtin, serial=serial, company_prefix_digits=prefix_digits, bits=198)
    decoded = decode_epc(wire)
    assert isinstance(decoded, Sgtin)
    assert (decoded.gtin, decoded.serial) == (gtin, serial)


@settings(derandomize=True)  # same examples on every run
@given(st.binary(min_size=12, max_size=12))
def test_any_96_bits_decode_or_fail_in_the_error_tree(raw: bytes) -> None:
    """A reader loop only has to catch the codec's own errors."""
    with contextlib.suppress(MalformedEpcError):
        decode_epc(raw)
