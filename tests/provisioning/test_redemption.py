"""The control plane's redemption step: CSR + stored record -> claim, or a typed refusal."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioning.ca import CertificateAuthority
from provisioning.enrolment import EnrolmentRecord, new_enrolment
from provisioning.errors import InvalidDeviceId, TokenExpired, TokenUnknown, TokenUsed, WeakKey
from provisioning.keys import build_csr, generate_private_key, public_key_fingerprint
from provisioning.redemption import claim_enrolment


@pytest.fixture
def record(now: datetime, ca: CertificateAuthority) -> EnrolmentRecord:
    return new_enrolment(
        tenant_id="tenant-1",
        store_id="store-7",
        control_plane_url="https://fleet.example.com",
        ca_fingerprint=ca.fingerprint,
        now=now,
    ).record


def test_first_claim_assigns_the_device_and_records_the_key(
    record: EnrolmentRecord, ca: CertificateAuthority, now: datetime
) -> None:
    key = generate_private_key()
    csr = build_csr(key, common_name="x")

    claim = claim_enrolment(record, csr_pem=csr, new_device_id="reg-0001", now=now)
    issued = ca.issue_device_certificate(claim.csr_pem, device_id=claim.device_id, now=now)

    assert not claim.retry
    assert claim.record == replace(
        record, used_at=now, used_by_key=public_key_fingerprint(key.public_key()),
        device_id="reg-0001",
    )  # fmt: skip
    assert issued.certificate.public_key() == key.public_key()


def test_retry_with_the_same_key_gets_the_same_device_id(
    record: EnrolmentRecord, now: datetime
) -> None:
    key = generate_private_key()
    first = claim_enrolment(
        record, csr_pem=build_csr(key, common_name="x"), new_device_id="reg-0001", now=now
    )

    retry = claim_enrolment(
        first.record,
        csr_pem=build_csr(key, common_name="x"),
        new_device_id="reg-0002",
        now=now + timedelta(minutes=5),
    )

    assert retry.retry
    assert retry.device_id == "reg-0001"
    assert retry.record == first.record


def test_another_key_with_a_used_token_is_refused(record: EnrolmentRecord, now: datetime) -> None:
    first = claim_enrolment(
        record,
        csr_pem=build_csr(generate_private_key(), common_name="x"),
        new_device_id="reg-0001",
        now=now,
    )

    with pytest.raises(TokenUsed):
        claim_enrolment(
            first.record,
            csr_pem=build_csr(generate_private_key(), common_name="x"),
            new_device_id="reg-0002",
            now=now,
        )


def test_unknown_token_is_refused_before_the_csr_is_read() -> None:
    with pytest.raises(TokenUnknown):
        claim_enrolment(
            None, csr_pem=b"not even a csr", new_device_id="reg-0001", now=datetime.now()
        )


def test_weak_csr_is_refused_even_with_a_good_token(record: EnrolmentRecord, now: datetime) -> None:
    weak = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(rsa.generate_private_key(65537, 1024), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )

    with pytest.raises(WeakKey):
        claim_enrolment(record, csr_pem=weak, new_device_id="reg-0001", now=now)


def test_expired_enrolment_is_refused(record: EnrolmentRecord, now: datetime) -> None:
    with pytest.raises(TokenExpired):
        claim_enrolment(
            record,
            csr_pem=build_csr(generate_private_key(), common_name="x"),
            new_device_id="reg-0001",
            now=now + timedelta(days=2),
        )


def test_unsafe_new_device_id_is_refused(record: EnrolmentRecord, now: datetime) -> None:
    with pytest.raises(InvalidDeviceId):
        claim_enrolment(
            record,
            csr_pem=build_csr(generate_private_key(), common_name="x"),
            new_device_id="control-plane",
            now=now,
        )


def test_the_claim_keeps_the_request_it_checked_and_the_ca_certifies_its_key(
    record: EnrolmentRecord, ca: CertificateAuthority, now: datetime
) -> None:
    """The enrolment signs the request the claim validated, without checking it again."""
    key = generate_private_key()
    claim = claim_enrolment(
        record, csr_pem=build_csr(key, common_name="x"), new_device_id="reg-0001", now=now
    )

    issued = ca.issue_validated_device_certificate(claim.csr, device_id=claim.device_id, now=now)

    assert claim.csr.public_key() == key.public_key()
    assert issued.certificate.public_key() == key.public_key()
    assert issued.certificate.subject.rfc4514_string() == "CN=reg-0001"
    recorded = ca.ledger.get_issued(issued.serial)
    assert recorded is not None
    assert recorded.public_key_sha256 == claim.record.used_by_key
