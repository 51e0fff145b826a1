"""Enrolment tokens and the lifecycle rules: single use, expiry, revocation, replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from provisioning.enrolment import (
    DEFAULT_TTL,
    RETRY_WINDOW,
    Accepted,
    EnrolmentRecord,
    check_enrolment,
    hash_token,
    new_enrolment,
    new_token,
)
from provisioning.errors import (
    BadCsr,
    EnrolmentRefused,
    MalformedToken,
    TokenExpired,
    TokenRevoked,
    TokenUnknown,
    TokenUsed,
    WeakKey,
)
from provisioning.fallback_code import hash_fallback_code

KEY = "a" * 64
OTHER_KEY = "b" * 64
FINGERPRINT = "c" * 64


@pytest.fixture
def record(now: datetime) -> EnrolmentRecord:
    """A fresh, unused enrolment created at `now`."""
    return new_enrolment(
        tenant_id="tenant-1",
        store_id="store-7",
        control_plane_url="https://fleet.example.com",
        ca_fingerprint=FINGERPRINT,
        now=now,
    ).record


def test_tokens_carry_at_least_128_random_bits() -> None:
    tokens = {new_token() for _ in range(100)}

    assert len(tokens) == 100
    assert all(len(token.removeprefix("sfe_")) * 6 >= 128 for token in tokens)


def test_only_hashes_are_stored(now: datetime) -> None:
    created = new_enrolment(
        tenant_id="tenant-1",
        store_id="store-7",
        control_plane_url="https://fleet.example.com",
        ca_fingerprint=FINGERPRINT,
        now=now,
    )

    assert created.record.token_hash == hash_token(created.payload.token)
    assert created.record.fallback_code_hash == hash_fallback_code(created.fallback_code)
    assert created.payload.token not in repr(created.record)
    assert created.fallback_code not in repr(created.record)
    assert created.record.expires_at == now + DEFAULT_TTL


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("sfe_short", id="short"),
        pytest.param("xyz_" + "A" * 32, id="wrong-prefix"),
        pytest.param("sfe_" + "A" * 31 + "!", id="bad-character"),
        pytest.param("sfe_" + "A" * 33, id="too-long"),
    ],
)
def test_malformed_tokens_are_refused_before_lookup(token: str) -> None:
    with pytest.raises(MalformedToken, match="re-scan the QR code"):
        hash_token(token)


def test_first_redemption_is_accepted_and_marks_the_record_used(
    record: EnrolmentRecord, now: datetime
) -> None:
    later = now + timedelta(hours=1)

    decision = check_enrolment(record, key_sha256=KEY, now=later)

    assert decision == Accepted(record=replace(record, used_at=later, used_by_key=KEY), retry=False)


def test_unknown_token_is_refused(now: datetime) -> None:
    decision = check_enrolment(None, key_sha256=KEY, now=now)

    assert isinstance(decision, TokenUnknown)


def test_second_redemption_by_another_key_is_refused(
    record: EnrolmentRecord, now: datetime
) -> None:
    used = replace(record, used_at=now, used_by_key=KEY)

    decision = check_enrolment(used, key_sha256=OTHER_KEY, now=now + timedelta(minutes=1))

    assert isinstance(decision, TokenUsed)


def test_same_key_retrying_after_a_lost_answer_is_an_idempotent_retry(
    record: EnrolmentRecord, now: datetime
) -> None:
    used = replace(record, used_at=now, used_by_key=KEY)

    decision = check_enrolment(used, key_sha256=KEY, now=now + RETRY_WINDOW - timedelta(seconds=1))

    assert decision == Accepted(record=used, retry=True)


def test_same_key_retrying_after_the_window_is_a_replay(
    record: EnrolmentRecord, now: datetime
) -> None:
    used = replace(record, used_at=now, used_by_key=KEY)

    decision = check_enrolment(used, key_sha256=KEY, now=now + RETRY_WINDOW)

    assert isinstance(decision, TokenUsed)


@pytest.mark.parametrize(
    "after",
    [pytest.param(DEFAULT_TTL, id="at-expiry"), pytest.param(timedelta(days=3), id="later")],
)
def test_expired_enrolment_is_refused(
    record: EnrolmentRecord, now: datetime, after: timedelta
) -> None:
    decision = check_enrolment(record, key_sha256=KEY, now=now + after)

    assert isinstance(decision, TokenExpired)


def test_revoked_enrolment_is_refused(record: EnrolmentRecord, now: datetime) -> None:
    revoked = replace(record, revoked_at=now + timedelta(minutes=5))

    decision = check_enrolment(revoked, key_sha256=KEY, now=now + timedelta(minutes=6))

    assert isinstance(decision, TokenRevoked)


def test_revocation_beats_a_same_key_retry(record: EnrolmentRecord, now: datetime) -> None:
    revoked = replace(record, used_at=now, used_by_key=KEY, revoked_at=now)

    decision = check_enrolment(revoked, key_sha256=KEY, now=now + timedelta(minutes=1))

    assert isinstance(decision, TokenRevoked)


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        pytest.param(TokenUnknown, "token_unknown", id="unknown"),
        pytest.param(TokenUsed, "token_used", id="used"),
        pytest.param(TokenExpired, "token_expired", id="expired"),
        pytest.param(TokenRevoked, "token_revoked", id="revoked"),
        pytest.param(MalformedToken, "malformed_token", id="malformed"),
        pytest.param(WeakKey, "weak_key", id="weak-key"),
        pytest.param(BadCsr, "bad_csr", id="bad-csr"),
    ],
)
def test_every_refusal_has_a_stable_reason_and_says_what_to_do(
    refusal: type[EnrolmentRefused], reason: str
) -> None:
    err = refusal("detail")

    assert err.reason == reason
    assert str(err).startswith(f"enrolment refused ({reason}): detail; ")
    assert err.advice in str(err)


def test_naive_clock_is_refused(record: EnrolmentRecord, now: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_enrolment(record, key_sha256=KEY, now=now.replace(tzinfo=None))
