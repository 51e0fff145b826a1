"""The control plane's own MQTT identity: a key and a `control-plane` certificate from the CA.

The broker's access list gives the user `control-plane` the whole fleet's topics and the
broker-admin role, so this certificate is issued only here, from the CA's own process, never
through enrolment (the CA refuses the name for devices). The key is made on this host and stays
in `directory` (0600). Issuing takes a lock file in `directory`, because two callers that both
found no certificate would otherwise each write a key and a certificate, and could leave one's
key beside the other's certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from provisioning.ca import CertificateAuthority, renewal_due
from provisioning.keys import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    build_csr,
    generate_private_key,
    private_key_pem,
    write_atomic,
)

KEY_FILE = "control-plane.key.pem"
CERT_FILE = "control-plane.crt.pem"
CA_FILE = "ca.crt.pem"
LOCK_FILE = ".issue.lock"
#: How long a loaded context is used before the files are checked for renewal again.
RECHECK_SECONDS = 3600.0


@contextlib.contextmanager
def _issuing_lock(directory: Path) -> Iterator[None]:
    """One issuer at a time per directory, across threads and processes (flock)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _issued_by(certificate: x509.Certificate, ca: CertificateAuthority) -> bool:
    """Whether `certificate` was signed by this CA (a CA replaced or recreated means reissue)."""
    try:
        certificate.verify_directly_issued_by(ca.issuing_certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ensure_control_plane_identity(
    ca: CertificateAuthority, directory: Path, *, now: datetime | None = None
) -> ssl.SSLContext:
    """A TLS context presenting the control plane's certificate (issued, renewed if due or if
    the CA changed)."""
    with _issuing_lock(directory):
        return _ensure(ca, directory, now=now)


def _ensure(ca: CertificateAuthority, directory: Path, *, now: datetime | None) -> ssl.SSLContext:
    moment = now or datetime.now(UTC)
    certificate_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    current = (
        x509.load_pem_x509_certificates(certificate_path.read_bytes())[0]
        if certificate_path.exists() and key_path.exists()
        else None
    )
    if current is None or renewal_due(current, now=moment) or not _issued_by(current, ca):
        key = generate_private_key()
        issued = ca.issue_control_plane_certificate(
            build_csr(key, common_name="control-plane"), now=moment
        )
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(key_path, private_key_pem(key, passphrase=None), mode=PRIVATE_FILE_MODE)
        write_atomic(certificate_path, issued.certificate_pem, mode=PUBLIC_FILE_MODE)
    write_atomic(directory / CA_FILE, ca.root_pem, mode=PUBLIC_FILE_MODE)
    context = ssl.create_default_context(cafile=directory / CA_FILE)
    context.load_cert_chain(certificate_path, key_path)
    return context


class ControlPlaneIdentity:
    """The control plane's TLS context from one directory, for a long-lived service to reuse.

    The CA is asked for lazily (opening it is the caller's business); the context is rebuilt
    once an hour, which renews the certificate when it is due.
    """

    def __init__(
        self, *, ca: Callable[[], Awaitable[CertificateAuthority]], directory: Path
    ) -> None:
        self.directory = directory
        self._ca = ca
        self._lock = asyncio.Lock()
        self._context: ssl.SSLContext | None = None
        self._loaded_at = 0.0

    async def tls_context(self) -> ssl.SSLContext:
        """The current context, issuing or renewing the certificate first when needed."""
        async with self._lock:
            stale = time.monotonic() - self._loaded_at > RECHECK_SECONDS
            if self._context is None or stale:
                ca = await self._ca()
                self._context = await asyncio.to_thread(
                    ensure_control_plane_identity, ca, self.directory
                )
                self._loaded_at = time.monotonic()
            return self._context
