"""The enrolment payload: pydantic model, compact QR URI, and its typed parse errors."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.enrolment import EnrolmentPayload, encode_qr, new_token, parse_qr
from provisioning.errors import EnrolmentPayloadError

IDENTIFIER = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
FINGERPRINT = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
URL = st.sampled_from(
    [
        "https://fleet.example.com",
        "https://fleet.example.com:8443/api?x=1&y=2",
        "http://localhost:8000",
        "http://127.0.0.1:8000/",
    ]
)


def _payload(**changes: str) -> EnrolmentPayload:
    fields = {
        "control_plane_url": "https://fleet.example.com",
        "token": new_token(),
        "ca_fingerprint": "0" * 64,
        "tenant_id": "tenant-1",
        "store_id": "store-7",
    } | changes
    return EnrolmentPayload.model_validate(fields)


@given(url=URL, fingerprint=FINGERPRINT, tenant=IDENTIFIER, store=IDENTIFIER)
def test_qr_uri_round_trips(url: str, fingerprint: str, tenant: str, store: str) -> None:
    payload = _payload(
        control_plane_url=url, ca_fingerprint=fingerprint, tenant_id=tenant, store_id=store
    )

    assert parse_qr(encode_qr(payload)) == payload


def test_json_form_is_versioned() -> None:
    dumped = _payload().model_dump(by_alias=True)

    assert dumped["schema"] == "sf.enrolment"
    assert dumped["v"] == 1


def test_qr_uri_is_compact() -> None:
    assert encode_qr(_payload()).startswith("sfenrol:1?u=")
    assert len(encode_qr(_payload())) < 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("https://example.com", "not a storefleet enrolment", id="other-qr"),
        pytest.param("sfenrol:2?u=x", "version '2' is not understood", id="newer-version"),
        pytest.param("sfenrol:1?u=https%3A%2F%2Fa.example&t=sfe_x", "missing=", id="missing"),
        pytest.param("sfenrol:1?garbage", "damaged or incomplete", id="garbage"),
    ],
)
def test_unreadable_qr_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(EnrolmentPayloadError, match=message) as raised:
        parse_qr(text)

    assert raised.value.text == text
    assert "re-scan" in str(raised.value)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        pytest.param("&x=1", "unknown=\\['x'\\]", id="unknown-field"),
        pytest.param("&s=store-8", "repeated=\\['s'\\]", id="repeated-field"),
    ],
)
def test_extra_fields_are_refused(suffix: str, message: str) -> None:
    with pytest.raises(EnrolmentPayloadError, match=message):
        parse_qr(encode_qr(_payload()) + suffix)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("control_plane_url", "http://fleet.example.com", id="plain-http-remote"),
        pytest.param("control_plane_url", "ftp://fleet.example.com", id="wrong-scheme"),
        pytest.param("ca_fingerprint", "AB" * 32, id="upper-case-fingerprint"),
        pytest.param("ca_fingerprint", "ab" * 31, id="short-fingerprint"),
        pytest.param("token", "sfe_tooshort", id="short-token"),
        pytest.param("store_id", "store/7", id="slash-in-store"),
    ],
)
def test_invalid_values_are_refused_by_name(field: str, value: str) -> None:
    tampered = _with_field(encode_qr(_payload()), field, value)

    with pytest.raises(EnrolmentPayloadError, match=f"invalid {field}"):
        parse_qr(tampered)


def _with_field(uri: str, field: str, value: str) -> str:
    keys = {"control_plane_url": "u", "token": "t", "ca_fingerprint": "f", "tenant_id": "tn",
            "store_id": "s"}  # fmt: skip
    head, _, query = uri.partition("?")
    fields = dict(parse_qsl(query))
    fields[keys[field]] = value
    return f"{head}?{urlencode(fields)}"


def test_boolean_version_is_refused() -> None:
    # True == 1 in Python; a JSON `"v": true` must not pass for version 1.
    with pytest.raises(ValueError, match="integer 1"):
        EnrolmentPayload.model_validate(_payload().model_dump(by_alias=True) | {"v": True})
