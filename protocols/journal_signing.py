"""Signed journal heads: the device's own signature over the last record of each batch.

Why: the hash chain makes tampering evident, but anyone able to publish on a device's topic (the
embedded development broker has no ACL) can build a *consistent* chain of their own. The head
``(device_id, seq, hash)`` of each batch is therefore signed with the device's key; the hash of
the last record commits to every record before it, so one signature covers the whole history up
to it. The cloud verifies before storing and keeps the signature with the certificate that
signed it, so an auditor can check the cloud's copy trusting only the fleet CA's root.

The statement is domain separated (``sf.journal.head.v1\\n``) so a signature made for a journal
head can never be replayed as anything else the device signs (its HTTPS assertions), and the
primitives are those of :mod:`provisioning.device_assertion` (its ``alg`` per key type and
PyJWT's algorithm objects): ES256 for the fleet's P-256 keys, EdDSA for Ed25519, the raw JWS
signature form, base64url without padding.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

from provisioning import device_assertion
from provisioning.device_assertion import AssertionRefused

#: What every signed statement starts with: the kind of statement and its version.
DOMAIN = b"sf.journal.head.v1\n"
#: The longest ``head_sig`` (base64url): an ES384 or RSA-4096 signature fits easily.
MAX_SIGNATURE_LENGTH = 1024
#: ``cert_fp``: base64url sha256, 43 characters.
FINGERPRINT_LENGTH = 43
#: The longest ``cert`` (base64url DER of the signing certificate and its issuing CA).
MAX_CERTIFICATE_LENGTH = 4096

_ALGORITHMS = get_default_algorithms()


class HeadRefused(AssertionRefused):
    """A batch head whose signature proves nothing; ``reason`` says why (see :data:`REASONS`)."""


#: Every ``HeadRefused.reason``, and what it means.
REASONS = {
    "unsigned": "the device has a certificate but the batch carries no head signature",
    "malformed": "head_sig, cert_fp or cert is not what this module produces",
    "unknown_certificate": "the certificate was not issued to this device for this key",
    "revoked": "the certificate was revoked",
    "bad_signature": "the signature does not verify with the certificate's key",
}


def statement(*, device_id: str, seq: int, record_hash: str) -> bytes:
    """The exact bytes signed for a batch whose last record is ``(seq, record_hash)``."""
    return DOMAIN + f"{device_id}\n{int(seq)}\n{record_hash}".encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _unb64url(text: str, what: str) -> bytes:
    if not _B64URL.fullmatch(text):  # the decoder would skip stray characters silently
        raise HeadRefused("malformed", f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error) as err:
        raise HeadRefused("malformed", f"{what} is not base64url") from err


def chain_text(chain: Sequence[x509.Certificate]) -> str:
    """The ``cert`` field: base64url DER of the leaf, then its issuers, joined by ``.``.

    The issuing CA travels with the leaf so the stored copy verifies up to the fleet root alone.
    """
    return ".".join(_b64url(c.public_bytes(serialization.Encoding.DER)) for c in chain)


def chain_from_text(text: str) -> list[x509.Certificate]:
    """The certificates a ``cert`` field carries, leaf first."""
    if len(text) > MAX_CERTIFICATE_LENGTH:
        raise HeadRefused("malformed", f"cert is longer than {MAX_CERTIFICATE_LENGTH}")
    try:
        return [x509.load_der_x509_certificate(_unb64url(part, "cert")) for part in text.split(".")]
    except ValueError as err:
        raise HeadRefused("malformed", "cert holds no DER certificate chain") from err


class HeadSigner:
    """The device's key and certificate, ready to sign batch heads (the appliance's half).

    The fingerprint, the certificate's text and the prepared key are computed once: every
    batch carries the first two and is signed with the third.
    """

    __slots__ = ("_algorithm", "_key", "certificate_field", "device_id", "fingerprint")

    def __init__(
        self,
        *,
        device_id: str,
        private_key: PrivateKeyTypes,
        chain: Sequence[x509.Certificate],
    ) -> None:
        self.device_id = device_id
        #: ``cert_fp``: base64url(sha256(leaf certificate DER)), as ``x5t#S256``.
        self.fingerprint = device_assertion.thumbprint(chain[0])
        #: ``cert``: the leaf and its issuers, so the cloud can keep them with the signature.
        self.certificate_field = chain_text(chain)
        self._algorithm = _ALGORITHMS[device_assertion.algorithm_for(private_key)]
        self._key = self._algorithm.prepare_key(private_key)

    def sign(self, *, seq: int, record_hash: str) -> str:
        """``head_sig`` for a batch ending at ``(seq, record_hash)``."""
        message = statement(device_id=self.device_id, seq=seq, record_hash=record_hash)
        return _b64url(self._algorithm.sign(message, self._key))


def verify(
    *,
    public_key: CertificatePublicKeyTypes,
    device_id: str,
    seq: int,
    record_hash: str,
    head_sig: str,
) -> None:
    """Refuse unless ``head_sig`` is ``public_key``'s signature over the head's statement."""
    if len(head_sig) > MAX_SIGNATURE_LENGTH:
        raise HeadRefused("malformed", f"head_sig is longer than {MAX_SIGNATURE_LENGTH}")
    signature = _unb64url(head_sig, "head_sig")
    algorithm = _ALGORITHMS[device_assertion.algorithm_for(public_key)]
    message = statement(device_id=device_id, seq=seq, record_hash=record_hash)
    try:
        valid = algorithm.verify(message, algorithm.prepare_key(public_key), signature)
    except (InvalidKeyError, ValueError, TypeError) as err:
        raise HeadRefused("bad_signature", f"the head signature cannot be checked: {err}") from err
    if not valid:
        raise HeadRefused("bad_signature", f"the signature over seq {seq} does not verify")


def fingerprint_matches(certificate: x509.Certificate, cert_fp: str) -> bool:
    """Whether ``cert_fp`` is ``certificate``'s fingerprint (constant time)."""
    return secrets.compare_digest(device_assertion.thumbprint(certificate), cert_fp)
