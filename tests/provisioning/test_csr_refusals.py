"""Certificate requests the CA must refuse, each with a message that says what to do."""

from __future__ import annotations

from datetime import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from provisioning.ca import CertificateAuthority, validate_csr
from provisioning.errors import BadCsr, WeakKey

TRUNCATED = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"


def _csr(key: CertificateIssuerPrivateKeyTypes, common_name: str = "reg-honest") -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, algorithm)
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _tampered(csr_pem: bytes) -> bytes:
    """The same CSR with one byte of its subject changed after signing."""
    der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    forged = x509.load_der_x509_csr(der.replace(b"reg-honest", b"reg-h0nest"))
    return forged.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(rsa.generate_private_key(65537, 1024), id="rsa-1024"),
        pytest.param(ec.generate_private_key(ec.SECP256K1()), id="ec-secp256k1"),
        pytest.param(ec.generate_private_key(ec.SECP521R1()), id="ec-p521"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), id="ed25519"),
    ],
)
def test_unacceptable_keys_are_refused_as_weak(
    ca: CertificateAuthority, key: CertificateIssuerPrivateKeyTypes, now: datetime
) -> None:
    with pytest.raises(WeakKey, match="EC P-256/P-384") as raised:
        ca.issue_device_certificate(_csr(key), device_id="reg-0001", now=now)

    assert raised.value.reason == "weak_key"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(ec.generate_private_key(ec.SECP256R1()), id="ec-p256"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
        pytest.param(rsa.generate_private_key(65537, 2048), id="rsa-2048"),
    ],
)
def test_acceptable_keys_are_certified(
    ca: CertificateAuthority, key: CertificateIssuerPrivateKeyTypes, now: datetime
) -> None:
    issued = ca.issue_device_certificate(_csr(key), device_id="reg-0001", now=now)

    assert issued.certificate.public_key() == key.public_key()


def test_tampered_csr_signature_is_refused(ca: CertificateAuthority, now: datetime) -> None:
    forged = _tampered(_csr(ec.generate_private_key(ec.SECP256R1())))

    with pytest.raises(BadCsr, match="signature does not match") as raised:
        ca.issue_device_certificate(forged, device_id="reg-0001", now=now)

    assert raised.value.reason == "bad_csr"
    assert "regenerate its certificate request" in str(raised.value)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(TRUNCATED, id="truncated"),
        pytest.param(b"hello", id="not-pem"),
    ],
)
def test_unreadable_csr_is_refused(data: bytes) -> None:
    with pytest.raises(BadCsr, match="not a PEM certificate request"):
        validate_csr(data)


def test_refused_csr_issues_nothing(ca: CertificateAuthority, now: datetime) -> None:
    weak = _csr(rsa.generate_private_key(65537, 1024))

    with pytest.raises(WeakKey):
        ca.issue_device_certificate(weak, device_id="reg-0001", now=now)

    assert ca.ledger.revoked() == []
    assert not (ca.directory / "ledger.json").exists()
