"""The CA's ledger in the fleet's SQL store, so every control-plane instance sees one history.

How it works: `provisioning.ca.CertificateAuthority` is synchronous and calls its ledger in the
middle of signing (serial check, record, revocations, CRL number). The control plane's store is
async. So the CA runs in a worker thread (`asyncio.to_thread`, which also keeps signing off the
event loop), and each ledger call hops back onto the loop that owns the engine with
`run_coroutine_threadsafe`. Calling it from the loop's own thread would deadlock; it refuses.

The serial is the primary key, so two instances can never record the same serial, and the CRL
number is one counter row bumped inside a transaction, so it only grows across instances.

Issuing on the enrolment path does not go through this bridge: `PendingIssuance` takes the
record in memory, and the service inserts it (`issued_values`) in the same transaction that
claims the enrolment. One round trip fewer per hop, no worker thread parked on the loop, and
the claim and the record of its certificate become durable together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography import x509
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.provisioning.tables import certificate_authority_counters, issued_certificates
from provisioning.ca import device_of_common_name
from provisioning.ca_ledger import IssuedRecord, RevokedRecord

T = TypeVar("T")
CRL_NUMBER = "crl_number"


def to_ms(moment: datetime) -> int:
    """Aware datetime -> integer milliseconds since the epoch, as the store keeps times."""
    return int(moment.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """Milliseconds since the epoch -> aware UTC datetime."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def serial_key(serial: int) -> str:
    """How a serial is stored: lower-case hex, as `inspect-cert` shows it."""
    return format(serial, "x")


def issued_values(record: IssuedRecord) -> dict[str, object]:
    """The `issued_certificates` row for `record`.

    A device's agent certificate (CN `<id>.agent`) is the device's too: `device_id` is what
    decommissioning revokes by and what lists a device's certificates, so both carry it.
    """
    return {
        "serial": serial_key(record.serial),
        "kind": record.kind,
        "common_name": record.common_name,
        "device_id": device_of_common_name(record.common_name, record.kind),
        "not_before": to_ms(record.not_before),
        "not_after": to_ms(record.not_after),
        "public_key_sha256": record.public_key_sha256,
    }


class PendingIssuance:
    """A ledger for one signing whose record the caller stores in its own transaction.

    `get_issued` answers None: with 159 random bits a serial never repeats, and if it ever did
    the primary key refuses the insert, so the certificate is never handed out.
    """

    def __init__(self) -> None:
        self.issued: list[IssuedRecord] = []

    def record_issued(self, record: IssuedRecord) -> None:
        """Keep the record for the caller's transaction."""
        self.issued.append(record)

    def get_issued(self, serial: int) -> IssuedRecord | None:
        """None: uniqueness is the primary key's job at insert time."""
        return None

    def record_revoked(self, record: RevokedRecord) -> None:
        """Not for revocations: those go through SqlCertificateLedger."""
        msg = f"PendingIssuance does not revoke (serial {record.serial:x})"
        raise NotImplementedError(msg)

    def revoked(self) -> list[RevokedRecord]:
        """Not for CRLs."""
        raise NotImplementedError

    def next_crl_number(self) -> int:
        """Not for CRLs."""
        raise NotImplementedError


class SqlCertificateLedger:
    """`provisioning.ca_ledger.CertificateLedger` on the control plane's async engine."""

    def __init__(self, engine: AsyncEngine, *, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if _running_loop() is self.loop:
            coroutine.close()
            msg = "the SQL certificate ledger must be called from a worker thread (to_thread)"
            raise RuntimeError(msg)
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def record_issued(self, record: IssuedRecord) -> None:
        """Insert the certificate; a duplicate serial raises (IntegrityError), as required."""
        self._run(self._record_issued(record))

    async def _record_issued(self, record: IssuedRecord) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(issued_certificates).values(**issued_values(record)))

    def get_issued(self, serial: int) -> IssuedRecord | None:
        """The issued record for `serial`, or None."""
        return self._run(self._get_issued(serial))

    async def _get_issued(self, serial: int) -> IssuedRecord | None:
        query = select(issued_certificates).where(
            issued_certificates.c.serial == serial_key(serial)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return IssuedRecord(
            serial=int(row["serial"], 16),
            common_name=row["common_name"],
            kind=row["kind"],
            not_before=from_ms(row["not_before"]),
            not_after=from_ms(row["not_after"]),
            public_key_sha256=row["public_key_sha256"],
        )

    def record_revoked(self, record: RevokedRecord) -> None:
        """Mark the serial revoked unless it already is (the first revocation wins)."""
        self._run(self._record_revoked(record))

    async def _record_revoked(self, record: RevokedRecord) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(issued_certificates)
                .where(
                    issued_certificates.c.serial == serial_key(record.serial),
                    issued_certificates.c.revoked_at.is_(None),
                )
                .values(revoked_at=to_ms(record.revoked_at), reason=record.reason.value)
            )

    def revoked(self) -> list[RevokedRecord]:
        """Every revocation, in serial order, for the CRL."""
        return self._run(self._revoked())

    async def _revoked(self) -> list[RevokedRecord]:
        query = (
            select(
                issued_certificates.c.serial,
                issued_certificates.c.revoked_at,
                issued_certificates.c.reason,
            )
            .where(issued_certificates.c.revoked_at.is_not(None))
            .order_by(issued_certificates.c.serial)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            RevokedRecord(
                serial=int(row.serial, 16),
                revoked_at=from_ms(row.revoked_at),
                reason=x509.ReasonFlags(row.reason),
            )
            for row in rows
        ]

    def next_crl_number(self) -> int:
        """Bump and return the CRL number (row lock on PostgreSQL, file lock on SQLite)."""
        return self._run(self._next_crl_number())

    async def _next_crl_number(self) -> int:
        counter = certificate_authority_counters
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(counter)
                .where(counter.c.name == CRL_NUMBER)
                .values(value=counter.c.value + 1)
            )
            if not result.rowcount:  # the migration inserts the row; a restored dump may lack it
                await conn.execute(insert(counter).values(name=CRL_NUMBER, value=1))
            return int(
                (
                    await conn.execute(select(counter.c.value).where(counter.c.name == CRL_NUMBER))
                ).scalar_one()
            )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
