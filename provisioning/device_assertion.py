"""Device assertions: a short-lived token an appliance signs with its own key for each HTTPS call.

How it works (RFC 7523 §3, the shape of OAuth2 ``private_key_jwt`` client assertions): the
appliance sends ``Authorization: Bearer <compact JWS>``, minted per request::

    header  {"alg": "ES256", "typ": "JWT",
             "x5t#S256": base64url(sha256(certificate DER)),   RFC 7515 §4.1.8
             "x5c": [base64(certificate DER)]}                  RFC 7515 §4.1.6
    claims  {"iss": device id, "sub": device id, "aud": AUDIENCE,
             "iat": now, "exp": now + LIFETIME, "jti": 128 random bits}

``alg`` follows the key: ES256 for the fleet's P-256 device keys (``provisioning.keys``), ES384
for P-384, EdDSA for Ed25519, RS256 for RSA. The certificate travels in ``x5c`` because the
registry keeps each certificate's serial and key hash, not the certificate: the token carries
the public key and the verifier checks, against the registry, that this serial certifies this
key for this device now. Its CA signature is not what makes it trusted (a certificate forged
around the device's real public key still cannot sign for it without the device's private key).

This module is sans-I/O and shared by both sides: the appliance mints (``mint``), the control
plane takes the token apart once (``presented``), reads its certificate (``certificate_of``),
checks the signature with PyJWT's algorithm for the certificate's key (``verified_claims``) and
the claims (``check_claims``); the file reads, the registry look-up and the replay cache are the
callers'. Every refusal is an :class:`AssertionRefused` with a stable ``reason``.

Times: the edge mints for ``LIFETIME`` (60 s); the verifier accepts at most ``MAX_LIFETIME``
(120 s) between ``iat`` and ``exp`` and ``CLOCK_SKEW`` (30 s) of disagreement between the two
clocks, both ways (an appliance keeps time by NTP; 30 s covers a slow first sync).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from jwt.algorithms import get_default_algorithms

from provisioning.errors import ProvisioningError

#: The ``aud`` every device assertion names: the fleet's control plane, whatever URL it is
#: reached by (a proxy, a second instance), so a token minted for anything else is refused.
AUDIENCE = "urn:storefleet:control-plane"
#: Seconds an appliance mints its assertions for.
LIFETIME = 60
#: The longest ``exp - iat`` the control plane accepts (seed 003: 60-120 s device tokens).
MAX_LIFETIME = 120
#: Seconds two clocks may disagree by: an ``iat`` this far ahead or an ``exp`` this far behind
#: the verifier's clock is still accepted.
CLOCK_SKEW = 30
#: The longest ``jti`` accepted (the replay cache keeps each one for the token's lifetime).
MAX_JTI_LENGTH = 64
THUMBPRINT_HEADER = "x5t#S256"
CHAIN_HEADER = "x5c"
_MAX_TOKEN_LENGTH = 8192  # one certificate of a few hundred bytes, claims and signature
_MAX_ID_LENGTH = 64


class AssertionRefused(ProvisioningError):  # noqa: N818 - named for what happened
    """A device assertion that proves nothing; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


#: Every ``AssertionRefused.reason``, and what it means.
REASONS = {
    "malformed": "not a compact JWS with the header and claims above",
    "bad_signature": "the signature does not verify with the certificate's key",
    "wrong_audience": "aud does not name the control plane",
    "expired": "exp is past (beyond the clock skew)",
    "not_yet_valid": "iat (or nbf) is in the future (beyond the clock skew)",
    "lifetime_too_long": "exp - iat exceeds MAX_LIFETIME",
}


def algorithm_for(key: CertificatePublicKeyTypes | PrivateKeyTypes) -> str:
    """The JWS ``alg`` a key signs with (one per key type, so no algorithm is chosen by a token)."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384"}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
        raise AssertionRefused("malformed", f"EC curve {key.curve.name} has no JWS algorithm here")
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RS256"
    raise AssertionRefused("malformed", f"a {type(key).__name__} cannot sign device assertions")


def thumbprint(certificate: x509.Certificate) -> str:
    """``x5t#S256``: base64url (unpadded) of the sha256 of the certificate's DER."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return _b64url(hashlib.sha256(der).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def build_claims(
    *,
    device_id: str,
    now: float,
    lifetime: int = LIFETIME,
    audience: str = AUDIENCE,
    jti: str | None = None,
) -> dict[str, Any]:
    """The claims of one assertion issued at ``now`` (seconds since the epoch)."""
    issued = math.floor(now)
    return {
        "iss": device_id,
        "sub": device_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": jti or secrets.token_urlsafe(16),
    }


def mint(
    *,
    private_key: PrivateKeyTypes,
    certificate: x509.Certificate,
    device_id: str,
    now: float,
    lifetime: int = LIFETIME,
    audience: str = AUDIENCE,
    jti: str | None = None,
) -> str:
    """A compact JWS of :func:`build_claims`, signed with ``private_key`` for ``certificate``."""
    claims = build_claims(
        device_id=device_id, now=now, lifetime=lifetime, audience=audience, jti=jti
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    headers = {
        "typ": "JWT",
        THUMBPRINT_HEADER: thumbprint(certificate),
        CHAIN_HEADER: [base64.b64encode(der).decode()],
    }
    return jwt.encode(
        claims,
        private_key,  # type: ignore[arg-type]  # PyJWT's union names the key types it signs with
        algorithm=algorithm_for(private_key),
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class Presented:
    """An assertion taken apart once, before anything is verified: header fields and segments."""

    algorithm: str
    thumbprint: str
    chain: str  # the x5c leaf as sent (base64): the key of the verifier's certificate cache
    signing_input: bytes
    payload: bytes
    signature: bytes


def _segment(data: bytes, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    except (ValueError, binascii.Error) as err:
        raise AssertionRefused("malformed", f"the {what} is not base64url") from err


def presented(token: str) -> Presented:
    """The algorithm, thumbprint, certificate and segments of an assertion (nothing verified)."""
    if len(token) > _MAX_TOKEN_LENGTH:
        raise AssertionRefused("malformed", f"the token is longer than {_MAX_TOKEN_LENGTH}")
    raw = token.encode("ascii", "replace")
    signing_input, _, signature = raw.rpartition(b".")
    header_segment, _, payload_segment = signing_input.partition(b".")
    if not payload_segment or b"." in payload_segment:
        raise AssertionRefused("malformed", "not a compact JWS (header.claims.signature)")
    try:
        header = json.loads(_segment(header_segment, "header"))
    except ValueError as err:
        raise AssertionRefused("malformed", "the header is not JSON") from err
    if not isinstance(header, dict):
        raise AssertionRefused("malformed", "the header is not a JSON object")
    algorithm, print_, chain = (
        header.get("alg"),
        header.get(THUMBPRINT_HEADER),
        header.get(CHAIN_HEADER),
    )
    if not isinstance(algorithm, str) or not isinstance(print_, str):
        raise AssertionRefused("malformed", f"the header needs alg and {THUMBPRINT_HEADER}")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise AssertionRefused("malformed", f"the header needs {CHAIN_HEADER}: the certificate")
    if "crit" in header:  # RFC 7515 §4.1.11: no extension is understood here
        raise AssertionRefused("malformed", "the header names critical extensions")
    return Presented(
        algorithm=algorithm,
        thumbprint=print_,
        chain=chain[0],
        signing_input=signing_input,
        payload=_segment(payload_segment, "claims"),
        signature=_segment(signature, "signature"),
    )


def certificate_of(seen: Presented) -> x509.Certificate:
    """The certificate in the header, only if its thumbprint is the header's ``x5t#S256``."""
    try:
        der = base64.b64decode(seen.chain, validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (ValueError, binascii.Error) as err:
        raise AssertionRefused("malformed", f"{CHAIN_HEADER} holds no certificate") from err
    if not secrets.compare_digest(thumbprint(certificate), seen.thumbprint):
        raise AssertionRefused(
            "malformed", f"{THUMBPRINT_HEADER} is not the thumbprint of the certificate sent"
        )
    return certificate


_ALGORITHMS = get_default_algorithms()


def verified_claims(seen: Presented, *, public_key: CertificatePublicKeyTypes) -> dict[str, Any]:
    """The claims, once the signature verifies with ``public_key`` under its one algorithm.

    The algorithm is the key's (:func:`algorithm_for`); a header naming another (``none``, an
    HMAC keyed with the public key) is refused before any verification is tried.
    """
    expected = algorithm_for(public_key)
    if seen.algorithm != expected:
        raise AssertionRefused(
            "malformed", f"alg {seen.algorithm!r} does not fit the certificate's key ({expected})"
        )
    verifier = _ALGORITHMS[expected]
    try:
        valid = verifier.verify(
            seen.signing_input, verifier.prepare_key(public_key), seen.signature
        )
    except (jwt.InvalidKeyError, ValueError, TypeError) as err:
        raise AssertionRefused("bad_signature", f"the signature cannot be checked: {err}") from err
    if not valid:
        raise AssertionRefused("bad_signature", "the signature does not verify")
    try:
        claims = json.loads(seen.payload)
    except ValueError as err:
        raise AssertionRefused("malformed", "the claims are not JSON") from err
    if not isinstance(claims, dict):
        raise AssertionRefused("malformed", "the claims are not a JSON object")
    return claims


@dataclass(frozen=True, slots=True)
class Claims:
    """The checked claims of an assertion."""

    device_id: str
    jti: str
    issued_at: float
    expires_at: float


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AssertionRefused("malformed", f"{name} must be a number of seconds since the epoch")
    return float(value)


def _text(claims: dict[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise AssertionRefused(
            "malformed", f"{name} must be printable text of 1-{limit} characters"
        )
    return value


def check_claims(
    claims: dict[str, Any],
    *,
    now: float,
    audience: str = AUDIENCE,
    skew: float = CLOCK_SKEW,
    max_lifetime: float = MAX_LIFETIME,
) -> Claims:
    """Refuse claims that are not a device's own, for ``audience``, current at ``now``."""
    device_id = _text(claims, "sub", _MAX_ID_LENGTH)
    if claims.get("iss") != device_id:
        raise AssertionRefused("malformed", "iss and sub must both be the device id")
    jti = _text(claims, "jti", MAX_JTI_LENGTH)
    aud = claims.get("aud")
    named = aud if isinstance(aud, list) else [aud]
    if audience not in named:
        raise AssertionRefused("wrong_audience", f"aud must name {audience!r}, not {aud!r}")
    issued, expires = _number(claims, "iat"), _number(claims, "exp")
    if expires <= issued:
        raise AssertionRefused("malformed", "exp must be after iat")
    if expires - issued > max_lifetime:
        raise AssertionRefused(
            "lifetime_too_long",
            f"the token lives {expires - issued:.0f} s; at most {max_lifetime:.0f} s",
        )
    not_before = max(issued, _number(claims, "nbf")) if "nbf" in claims else issued
    if not_before > now + skew:
        raise AssertionRefused(
            "not_yet_valid", f"issued {not_before - now:.0f} s in the future by this clock"
        )
    if expires < now - skew:
        raise AssertionRefused("expired", f"expired {now - expires:.0f} s ago by this clock")
    return Claims(device_id=device_id, jti=jti, issued_at=issued, expires_at=expires)
