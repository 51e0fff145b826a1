"""Signed journal heads, sans I/O: what is signed, by which algorithm, and what is refused."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from protocols import journal_signing
from protocols.codec import decode
from protocols.journal_signing import HeadRefused, HeadSigner
from protocols.journal_wire import batch_bytes, record_json
from protocols.messages import JournalBatch
from protocols.topics import Channel, device_topic

DEVICE = "acme-01-0001"
HASH = "ab" * 32


def certificate(key: CertificateIssuerPrivateKeyTypes, name: str = DEVICE) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)
    )


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()],
    ids=["ES256", "EdDSA"],
)
def test_a_signed_head_verifies_only_for_its_own_device_seq_and_hash(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> None:
    signer = HeadSigner(device_id=DEVICE, private_key=key, chain=[certificate(key)])
    signature = signer.sign(seq=7, record_hash=HASH)
    public = key.public_key()

    journal_signing.verify(
        public_key=public, device_id=DEVICE, seq=7, record_hash=HASH, head_sig=signature
    )
    for change in ({"device_id": "acme-01-0002"}, {"seq": 8}, {"record_hash": "cd" * 32}):
        fields = {"device_id": DEVICE, "seq": 7, "record_hash": HASH} | change
        with pytest.raises(HeadRefused) as refused:
            journal_signing.verify(public_key=public, head_sig=signature, **fields)  # type: ignore[arg-type]
        assert refused.value.reason == "bad_signature"


def test_another_key_does_not_verify() -> None:
    mine, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    signature = HeadSigner(device_id=DEVICE, private_key=other, chain=[certificate(other)]).sign(
        seq=1, record_hash=HASH
    )

    with pytest.raises(HeadRefused, match="does not verify"):
        journal_signing.verify(
            public_key=mine.public_key(),
            device_id=DEVICE,
            seq=1,
            record_hash=HASH,
            head_sig=signature,
        )


def test_the_statement_is_domain_separated() -> None:
    statement = journal_signing.statement(device_id=DEVICE, seq=3, record_hash=HASH)

    assert statement == b"sf.journal.head.v1\n" + f"{DEVICE}\n3\n{HASH}".encode()


def test_the_certificate_chain_and_fingerprint_travel_with_the_batch() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(key)
    signer = HeadSigner(device_id=DEVICE, private_key=key, chain=[leaf, leaf])
    digest, wire = record_json(seq=1, kind="sale.completed", ts=1, prev_hash="0" * 64, body={})
    payload = batch_bytes(
        [wire],
        sent_at=0,
        head_sig=signer.sign(seq=1, record_hash=digest),
        cert_fp=signer.fingerprint,
        cert=signer.certificate_field,
    )

    batch = decode(device_topic(DEVICE, Channel.JOURNAL), payload).message

    assert isinstance(batch, JournalBatch)
    assert batch.cert_fp == signer.fingerprint
    assert batch.cert is not None
    assert journal_signing.chain_from_text(batch.cert) == [leaf, leaf]
    assert journal_signing.fingerprint_matches(leaf, signer.fingerprint)


def test_a_half_signed_batch_is_refused_by_the_contract() -> None:
    _, wire = record_json(seq=1, kind="sale.completed", ts=1, prev_hash="0" * 64, body={})
    half = batch_bytes([wire], sent_at=0)[:-1] + b',"head_sig":"AAAA"}'

    with pytest.raises(ValidationError, match="come together"):
        JournalBatch.model_validate_json(half)


def test_malformed_fields_are_refused_as_malformed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(HeadRefused) as bad_sig:
        journal_signing.verify(
            public_key=key.public_key(), device_id=DEVICE, seq=1, record_hash=HASH, head_sig="!!"
        )
    with pytest.raises(HeadRefused) as bad_cert:
        journal_signing.chain_from_text("bm90IGEgY2VydGlmaWNhdGU")

    assert (bad_sig.value.reason, bad_cert.value.reason) == ("malformed", "malformed")
