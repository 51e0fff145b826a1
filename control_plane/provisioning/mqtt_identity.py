"""The control plane's own MQTT identity: a key and a `control-plane` certificate from the CA.

The broker's ACL gives the user `control-plane` the whole fleet's topics, so this certificate is
issued only here, from the CA's own process, never through enrolment (the CA refuses the name
for devices). The key is made on this host and stays in `directory` (0600).
"""

from __future__ import annotations

import ssl
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
