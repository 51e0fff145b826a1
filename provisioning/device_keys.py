"""The appliance's side of enrolment: its own key, its CSR, and a pinned check of what comes back.

How it works
- `DeviceIdentity(directory)` owns three files: `device.key.pem` (EC P-256, mode 0600, never
  leaves the appliance), `ca.crt.pem` (the pinned root, to verify the broker and the control
  plane) and `device.crt.pem` (leaf + issuing CA, presented to the broker).
- First boot: `certificate_request()` makes the key if there is none and returns a CSR for it.
  Every file is written atomically, so a power cut leaves a whole key or none. If the appliance
  dies after the key is written and before the certificate arrives, the next boot finds the same
  key (`state()` is `KEY_ONLY`) and sends a CSR for it again: the control plane recognises the
  same key and answers with the same identity instead of refusing a reused token.
- `install_agent(chain_pem, …)` stores the fleet agent's certificate (`agent.crt.pem`: CN
  `<device id>.agent`, the same key) after the same checks, and that it names this device's
  agent: the agent's broker session presents it, so the register's session (CN = device id)
  and the agent's each have a client id of their own. Install it before the device
  certificate: an appliance that has `device.crt.pem` but no `agent.crt.pem` (enrolled before
  there were two) asks for both at its next renewal.
- `install(chain_pem, pinned_fingerprint=…)` trusts nothing it was sent until the chain leads,
  signature by signature, to a root whose sha256 equals the fingerprint from the QR code, and
  the leaf carries this appliance's public key. Only then are the files written, the certificate
  last, because its presence is what `state()` reads as `ENROLLED`.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocols.topics import AGENT_SUFFIX
from provisioning.errors import CaFingerprintMismatch, DeviceIdentityError
from provisioning.keys import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    build_csr,
    certificate_fingerprint,
    create_exclusive,
    generate_private_key,
    private_key_pem,
    public_key_fingerprint,
    write_atomic,
)

KEY_FILE = "device.key.pem"
CERT_FILE = "device.crt.pem"
AGENT_CERT_FILE = "agent.crt.pem"
CA_FILE = "ca.crt.pem"
CSR_COMMON_NAME = "storefleet-appliance"  # a hint only: the CA writes the real subject


class IdentityState(enum.Enum):
    """Where an appliance is in enrolment, read from which files exist."""

    NEW = "new"  # nothing yet: scan an enrolment code
    KEY_ONLY = "key_only"  # key made, certificate not received: retry with the same key
    ENROLLED = "enrolled"  # key and certificate: connect to the broker


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A chain checked against the pin: the leaf for this key, its issuers and the pinned root."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def device_id(self) -> str:
        """The device id the control plane assigned (the leaf's CN)."""
        return common_name(self.leaf)


def common_name(certificate: x509.Certificate) -> str:
    """The subject CN of `certificate` (the device id for device certificates)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        msg = "the certificate has no common name"
        raise DeviceIdentityError(msg)
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def verify_chain(
    chain_pem: bytes,
    *,
    pinned_fingerprint: str,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime | None = None,
) -> VerifiedChain:
    """Check a leaf-first PEM chain against the pinned root fingerprint and this device's key.

    Raises CaFingerprintMismatch when no certificate in the chain is the pinned root, and
    DeviceIdentityError for any other reason not to trust or use it.
    """
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as err:
        msg = "the control plane's answer holds no readable certificate chain; retry enrolment"
        raise DeviceIdentityError(msg) from err
    pinned = pinned_fingerprint.lower().replace(":", "")
    root_index = next(
        (i for i, c in enumerate(certificates) if certificate_fingerprint(c) == pinned), None
    )
    if root_index is None:
        raise CaFingerprintMismatch(
            expected=pinned, actual=certificate_fingerprint(certificates[-1])
        )
    if root_index == 0:
        msg = "the chain holds only the CA certificate, no certificate for this appliance"
        raise DeviceIdentityError(msg)
    path = certificates[: root_index + 1]
    for child, issuer in itertools.pairwise(path):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as err:
            msg = (
                f"the chain is broken between {child.subject.rfc4514_string()} and "
                f"{issuer.subject.rfc4514_string()}; it does not lead to the pinned CA"
            )
            raise DeviceIdentityError(msg) from err
    leaf = path[0]
    if public_key_fingerprint(leaf.public_key()) != public_key_fingerprint(public_key):
        msg = (
            "the certificate is for a different key than this appliance's; the enrolment "
            "answer belongs to another device, retry enrolment"
        )
        raise DeviceIdentityError(msg)
    moment = now if now is not None else datetime.now(UTC)
    if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
        msg = (
            f"the certificate is valid from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC but the appliance's clock says "
            f"{moment:%Y-%m-%d %H:%M}; check the clock (NTP) and retry"
        )
        raise DeviceIdentityError(msg)
    return VerifiedChain(leaf=leaf, intermediates=tuple(path[1:root_index]), root=path[root_index])


class DeviceIdentity:
    """The appliance's key and certificate files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def key_path(self) -> Path:
        """The private key (0600); pass as `keyfile` to the MQTT client."""
        return self.directory / KEY_FILE

    @property
    def certificate_path(self) -> Path:
        """Leaf + issuing CA; pass as `certfile` to the MQTT client."""
        return self.directory / CERT_FILE

    @property
    def agent_certificate_path(self) -> Path:
        """The agent's leaf + issuing CA (same key); `certfile` of the agent's MQTT session."""
        return self.directory / AGENT_CERT_FILE

    @property
    def ca_path(self) -> Path:
        """The pinned root; pass as `ca_certs` to the MQTT client."""
        return self.directory / CA_FILE

    def state(self) -> IdentityState:
        """Which enrolment step comes next, from which files exist."""
        if self.certificate_path.exists() and self.key_path.exists():
            return IdentityState.ENROLLED
        if self.key_path.exists():
            return IdentityState.KEY_ONLY
        return IdentityState.NEW

    def ensure_key(self) -> ec.EllipticCurvePrivateKey:
        """The appliance's key: the existing one if any (resumed enrolment), else a new one."""
        if self.key_path.exists():
            return self._load_key()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        key = generate_private_key()
        pem = private_key_pem(key, passphrase=None)
        if not create_exclusive(self.key_path, pem, mode=PRIVATE_FILE_MODE):
            return self._load_key()  # another process made the key first: use that one
        return key

    def _load_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as err:
            msg = (
                f"{self.key_path} is not a readable private key; remove the directory "
                f"{self.directory} and enrol the appliance again with a new code"
            )
            raise DeviceIdentityError(msg, path=str(self.key_path)) from err
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            msg = f"{self.key_path} is not an EC key; remove it and enrol again"
            raise DeviceIdentityError(msg, path=str(self.key_path))
        if self.key_path.stat().st_mode & 0o077:
            self.key_path.chmod(PRIVATE_FILE_MODE)  # someone widened it; a key stays private
        return key

    def certificate_request(self) -> bytes:
        """A PEM CSR for this appliance's key (made now if missing); safe to call on every retry."""
        return build_csr(self.ensure_key(), common_name=CSR_COMMON_NAME)

    def key_sha256(self) -> str:
        """sha256 of this appliance's public key, as the control plane records on redemption."""
        return public_key_fingerprint(self.ensure_key().public_key())

    def install(
        self, chain_pem: bytes, *, pinned_fingerprint: str, now: datetime | None = None
    ) -> VerifiedChain:
        """Verify the enrolment answer against the pin and this key, then store it."""
        if not self.key_path.exists():
            msg = "no key on this appliance to install a certificate for; restart enrolment"
            raise DeviceIdentityError(msg, path=str(self.key_path))
        verified = verify_chain(
            chain_pem,
            pinned_fingerprint=pinned_fingerprint,
            public_key=self._load_key().public_key(),
            now=now,
        )
        pem = serialization.Encoding.PEM
        write_atomic(self.ca_path, verified.root.public_bytes(pem), mode=PUBLIC_FILE_MODE)
        presented = b"".join(c.public_bytes(pem) for c in (verified.leaf, *verified.intermediates))
        write_atomic(self.certificate_path, presented, mode=PUBLIC_FILE_MODE)
        return verified

    def install_agent(
        self,
        chain_pem: bytes,
        *,
        device_id: str,
        pinned_fingerprint: str,
        now: datetime | None = None,
    ) -> VerifiedChain:
        """Verify the agent's certificate (pin, this key, CN `<device_id>.agent`), store it."""
        if not self.key_path.exists():
            msg = "no key on this appliance to install an agent certificate for; enrol again"
            raise DeviceIdentityError(msg, path=str(self.key_path))
        verified = verify_chain(
            chain_pem,
            pinned_fingerprint=pinned_fingerprint,
            public_key=self._load_key().public_key(),
            now=now,
        )
        expected = f"{device_id}{AGENT_SUFFIX}"
        if verified.device_id != expected:
            msg = (
                f"the agent certificate names {verified.device_id!r}, not {expected!r}; the "
                "answer is not for this appliance's agent, retry"
            )
            raise DeviceIdentityError(msg, path=str(self.agent_certificate_path))
        pem = serialization.Encoding.PEM
        presented = b"".join(c.public_bytes(pem) for c in (verified.leaf, *verified.intermediates))
        write_atomic(self.agent_certificate_path, presented, mode=PUBLIC_FILE_MODE)
        return verified

    def certificate(self) -> x509.Certificate:
        """The installed leaf certificate; raise DeviceIdentityError before enrolment."""
        try:
            return x509.load_pem_x509_certificates(self.certificate_path.read_bytes())[0]
        except FileNotFoundError as err:
            msg = "this appliance is not enrolled yet; scan an enrolment code"
            raise DeviceIdentityError(msg, path=str(self.certificate_path)) from err

    def device_id(self) -> str:
        """The device id from the installed certificate."""
        return common_name(self.certificate())
