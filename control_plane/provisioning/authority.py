"""The fleet CA as the control plane uses it: opened lazily, signing in a worker thread.

Opening the CA decrypts the issuing key (a deliberately slow KDF), so it happens once, on first
use, under a lock, not at import or in the app's lifespan: a control plane that never provisions
needs no CA. Every CA call runs in `asyncio.to_thread` because the CA is synchronous and its SQL
ledger hops back onto this loop (see `control_plane.provisioning.ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.provisioning import metrics
from control_plane.provisioning.attempts import CodeAttempts
from control_plane.provisioning.broker_access import device_broker_access
from control_plane.provisioning.errors import CaUnavailable
from control_plane.provisioning.ledger import PendingIssuance, SqlCertificateLedger
from control_plane.provisioning.sealing import Sealer
from control_plane.provisioning.settings import ProvisioningSettings
from provisioning.ca import (
    ROOT_CERT,
    CertificateAuthority,
    DeviceCertificates,
    IssuedCertificate,
    validate_csr,
)
from provisioning.ca_ledger import IssuedRecord
from provisioning.errors import CertificateAuthorityError
from provisioning.redemption import Claim

log = logging.getLogger(__name__)
T = TypeVar("T")


class FleetAuthority:
    """One per control-plane process: the CA, its SQL ledger, the sealer, the CRL file, the
    typed-code attempt counter, and the device broker's access list."""

    def __init__(self, *, settings: ProvisioningSettings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.sealer = Sealer(settings.passphrase_bytes)
        self.code_attempts = CodeAttempts(limit=settings.code_attempts)
        self.broker_access = device_broker_access(settings, ca=self.ca)  # who may use the broker
        self._ca: CertificateAuthority | None = None
        self._lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()

    async def ca(self) -> CertificateAuthority:
        """The opened CA (created first in demo mode); raise CaUnavailable saying what to fix."""
        if self._ca is not None:
            return self._ca
        async with self._lock:
            if self._ca is None:
                ledger = SqlCertificateLedger(self.engine, loop=asyncio.get_running_loop())
                try:
                    self._ca = await asyncio.to_thread(self._open, ledger)
                except CertificateAuthorityError as err:
                    raise CaUnavailable(str(err)) from err
                log.info(
                    "CA %s opened, fingerprint %s", self.settings.directory, self._ca.fingerprint
                )
            return self._ca

    def _open(self, ledger: SqlCertificateLedger) -> CertificateAuthority:
        directory = self.settings.directory
        passphrase = self.settings.passphrase_bytes
        if self.settings.demo and not (directory / ROOT_CERT).exists():
            log.warning("demo: creating a throw-away CA in %s", directory)
            return CertificateAuthority.create(directory, passphrase=passphrase, ledger=ledger)
        return CertificateAuthority.open(directory, passphrase=passphrase, ledger=ledger)

    async def _call(self, function: Callable[[CertificateAuthority], T]) -> T:
        ca = await self.ca()
        return await asyncio.to_thread(function, ca)

    async def sign_device(
        self, csr_pem: bytes, *, device_id: str, now: datetime
    ) -> tuple[IssuedCertificate, IssuedRecord]:
        """Sign a device certificate (CN = `device_id`); the caller stores the record.

        Signing runs on the loop: it is a fraction of a millisecond, less than a thread hop.
        """
        pending = PendingIssuance()
        issued = (
            (await self.ca())
            .with_ledger(pending)
            .issue_device_certificate(csr_pem, device_id=device_id, now=now)
        )
        return issued, pending.issued[0]

    async def sign_appliance(
        self, csr: x509.CertificateSigningRequest, *, device_id: str, now: datetime
    ) -> tuple[DeviceCertificates, list[IssuedRecord]]:
        """The appliance's two certificates (register `<id>`, agent `<id>.agent`) for the key
        of a checked request; the caller stores both records in its own transaction."""
        pending = PendingIssuance()
        issued = (
            (await self.ca())
            .with_ledger(pending)
            .issue_device_certificates(csr, device_id=device_id, now=now)
        )
        return issued, list(pending.issued)

    async def sign_renewal(
        self, csr_pem: bytes, *, device_id: str, now: datetime
    ) -> tuple[DeviceCertificates, list[IssuedRecord]]:
        """`sign_appliance` for a PEM request not checked yet (a renewal)."""
        return await self.sign_appliance(validate_csr(csr_pem), device_id=device_id, now=now)

    async def sign_claim(
        self, claim: Claim, *, now: datetime
    ) -> tuple[DeviceCertificates, list[IssuedRecord]]:
        """`sign_appliance` for an enrolment's claim, whose request `claim_enrolment` checked."""
        return await self.sign_appliance(claim.csr, device_id=claim.device_id, now=now)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Around write transactions: one at a time on SQLite (its single writer would make
        concurrent ones sleep in the busy handler), free on PostgreSQL."""
        if self.engine.dialect.name != "sqlite":
            yield
            return
        async with self._write_lock:
            yield

    async def revoke(
        self, serials: Iterable[int], *, reason: x509.ReasonFlags, now: datetime
    ) -> Path | None:
        """Revoke `serials`, then rewrite the broker's CRL file (if one is configured)."""
        chosen = list(serials)

        def revoke_all(ca: CertificateAuthority) -> Path | None:
            for serial in chosen:
                ca.revoke(serial, reason, now=now)
            return self._write_crl(ca, now=now)

        written = await self._call(revoke_all)
        metrics.CERTIFICATES_REVOKED.labels(reason.value).inc(len(chosen))
        return written

    def _write_crl(self, ca: CertificateAuthority, *, now: datetime) -> Path | None:
        if self.settings.crl_file is None:
            return None
        ca.write_crl(self.settings.crl_file, now=now)
        metrics.CRL_WRITES.inc()
        log.info(
            "CRL rewritten at %s; SIGHUP the broker so new connections are checked against it",
            self.settings.crl_file,
        )
        return self.settings.crl_file

    async def write_crl(self, *, now: datetime) -> Path | None:
        """Rewrite the broker's CRL (do it daily: OpenSSL refuses all once it is stale)."""
        return await self._call(lambda ca: self._write_crl(ca, now=now))

    async def crl_pem(self, *, now: datetime) -> bytes:
        """A freshly signed CRL of every revocation."""
        return await self._call(lambda ca: ca.crl_pem(now=now))

    async def root_pem(self) -> bytes:
        """The root certificate: what appliances pin by fingerprint."""
        return (await self.ca()).root_pem

    async def fingerprint(self) -> str:
        """sha256 of the root: what the enrolment QR carries."""
        return (await self.ca()).fingerprint
