"""The CA: keys at rest, certificate contents, serial ledger, revocation and CRL."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.ca import (
    DEVICE_VALIDITY,
    ISSUING_KEY,
    ROOT_KEY,
    CertificateAuthority,
    device_uri,
    renewal_due,
    validate_device_id,
)
from provisioning.errors import (
    CaPassphraseError,
    CertificateAuthorityError,
    InvalidDeviceId,
    UnknownSerial,
)
from provisioning.keys import build_csr, generate_private_key, public_key_fingerprint


def _cn(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _device_csr(common_name: str = "whatever-the-device-says") -> bytes:
    return build_csr(generate_private_key(), common_name=common_name)


def test_root_is_p384_and_issuing_is_p256_with_path_length_zero(ca: CertificateAuthority) -> None:
    root_key = ca.root_certificate.public_key()
    issuing_key = ca.issuing_certificate.public_key()
    constraints = ca.issuing_certificate.extensions.get_extension_for_class(x509.BasicConstraints)

    assert isinstance(root_key, ec.EllipticCurvePublicKey)
    assert isinstance(root_key.curve, ec.SECP384R1)
    assert isinstance(issuing_key, ec.EllipticCurvePublicKey)
    assert isinstance(issuing_key.curve, ec.SECP256R1)
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    ca.issuing_certificate.verify_directly_issued_by(ca.root_certificate)


@pytest.mark.parametrize("name", [ROOT_KEY, ISSUING_KEY])
def test_private_keys_are_encrypted_and_private_at_rest(
    ca: CertificateAuthority, name: str
) -> None:
    path = ca.directory / name
    pem = path.read_bytes()

    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)


def test_reopened_ca_has_the_same_fingerprint(ca: CertificateAuthority, passphrase: bytes) -> None:
    reopened = CertificateAuthority.open(ca.directory, passphrase=passphrase)

    assert reopened.fingerprint == ca.fingerprint


def test_fingerprint_is_sha256_of_root_der_in_lower_hex(ca: CertificateAuthority) -> None:
    der = ca.root_certificate.public_bytes(serialization.Encoding.DER)

    assert ca.fingerprint == hashlib.sha256(der).hexdigest()


def test_wrong_passphrase_is_refused_with_what_to_set(ca: CertificateAuthority) -> None:
    with pytest.raises(CaPassphraseError, match="passphrase is wrong"):
        CertificateAuthority.open(ca.directory, passphrase=b"not the passphrase at all")


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CertificateAuthorityError, match="at least 16 bytes"):
        CertificateAuthority.create(tmp_path / "ca", passphrase=b"short")


def test_creating_over_an_existing_ca_is_refused(
    ca: CertificateAuthority, passphrase: bytes
) -> None:
    with pytest.raises(CertificateAuthorityError, match="already holds a CA"):
        CertificateAuthority.create(ca.directory, passphrase=passphrase)


def test_opening_an_empty_directory_says_to_run_init_ca(tmp_path: Path, passphrase: bytes) -> None:
    with pytest.raises(CertificateAuthorityError, match="init-ca"):
        CertificateAuthority.open(tmp_path, passphrase=passphrase)


def test_device_certificate_names_the_assigned_device(
    ca: CertificateAuthority, now: datetime
) -> None:
    issued = ca.issue_device_certificate(_device_csr(), device_id="reg-0001", now=now)
    certificate = issued.certificate
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    assert _cn(certificate) == "reg-0001"
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [device_uri("reg-0001")]
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.not_valid_after_utc == now + DEVICE_VALIDITY
    certificate.verify_directly_issued_by(ca.issuing_certificate)


@pytest.mark.parametrize("device_id", ["control-plane", "sf/v1/d/#", ""])
def test_a_validated_request_still_gets_only_a_valid_device_id(
    ca: CertificateAuthority, device_id: str, now: datetime
) -> None:
    csr = x509.load_pem_x509_csr(_device_csr())

    with pytest.raises(InvalidDeviceId):
        ca.issue_validated_device_certificate(csr, device_id=device_id, now=now)


@pytest.mark.parametrize("csr_cn", ["control-plane", "reg-9999", "sf/v1/d/#"])
def test_csr_subject_is_overridden_by_the_assigned_device_id(
    ca: CertificateAuthority, csr_cn: str, now: datetime
) -> None:
    issued = ca.issue_device_certificate(_device_csr(csr_cn), device_id="reg-0001", now=now)

    assert _cn(issued.certificate) == "reg-0001"


def test_serials_are_recorded_with_the_key_they_certify(
    ca: CertificateAuthority, now: datetime
) -> None:
    key = generate_private_key()
    issued = ca.issue_device_certificate(
        build_csr(key, common_name="x"), device_id="reg-0001", now=now
    )
    record = ca.ledger.get_issued(issued.serial)

    assert record is not None
    assert record.common_name == "reg-0001"
    assert record.kind == "device"
    assert record.public_key_sha256 == public_key_fingerprint(key.public_key())


def test_control_plane_identity_comes_from_the_same_ca(
    ca: CertificateAuthority, now: datetime
) -> None:
    issued = ca.issue_control_plane_certificate(_device_csr("anything"), now=now)

    assert _cn(issued.certificate) == "control-plane"
    issued.certificate.verify_directly_issued_by(ca.issuing_certificate)


def test_broker_certificate_carries_dns_and_ip_names(
    ca: CertificateAuthority, now: datetime
) -> None:
    issued = ca.issue_broker_certificate(
        _device_csr(), hostnames=["broker.example.com", "127.0.0.1"], now=now
    )
    san = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)

    assert san.value.get_values_for_type(x509.DNSName) == ["broker.example.com"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_chain_pem_is_leaf_issuing_root(ca: CertificateAuthority, now: datetime) -> None:
    issued = ca.issue_device_certificate(_device_csr(), device_id="reg-0001", now=now)

    chain = x509.load_pem_x509_certificates(issued.chain_pem)

    assert chain == [issued.certificate, ca.issuing_certificate, ca.root_certificate]


@pytest.mark.parametrize(
    "device_id",
    [
        pytest.param("control-plane", id="reserved-control-plane"),
        pytest.param("broker", id="reserved-broker"),
        pytest.param("a/b", id="topic-separator"),
        pytest.param("+", id="single-level-wildcard"),
        pytest.param("reg#1", id="multi-level-wildcard"),
        pytest.param("reg 1", id="space"),
        pytest.param("", id="empty"),
        pytest.param("-reg", id="leading-dash"),
        pytest.param("r" * 65, id="too-long"),
    ],
)
def test_unsafe_device_ids_are_refused(
    ca: CertificateAuthority, device_id: str, now: datetime
) -> None:
    with pytest.raises(InvalidDeviceId) as raised:
        ca.issue_device_certificate(_device_csr(), device_id=device_id, now=now)

    assert raised.value.device_id == device_id


def test_a_safe_device_id_is_returned_unchanged() -> None:
    assert validate_device_id("store-12.reg_3") == "store-12.reg_3"


def test_revoking_an_unknown_serial_says_how_to_find_the_right_one(
    ca: CertificateAuthority,
) -> None:
    with pytest.raises(UnknownSerial, match="inspect-cert") as raised:
        ca.revoke(0x1234)

    assert raised.value.serial == 0x1234


def test_crl_lists_revoked_serials_with_reason_and_is_signed_by_issuing_ca(
    ca: CertificateAuthority, now: datetime
) -> None:
    kept = ca.issue_device_certificate(_device_csr(), device_id="reg-0001", now=now)
    revoked = ca.issue_device_certificate(_device_csr(), device_id="reg-0002", now=now)
    ca.revoke(revoked.serial, x509.ReasonFlags.key_compromise, now=now)

    crl = x509.load_pem_x509_crl(ca.crl_pem(now=now))
    entry = crl.get_revoked_certificate_by_serial_number(revoked.serial)

    issuing_key = ca.issuing_certificate.public_key()
    assert isinstance(issuing_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(issuing_key)
    assert crl.issuer == ca.issuing_certificate.subject
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.get_revoked_certificate_by_serial_number(kept.serial) is None
    assert crl.next_update_utc == now + timedelta(days=7)


def test_crl_number_only_grows(ca: CertificateAuthority, now: datetime) -> None:
    numbers = [
        ca.crl(now=now).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        for _ in range(3)
    ]

    assert numbers == sorted(set(numbers))


def test_revocations_survive_reopening_the_ca(
    ca: CertificateAuthority, now: datetime, passphrase: bytes
) -> None:
    issued = ca.issue_device_certificate(_device_csr(), device_id="reg-0001", now=now)
    CertificateAuthority.open(ca.directory, passphrase=passphrase).revoke(issued.serial, now=now)

    crl = CertificateAuthority.open(ca.directory, passphrase=passphrase).crl(now=now)

    assert crl.get_revoked_certificate_by_serial_number(issued.serial) is not None


def test_write_crl_writes_pem_for_mosquitto(
    ca: CertificateAuthority, tmp_path: Path, now: datetime
) -> None:
    path = ca.write_crl(tmp_path / "broker" / "crl.pem", now=now)

    assert path.read_bytes().startswith(b"-----BEGIN X509 CRL-----")


@pytest.mark.parametrize(
    ("days_after_issue", "due"),
    [pytest.param(59, False, id="day-59"), pytest.param(60, True, id="day-60-30-left")],
)
def test_renewal_is_due_thirty_days_before_expiry(
    ca: CertificateAuthority, now: datetime, days_after_issue: int, due: bool
) -> None:
    issued = ca.issue_device_certificate(_device_csr(), device_id="reg-0001", now=now)

    assert renewal_due(issued.certificate, now=now + timedelta(days=days_after_issue)) is due
