"""The CA's SQL ledger on both stores: the four promises `CertificateLedger` asks for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.provisioning.ledger import SqlCertificateLedger
from provisioning.ca_ledger import IssuedRecord, RevokedRecord

pytestmark = pytest.mark.services
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = make_engine(database_url)
    await migrate(made)
    yield made
    await made.dispose()


def _issued(serial: int) -> IssuedRecord:
    return IssuedRecord(
        serial=serial,
        common_name="acme-01-0001",
        kind="device",
        not_before=NOW,
        not_after=NOW + timedelta(days=90),
        public_key_sha256="ab" * 32,
    )


async def test_issued_records_round_trip_and_a_duplicate_serial_is_refused(
    engine: AsyncEngine,
) -> None:
    ledger = SqlCertificateLedger(engine, loop=asyncio.get_running_loop())
    big = 2**158 + 12345  # serials are up to 159 bits: more than any SQL integer holds
    await asyncio.to_thread(ledger.record_issued, _issued(big))

    assert await asyncio.to_thread(ledger.get_issued, big) == _issued(big)
    assert await asyncio.to_thread(ledger.get_issued, big + 1) is None
    with pytest.raises(IntegrityError):
        await asyncio.to_thread(ledger.record_issued, _issued(big))


async def test_the_first_revocation_wins_and_crl_numbers_only_grow(engine: AsyncEngine) -> None:
    ledger = SqlCertificateLedger(engine, loop=asyncio.get_running_loop())
    await asyncio.to_thread(ledger.record_issued, _issued(7))
    first = RevokedRecord(serial=7, revoked_at=NOW, reason=x509.ReasonFlags.key_compromise)
    later = RevokedRecord(serial=7, revoked_at=NOW + timedelta(hours=1), reason=first.reason)

    await asyncio.to_thread(ledger.record_revoked, first)
    await asyncio.to_thread(ledger.record_revoked, later)
    numbers = [await asyncio.to_thread(ledger.next_crl_number) for _ in range(3)]

    assert await asyncio.to_thread(ledger.revoked) == [first]
    assert numbers == [1, 2, 3]


async def test_calling_it_on_the_event_loop_is_refused_instead_of_deadlocking(
    engine: AsyncEngine,
) -> None:
    ledger = SqlCertificateLedger(engine, loop=asyncio.get_running_loop())

    with pytest.raises(RuntimeError, match="worker thread"):
        ledger.get_issued(1)
