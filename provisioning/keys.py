"""Key pairs, certificate requests and crash-safe files, shared by the CA and the appliance.

Every party (appliance, control plane, broker) makes its own key and sends only a CSR, so a
private key never crosses the network. Files that hold keys are written atomically (temp file,
fsync, rename, fsync of the directory) so a power cut leaves either the old file or the new one,
never half a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 key: small, fast on appliance CPUs, accepted by every broker we target."""
    return ec.generate_private_key(ec.SECP256R1())


def build_csr(private_key: ec.EllipticCurvePrivateKey, *, common_name: str) -> bytes:
    """A PEM CSR for `private_key`; the CA replaces the subject, so the CN is only a hint."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(private_key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def private_key_pem(private_key: ec.EllipticCurvePrivateKey, *, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM; encrypted with the best available scheme when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_fingerprint(public_key: CertificatePublicKeyTypes) -> str:
    """sha256 hex of the SubjectPublicKeyInfo DER: identifies a key across CSR and certificate."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    """sha256 hex (lower case, no colons) of the certificate's DER, as pinned in enrolment QRs."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def _write_temporary(path: Path, data: bytes, *, mode: int) -> Path:
    """A fully written, fsynced sibling of `path`, created with `mode` from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; make it exact
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_exclusive(path: Path, data: bytes, *, mode: int) -> bool:
    """Atomically create `path` with `data` unless it exists; False if someone else was first.

    `os.link` of a complete temporary file either makes the whole file appear or fails, so two
    processes racing at first boot end up agreeing on one key instead of each keeping its own.
    """
    tmp = _write_temporary(path, data, mode=mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    _fsync_directory(path.parent)
    return True


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` so a crash leaves the old content or the new, never a mix.

    The temporary file is created with `mode` from the start (O_EXCL), so a private key is never
    readable by others, not even for the instant between create and chmod.
    """
    tmp = _write_temporary(path, data, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)
