"""Device assertions, sans-I/O: minted and read back with real keys, refused when bent."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from provisioning import device_assertion as da
from provisioning.ca import CertificateAuthority
from provisioning.keys import build_csr

NOW = 1_800_000_000.0
DEVICE = "acme-01-r1"


@pytest.fixture(scope="module")
def p256(fleet_ca: CertificateAuthority) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fleet device key and its certificate, as enrolment makes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    issued = fleet_ca.issue_device_certificate(build_csr(key, common_name="x"), device_id=DEVICE)
    return key, x509.load_pem_x509_certificates(issued.chain_pem)[0]


def _read(token: str) -> da.Claims:
    seen = da.presented(token)
    certificate = da.certificate_of(seen)
    claims = da.verified_claims(seen, public_key=certificate.public_key())
    return da.check_claims(claims, now=NOW)


def _token(key: Any, certificate: x509.Certificate, **change: Any) -> str:
    fields: dict[str, Any] = {
        "private_key": key,
        "certificate": certificate,
        "device_id": DEVICE,
        "now": NOW,
    } | change
    return da.mint(**fields)


def _segments(token: str) -> list[dict[str, Any]]:
    head, body, _ = token.split(".")
    return [json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in (head, body)]


def test_an_assertion_reads_back_as_what_was_minted(
    p256: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    key, certificate = p256
    token = _token(key, certificate, jti="j-1")

    header, claims = _segments(token)

    assert header["alg"] == "ES256"
    assert header["x5t#S256"] == da.thumbprint(certificate)
    assert claims == {
        "iss": DEVICE,
        "sub": DEVICE,
        "aud": da.AUDIENCE,
        "iat": int(NOW),
        "exp": int(NOW) + da.LIFETIME,
        "jti": "j-1",
    }
    assert _read(token) == da.Claims(
        device_id=DEVICE, jti="j-1", issued_at=NOW, expires_at=NOW + da.LIFETIME
    )


def test_each_assertion_has_its_own_jti(
    p256: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    key, certificate = p256

    assert len({_read(_token(key, certificate)).jti for _ in range(20)}) == 20


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), "ES384", id="p384"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, "EdDSA", id="ed25519"),
    ],
)
def test_the_algorithm_follows_the_key(
    make: Any, alg: str, p256: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
) -> None:
    key = make()
    # a self-issued certificate for the key: only the algorithm is under test here
    _, template = p256
    certificate = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
        .sign(key, None if alg == "EdDSA" else template.signature_hash_algorithm)
    )
    token = _token(key, certificate)

    assert _segments(token)[0]["alg"] == alg
    assert _read(token).device_id == DEVICE


def _resigned(token: str, key: Any, **header_change: Any) -> str:
    """``token``'s claims under a header with ``header_change``, signed again by ``key``."""
    header, claims = _segments(token)
    header = {k: v for k, v in (header | header_change).items() if v is not None}
    alg = header["alg"]
    return jwt.encode(claims, key, algorithm=alg, headers=header)


@pytest.mark.parametrize(
    ("bend", "reason"),
    [
        pytest.param(lambda t, k, c: t[:-4] + "AAAA", "bad_signature", id="signature"),
        pytest.param(
            lambda t, k, c: ".".join([t.split(".")[0], _b64({"sub": "x"}), t.split(".")[2]]),
            "bad_signature",
            id="claims-swapped",
        ),
        pytest.param(
            lambda t, k, c: _resigned(t, "k" * 32, alg="HS256"), "malformed", id="hmac-confusion"
        ),
        pytest.param(
            lambda t, k, c: ".".join(
                [_b64(_segments(t)[0] | {"alg": "none"}), *t.split(".")[1:2], ""]
            ),
            "malformed",
            id="alg-none",
        ),
        pytest.param(
            lambda t, k, c: _resigned(t, k, **{"x5t#S256": "A" * 43}), "malformed", id="thumbprint"
        ),
        pytest.param(lambda t, k, c: _resigned(t, k, x5c=None), "malformed", id="no-certificate"),
        pytest.param(lambda t, k, c: _resigned(t, k, crit=["exp"]), "malformed", id="crit"),
        pytest.param(lambda t, k, c: t + "." + t, "malformed", id="two-tokens"),
        pytest.param(lambda t, k, c: "x" * 9000, "malformed", id="too-long"),
    ],
)
def test_bent_assertions_are_refused_with_their_reason(
    p256: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], bend: Any, reason: str
) -> None:
    key, certificate = p256
    bent = bend(_token(key, certificate), key, certificate)

    with pytest.raises(da.AssertionRefused) as refused:
        _read(bent)

    assert refused.value.reason == reason


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def test_every_truncation_of_an_assertion_is_refused(
    p256: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> None:
    key, certificate = p256
    token = _token(key, certificate)

    for end in range(len(token)):
        with pytest.raises(da.AssertionRefused):
            _read(token[:end])


CLAIMS = {"iss": DEVICE, "sub": DEVICE, "aud": da.AUDIENCE, "iat": NOW, "exp": NOW + 60, "jti": "j"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"iat": NOW - 200, "exp": NOW - 140}, "expired", id="expired"),
        pytest.param({"iat": NOW + 31, "exp": NOW + 91}, "not_yet_valid", id="future"),
        pytest.param({"nbf": NOW + 60}, "not_yet_valid", id="not-before"),
        pytest.param({"exp": NOW + 121}, "lifetime_too_long", id="too-long"),
        pytest.param({"aud": "https://elsewhere"}, "wrong_audience", id="audience"),
        pytest.param({"aud": ["a", "b"]}, "wrong_audience", id="audiences"),
        pytest.param({"iss": "other"}, "malformed", id="iss-is-not-sub"),
        pytest.param({"sub": ""}, "malformed", id="empty-sub"),
        pytest.param({"jti": "j" * 65}, "malformed", id="long-jti"),
        pytest.param({"jti": None}, "malformed", id="no-jti"),
        pytest.param({"iat": True}, "malformed", id="bool-time"),
        pytest.param({"exp": "soon"}, "malformed", id="text-time"),
        pytest.param({"exp": NOW}, "malformed", id="exp-not-after-iat"),
    ],
)
def test_claims_outside_the_rules_are_refused(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(da.AssertionRefused) as refused:
        da.check_claims(CLAIMS | change, now=NOW)

    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"iat": NOW + 30, "exp": NOW + 90}, id="30s-ahead"),
        pytest.param({"iat": NOW - 90, "exp": NOW - 30}, id="expired-30s-ago"),
        pytest.param({"aud": ["other", da.AUDIENCE]}, id="audience-in-a-list"),
        pytest.param({"exp": NOW + 120}, id="120s-life"),
    ],
)
def test_claims_at_the_edges_of_the_rules_are_accepted(change: dict[str, Any]) -> None:
    assert da.check_claims(CLAIMS | change, now=NOW).device_id == DEVICE


def _verdict(claims: dict[str, Any], now: float) -> str:
    """``accepted`` or the reason of the refusal."""
    try:
        da.check_claims(claims, now=now)
    except da.AssertionRefused as refused:
        return refused.reason
    return "accepted"


@given(
    issued=st.integers(min_value=0, max_value=2**40),
    life=st.integers(min_value=1, max_value=da.MAX_LIFETIME),
    offset=st.integers(min_value=-400, max_value=400),
)
def test_the_time_rule_is_a_window_of_skew_around_the_token(
    issued: int, life: int, offset: int
) -> None:
    now = issued + offset
    expected = (
        "not_yet_valid"
        if issued > now + da.CLOCK_SKEW
        else "expired"
        if issued + life < now - da.CLOCK_SKEW
        else "accepted"
    )

    assert _verdict(CLAIMS | {"iat": issued, "exp": issued + life}, now) == expected
