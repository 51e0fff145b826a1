"""The appliance side: private key at rest, resumable enrolment, and CA pinning."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity, IdentityState, verify_chain
from provisioning.enrolment import Accepted, check_enrolment, hash_token, new_enrolment, parse_qr
from provisioning.enrolment import encode_qr as encode_enrolment
from provisioning.errors import CaFingerprintMismatch, DeviceIdentityError, TokenUsed


@pytest.fixture
def identity(tmp_path: Path) -> DeviceIdentity:
    return DeviceIdentity(tmp_path / "identity")


def _issue(ca: CertificateAuthority, identity: DeviceIdentity, now: datetime) -> bytes:
    return ca.issue_device_certificate(
        identity.certificate_request(), device_id="reg-0001", now=now
    ).chain_pem


def test_new_key_is_private_and_the_directory_too(identity: DeviceIdentity) -> None:
    identity.ensure_key()

    assert identity.key_path.stat().st_mode & 0o777 == 0o600
    assert identity.directory.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in identity.directory.iterdir()] == ["device.key.pem"]


def test_states_follow_the_files(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    states = [identity.state()]
    chain = _issue(ca, identity, now)
    states.append(identity.state())
    identity.install(chain, pinned_fingerprint=ca.fingerprint, now=now)
    states.append(identity.state())

    assert states == [IdentityState.NEW, IdentityState.KEY_ONLY, IdentityState.ENROLLED]


def test_resumed_enrolment_reuses_the_same_key(identity: DeviceIdentity) -> None:
    first = x509.load_pem_x509_csr(identity.certificate_request())
    after_reboot = DeviceIdentity(identity.directory)
    second = x509.load_pem_x509_csr(after_reboot.certificate_request())

    assert after_reboot.state() is IdentityState.KEY_ONLY
    assert second.public_key() == first.public_key()
    assert after_reboot.key_sha256() == identity.key_sha256()


def test_a_widened_key_file_is_made_private_again(identity: DeviceIdentity) -> None:
    identity.ensure_key()
    identity.key_path.chmod(0o644)

    DeviceIdentity(identity.directory).ensure_key()

    assert identity.key_path.stat().st_mode & 0o777 == 0o600


def test_install_stores_root_and_presented_chain(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    verified = identity.install(
        _issue(ca, identity, now), pinned_fingerprint=ca.fingerprint, now=now
    )
    presented = x509.load_pem_x509_certificates(identity.certificate_path.read_bytes())

    assert verified.device_id == identity.device_id() == "reg-0001"
    assert identity.ca_path.read_bytes() == ca.root_pem
    assert presented == [verified.leaf, ca.issuing_certificate]


def test_pin_accepts_colon_separated_upper_case(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    pin = ":".join(ca.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()

    verified = identity.install(_issue(ca, identity, now), pinned_fingerprint=pin, now=now)

    assert verified.root == ca.root_certificate


def test_chain_from_another_ca_is_refused_and_nothing_is_written(
    identity: DeviceIdentity,
    ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    now: datetime,
) -> None:
    chain = _issue(other_ca, identity, now)

    with pytest.raises(CaFingerprintMismatch, match="do not continue") as raised:
        identity.install(chain, pinned_fingerprint=ca.fingerprint, now=now)

    assert raised.value.expected == ca.fingerprint
    assert raised.value.actual == other_ca.fingerprint
    assert identity.state() is IdentityState.KEY_ONLY
    assert not identity.ca_path.exists()


def test_leaf_not_signed_by_the_pinned_chain_is_refused(
    identity: DeviceIdentity,
    ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    now: datetime,
) -> None:
    foreign = other_ca.issue_device_certificate(
        identity.certificate_request(), device_id="reg-0001", now=now
    )
    spliced = foreign.certificate_pem + ca.trust_bundle_pem[len(ca.root_pem) :] + ca.root_pem

    with pytest.raises(DeviceIdentityError, match="chain is broken"):
        identity.install(spliced, pinned_fingerprint=ca.fingerprint, now=now)


def test_certificate_for_another_key_is_refused(
    identity: DeviceIdentity, tmp_path: Path, ca: CertificateAuthority, now: datetime
) -> None:
    identity.ensure_key()
    someone_else = DeviceIdentity(tmp_path / "someone-else")

    with pytest.raises(DeviceIdentityError, match="different key"):
        identity.install(_issue(ca, someone_else, now), pinned_fingerprint=ca.fingerprint, now=now)


def test_chain_with_only_the_ca_is_refused(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    identity.ensure_key()

    with pytest.raises(DeviceIdentityError, match="only the CA certificate"):
        identity.install(ca.root_pem, pinned_fingerprint=ca.fingerprint, now=now)


def test_wrong_clock_is_named_as_the_cause(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    chain = _issue(ca, identity, now)

    with pytest.raises(DeviceIdentityError, match="check the clock"):
        identity.install(chain, pinned_fingerprint=ca.fingerprint, now=now - timedelta(days=400))


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"", id="empty"), pytest.param(b"-----BEGIN PRIVATE KEY-----\n", id="cut")],
)
def test_corrupt_key_file_says_to_enrol_again(identity: DeviceIdentity, content: bytes) -> None:
    identity.directory.mkdir()
    identity.key_path.write_bytes(content)

    with pytest.raises(DeviceIdentityError, match="enrol the appliance again"):
        identity.ensure_key()


def test_answer_without_certificates_is_refused(identity: DeviceIdentity) -> None:
    identity.ensure_key()

    with pytest.raises(DeviceIdentityError, match="no readable certificate chain"):
        identity.install(b"<html>bad gateway</html>", pinned_fingerprint="0" * 64)


def test_device_id_before_enrolment_says_to_scan(identity: DeviceIdentity) -> None:
    with pytest.raises(DeviceIdentityError, match="scan an enrolment code"):
        identity.device_id()


def test_verify_chain_is_usable_without_files(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    key = identity.ensure_key()

    verified = verify_chain(
        _issue(ca, identity, now), pinned_fingerprint=ca.fingerprint, public_key=key.public_key(),
        now=now,
    )  # fmt: skip

    assert verified.intermediates == (ca.issuing_certificate,)


def test_enrolment_journey_from_qr_to_installed_identity_with_a_lost_answer(
    identity: DeviceIdentity, ca: CertificateAuthority, now: datetime
) -> None:
    created = new_enrolment(
        tenant_id="tenant-1",
        store_id="store-7",
        control_plane_url="https://fleet.example.com",
        ca_fingerprint=ca.fingerprint,
        now=now,
    )
    scanned = parse_qr(encode_enrolment(created.payload))
    stored = {created.record.token_hash: created.record}

    # First attempt: accepted and persisted, but the answer never reaches the appliance.
    first = check_enrolment(
        stored.get(hash_token(scanned.token)), key_sha256=identity.key_sha256(), now=now
    )
    assert isinstance(first, Accepted)
    stored[first.record.token_hash] = first.record

    # After a reboot the appliance retries with the same key: an idempotent retry.
    rebooted = DeviceIdentity(identity.directory)
    retry = check_enrolment(
        stored.get(hash_token(scanned.token)),
        key_sha256=rebooted.key_sha256(),
        now=now + timedelta(minutes=2),
    )
    assert retry == Accepted(record=first.record, retry=True)
    chain = ca.issue_device_certificate(
        rebooted.certificate_request(), device_id="reg-0001", now=now
    ).chain_pem
    rebooted.install(chain, pinned_fingerprint=scanned.ca_fingerprint, now=now)

    # Someone photographs the sheet and tries the same code with their own key.
    thief = DeviceIdentity(identity.directory.parent / "thief")
    replay = check_enrolment(
        stored.get(hash_token(scanned.token)),
        key_sha256=thief.key_sha256(),
        now=now + timedelta(minutes=3),
    )
    assert isinstance(replay, TokenUsed)
    assert rebooted.state() is IdentityState.ENROLLED


def test_private_key_is_unencrypted_pkcs8_for_the_mqtt_client(identity: DeviceIdentity) -> None:
    identity.ensure_key()

    key = serialization.load_pem_private_key(identity.key_path.read_bytes(), password=None)

    assert key.public_key() == identity.ensure_key().public_key()
