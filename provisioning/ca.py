"""The fleet's certificate authority: a root, an issuing CA, device and service certificates, CRL.

How it works
- `CertificateAuthority.create` makes a root (EC P-384, 20 years) and an issuing CA (EC P-256,
  10 years, path length 0) signed by it, and writes both keys encrypted with the passphrase from
  the control plane's settings. The root key is only needed again to replace the issuing CA; it can
  be moved offline after `create`.
- Certificates are issued from a CSR. The CSR proves possession of the key and nothing else: the
  CA validates its signature and key, then throws its subject away and writes the subject itself
  (CN = the device id the control plane assigned, SAN URI `urn:storefleet:device:<id>`). Mosquitto
  uses that CN as the user name (`use_identity_as_username`), and its ACL binds the user to
  `sf/v1/d/<id>/#`, so the CN is the device's authority on the broker: it must never come from
  the device.
- Each appliance holds TWO device certificates for its one key, issued and renewed together:
  CN `<id>` for the register's MQTT session (journal, acks, telemetry) and CN `<id>.agent`
  (`agent_common_name`) for the fleet agent's (status, state, events, commands, config,
  releases). With the broker's client id bound to the CN (`use_username_as_clientid`), one
  certificate holds one session, so each session needs its own; and each CN gets exactly its
  own channels (`provisioning.dynamic_security`). The CSR proves the key once for both.
- Device certificates live 90 days; the control plane renews them before expiry. Every serial is
  recorded in a `CertificateLedger`, revocations too, and `crl_pem` renders the CRL (signed by the
  issuing CA) for Mosquitto's `crlfile`. After a revocation write the CRL and SIGHUP the broker:
  Mosquitto 2.0 then checks new connections against it, but a revoked client that is already
  connected keeps its session until it reconnects, so restart the broker to cut it off at once.
- `fingerprint` (sha256 of the root's DER) is what the enrolment QR carries so the appliance can
  pin the CA before it trusts anything the network says.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protocols import topics
from provisioning.ca_ledger import (
    CertificateLedger,
    FileCertificateLedger,
    IssuedRecord,
    RevokedRecord,
)
from provisioning.errors import (
    BadCsr,
    CaPassphraseError,
    CertificateAuthorityError,
    InvalidDeviceId,
    UnknownSerial,
    WeakKey,
)
from provisioning.keys import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    certificate_fingerprint,
    private_key_pem,
    public_key_fingerprint,
    write_atomic,
)

DEVICE_VALIDITY = timedelta(days=90)
CONTROL_PLANE_VALIDITY = timedelta(days=90)
BROKER_VALIDITY = timedelta(days=365)
CRL_VALIDITY = timedelta(days=7)
ROOT_VALIDITY = timedelta(days=365 * 20)
ISSUING_VALIDITY = timedelta(days=365 * 10)
RENEWAL_MARGIN = timedelta(days=30)  # a third of the device validity: weeks offline still fine
CLOCK_SKEW = timedelta(minutes=5)  # appliances boot with a slightly wrong clock
MIN_RSA_BITS = 2048
MIN_PASSPHRASE_BYTES = 16
ACCEPTED_CURVES = (ec.SECP256R1, ec.SECP384R1)

CONTROL_PLANE_COMMON_NAME = "control-plane"
#: The CN suffix of a device's agent certificate, `<device id>.agent` (protocols.topics).
AGENT_SUFFIX = topics.AGENT_SUFFIX
DEVICE_KIND = "device"
AGENT_KIND = "agent"
BROKER_COMMON_NAME = "broker"
# Names that carry authority in the broker ACL; a device must never be issued one of them.
RESERVED_COMMON_NAMES = frozenset({CONTROL_PLANE_COMMON_NAME, BROKER_COMMON_NAME})
# One MQTT topic level and one CN: no '/', '+', '#', spaces or NUL can get through.
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

ROOT_CERT = "root.crt.pem"
ROOT_KEY = "root.key.pem"
ISSUING_CERT = "issuing.crt.pem"
ISSUING_KEY = "issuing.key.pem"
LEDGER = "ledger.json"


def device_uri(device_id: str) -> str:
    """The SAN URI that names a device independent of the CN's length and charset limits."""
    return f"urn:storefleet:device:{device_id}"


def agent_common_name(device_id: str) -> str:
    """The CN of the device's agent certificate (its broker user name and client id)."""
    return f"{validate_device_id(device_id)}{AGENT_SUFFIX}"


def agent_uri(device_id: str) -> str:
    """The SAN URI of the device's agent certificate."""
    return f"urn:storefleet:agent:{device_id}"


def device_of_common_name(common_name: str, kind: str) -> str | None:
    """The device a certificate of `kind` with `common_name` belongs to (None: a service's)."""
    if kind == DEVICE_KIND:
        return common_name
    if kind == AGENT_KIND:
        return common_name.removesuffix(AGENT_SUFFIX)
    return None


def validate_device_id(device_id: str) -> str:
    """Return `device_id` if it is safe as CN and as the `%u` level of an MQTT ACL pattern."""
    if device_id in RESERVED_COMMON_NAMES:
        raise InvalidDeviceId(device_id, "the name is reserved for a fleet service")
    if device_id.endswith(AGENT_SUFFIX):  # else `x` and device `x.agent` would share a CN
        raise InvalidDeviceId(device_id, f"the suffix {AGENT_SUFFIX!r} names agent certificates")
    if not _DEVICE_ID.fullmatch(device_id):
        raise InvalidDeviceId(
            device_id, "use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return device_id


def validate_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its self-signature and key; raise BadCsr or WeakKey."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as err:
        raise BadCsr("not a PEM certificate request") from err
    try:
        public_key = csr.public_key()
        signature_ok = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as err:
        raise BadCsr(f"the request cannot be checked: {err}") from err
    if not signature_ok:
        raise BadCsr("the request's signature does not match its content (tampered or corrupt)")
    check_public_key(public_key)
    return csr


def check_public_key(public_key: CertificatePublicKeyTypes) -> None:
    """Accept EC P-256/P-384 and RSA >= 2048 bits; raise WeakKey for anything else."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ACCEPTED_CURVES):
            raise WeakKey(f"EC curve {public_key.curve.name} is not accepted")
        return
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise WeakKey(f"RSA key of {public_key.key_size} bits is too short")
        return
    raise WeakKey(f"key type {type(public_key).__name__} is not accepted")


def renewal_due(
    certificate: x509.Certificate, *, now: datetime, margin: timedelta = RENEWAL_MARGIN
) -> bool:
    """Whether `certificate` expires within `margin` of `now` and should be renewed."""
    return now >= certificate.not_valid_after_utc - margin


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A freshly signed certificate and the chain the holder needs to present and to pin."""

    certificate: x509.Certificate
    issuing_certificate: x509.Certificate
    root_certificate: x509.Certificate

    @property
    def serial(self) -> int:
        """The serial number, as recorded in the ledger and needed to revoke."""
        return self.certificate.serial_number

    @property
    def not_after(self) -> datetime:
        """When the certificate expires (UTC); renew before this."""
        return self.certificate.not_valid_after_utc

    @property
    def certificate_pem(self) -> bytes:
        """The leaf certificate alone."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        """Leaf, issuing CA, root: the answer to an enrolment, checked by the appliance's pin."""
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in (self.certificate, self.issuing_certificate, self.root_certificate)
        )


@dataclass(frozen=True, slots=True)
class DeviceCertificates:
    """The appliance's two certificates for its one key: the register's and the agent's."""

    device: IssuedCertificate
    agent: IssuedCertificate


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attributes)


def _load_key(path: Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except FileNotFoundError as err:
        msg = f"{path} is missing; run `storefleet provision init-ca` to create the CA"
        raise CertificateAuthorityError(msg, directory=str(path.parent)) from err
    except (ValueError, TypeError) as err:
        msg = (
            f"cannot decrypt {path.name}: the CA passphrase is wrong; set the passphrase the CA "
            "was created with"
        )
        raise CaPassphraseError(msg, directory=str(path.parent)) from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        msg = f"{path} does not hold an EC private key"
        raise CertificateAuthorityError(msg, directory=str(path.parent))
    return key


def _ca_certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    path_length: int | None,
    now: datetime,
    validity: timedelta,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
        .sign(signing_key, hashes.SHA384() if path_length is None else hashes.SHA256())
    )


class CertificateAuthority:
    """A root and an issuing CA on disk, plus the ledger of what they signed."""

    def __init__(
        self,
        *,
        directory: Path,
        root_certificate: x509.Certificate,
        issuing_certificate: x509.Certificate,
        issuing_key: ec.EllipticCurvePrivateKey,
        ledger: CertificateLedger,
    ) -> None:
        self.directory = directory
        self.root_certificate = root_certificate
        self.issuing_certificate = issuing_certificate
        self._issuing_key = issuing_key
        self.ledger = ledger

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        passphrase: bytes,
        organisation: str = "storefleet",
        now: datetime | None = None,
        ledger: CertificateLedger | None = None,
    ) -> CertificateAuthority:
        """Make a new root and issuing CA in `directory` (which must not hold a CA yet)."""
        if len(passphrase) < MIN_PASSPHRASE_BYTES:
            msg = (
                f"the CA passphrase must be at least {MIN_PASSPHRASE_BYTES} bytes; set a long "
                "random one in the control plane's settings"
            )
            raise CertificateAuthorityError(msg, directory=str(directory))
        if (directory / ROOT_CERT).exists():
            msg = f"{directory} already holds a CA; open it instead of creating a new one"
            raise CertificateAuthorityError(msg, directory=str(directory))
        moment = _now(now)
        root_key = ec.generate_private_key(ec.SECP384R1())
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(f"{organisation} root CA", organisation)
        root = _ca_certificate(
            subject=root_name,
            issuer=root_name,
            public_key=root_key.public_key(),
            signing_key=root_key,
            path_length=None,
            now=moment,
            validity=ROOT_VALIDITY,
        )
        issuing = _ca_certificate(
            subject=_name(f"{organisation} issuing CA", organisation),
            issuer=root_name,
            public_key=issuing_key.public_key(),
            signing_key=root_key,
            path_length=0,
            now=moment,
            validity=ISSUING_VALIDITY,
        )
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        pem = serialization.Encoding.PEM
        for path, key in ((directory / ROOT_KEY, root_key), (directory / ISSUING_KEY, issuing_key)):
            write_atomic(path, private_key_pem(key, passphrase=passphrase), mode=PRIVATE_FILE_MODE)
        write_atomic(directory / ISSUING_CERT, issuing.public_bytes(pem), mode=PUBLIC_FILE_MODE)
        # The root certificate is written last: its presence is what marks the CA as complete.
        write_atomic(directory / ROOT_CERT, root.public_bytes(pem), mode=PUBLIC_FILE_MODE)
        return cls(
            directory=directory,
            root_certificate=root,
            issuing_certificate=issuing,
            issuing_key=issuing_key,
            ledger=ledger if ledger is not None else FileCertificateLedger(directory / LEDGER),
        )

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        passphrase: bytes,
        ledger: CertificateLedger | None = None,
    ) -> CertificateAuthority:
        """Load a CA made by `create`; raise CaPassphraseError if the passphrase is wrong."""
        try:
            root = x509.load_pem_x509_certificate((directory / ROOT_CERT).read_bytes())
            issuing = x509.load_pem_x509_certificate((directory / ISSUING_CERT).read_bytes())
        except FileNotFoundError as err:
            msg = f"{directory} holds no CA; run `storefleet provision init-ca {directory}`"
            raise CertificateAuthorityError(msg, directory=str(directory)) from err
        return cls(
            directory=directory,
            root_certificate=root,
            issuing_certificate=issuing,
            issuing_key=_load_key(directory / ISSUING_KEY, passphrase),
            ledger=ledger if ledger is not None else FileCertificateLedger(directory / LEDGER),
        )

    def with_ledger(self, ledger: CertificateLedger) -> CertificateAuthority:
        """The same CA (certificates and key) recording into `ledger` instead.

        For a caller that stores the issued record itself, in the same transaction as the
        decision to issue (the control plane's enrolment), so the record and the decision are
        durable together or not at all.
        """
        return CertificateAuthority(
            directory=self.directory,
            root_certificate=self.root_certificate,
            issuing_certificate=self.issuing_certificate,
            issuing_key=self._issuing_key,
            ledger=ledger,
        )

    @property
    def fingerprint(self) -> str:
        """sha256 hex of the root certificate's DER: the value appliances pin."""
        return certificate_fingerprint(self.root_certificate)

    @property
    def root_pem(self) -> bytes:
        """The root certificate alone: the trust anchor for TLS clients (broker, HTTPS)."""
        return self.root_certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def trust_bundle_pem(self) -> bytes:
        """Root and issuing CA, for Mosquitto's `cafile` (devices present only their leaf)."""
        return self.root_pem + self.issuing_certificate.public_bytes(serialization.Encoding.PEM)

    def issue_device_certificate(
        self,
        csr_pem: bytes,
        *,
        device_id: str,
        now: datetime | None = None,
        validity: timedelta = DEVICE_VALIDITY,
    ) -> IssuedCertificate:
        """Sign a device certificate for the key in `csr_pem`, with CN = `device_id`.

        The CSR's own subject is ignored on purpose: the device id comes from the control plane's
        registry, and the broker grants topics by it.
        """
        return self.issue_validated_device_certificate(
            validate_csr(csr_pem), device_id=device_id, now=now, validity=validity
        )

    def issue_validated_device_certificate(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        device_id: str,
        now: datetime | None = None,
        validity: timedelta = DEVICE_VALIDITY,
    ) -> IssuedCertificate:
        """`issue_device_certificate` for a request `validate_csr` returned.

        The enrolment validates the CSR to decide (its key is how a retry is recognised), then
        signs it: checking the request's signature again would repeat the costliest part of
        the check on every enrolment. Pass only what `validate_csr` gave back.
        """
        validate_device_id(device_id)
        return self._issue(
            public_key=csr.public_key(),
            common_name=device_id,
            kind=DEVICE_KIND,
            san=[x509.UniformResourceIdentifier(device_uri(device_id))],
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            now=_now(now),
            validity=validity,
        )

    def issue_device_certificates(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        device_id: str,
        now: datetime | None = None,
        validity: timedelta = DEVICE_VALIDITY,
    ) -> DeviceCertificates:
        """The register's (CN `device_id`) and the agent's (CN `<device_id>.agent`) certificate
        for the one key of a request `validate_csr` returned, issued at the same moment.

        The same moment matters: neither then supersedes the other where "newest" is decided
        by `not_before` (device authentication), and both expire together, so one renewal
        renews both.
        """
        moment = _now(now)
        device = self.issue_validated_device_certificate(
            csr, device_id=device_id, now=moment, validity=validity
        )
        agent = self._issue(
            public_key=csr.public_key(),
            common_name=agent_common_name(device_id),
            kind=AGENT_KIND,
            san=[x509.UniformResourceIdentifier(agent_uri(device_id))],
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            now=moment,
            validity=validity,
        )
        return DeviceCertificates(device=device, agent=agent)

    def issue_control_plane_certificate(
        self,
        csr_pem: bytes,
        *,
        now: datetime | None = None,
        validity: timedelta = CONTROL_PLANE_VALIDITY,
    ) -> IssuedCertificate:
        """Sign the control plane's MQTT client certificate (CN `control-plane`)."""
        csr = validate_csr(csr_pem)
        return self._issue(
            public_key=csr.public_key(),
            common_name=CONTROL_PLANE_COMMON_NAME,
            kind="control-plane",
            san=[x509.UniformResourceIdentifier("urn:storefleet:service:control-plane")],
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            now=_now(now),
            validity=validity,
        )

    def issue_broker_certificate(
        self,
        csr_pem: bytes,
        *,
        hostnames: Sequence[str],
        now: datetime | None = None,
        validity: timedelta = BROKER_VALIDITY,
    ) -> IssuedCertificate:
        """Sign the broker's server certificate for `hostnames` (DNS names or IP addresses)."""
        if not hostnames:
            msg = "a broker certificate needs at least one host name or IP address"
            raise CertificateAuthorityError(msg, directory=str(self.directory))
        csr = validate_csr(csr_pem)
        san: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                san.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                san.append(x509.DNSName(host))
        return self._issue(
            public_key=csr.public_key(),
            common_name=BROKER_COMMON_NAME,
            kind="broker",
            san=san,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            now=_now(now),
            validity=validity,
        )

    def _issue(
        self,
        *,
        public_key: CertificatePublicKeyTypes,
        common_name: str,
        kind: str,
        san: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        now: datetime,
        validity: timedelta,
    ) -> IssuedCertificate:
        serial = x509.random_serial_number()
        while self.ledger.get_issued(serial) is not None:  # 159 random bits: practically never
            serial = x509.random_serial_number()
        not_before = (now - CLOCK_SKEW).replace(microsecond=0)
        not_after = min(
            (now + validity).replace(microsecond=0),
            self.issuing_certificate.not_valid_after_utc,
        )
        is_ec = isinstance(public_key, ec.EllipticCurvePublicKey)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.issuing_certificate.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=not is_ec,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._issuing_key.public_key()),
                critical=False,
            )
            .sign(self._issuing_key, hashes.SHA256())
        )
        self.ledger.record_issued(
            IssuedRecord(
                serial=serial,
                common_name=common_name,
                kind=kind,
                not_before=not_before,
                not_after=not_after,
                public_key_sha256=public_key_fingerprint(public_key),
            )
        )
        return IssuedCertificate(
            certificate=certificate,
            issuing_certificate=self.issuing_certificate,
            root_certificate=self.root_certificate,
        )

    def revoke(
        self,
        serial: int,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
        *,
        now: datetime | None = None,
    ) -> None:
        """Record `serial` as revoked; takes effect at the broker once the CRL is rewritten."""
        if self.ledger.get_issued(serial) is None:
            raise UnknownSerial(serial)
        self.ledger.record_revoked(
            RevokedRecord(serial=serial, revoked_at=_now(now).replace(microsecond=0), reason=reason)
        )

    def crl(
        self, *, now: datetime | None = None, validity: timedelta = CRL_VALIDITY
    ) -> x509.CertificateRevocationList:
        """A CRL of every revocation, signed by the issuing CA.

        OpenSSL refuses every client once `next_update` passes, so the control plane must
        rewrite it well inside `validity` (daily is a good rhythm), not only on revocation.
        """
        moment = _now(now).replace(microsecond=0)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing_certificate.subject)
            .last_update(moment - CLOCK_SKEW)
            .next_update(moment + validity)
            .add_extension(x509.CRLNumber(self.ledger.next_crl_number()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._issuing_key.public_key()),
                critical=False,
            )
        )
        for record in self.ledger.revoked():
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(record.serial)
                .revocation_date(record.revoked_at)
            )
            if record.reason is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(record.reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self._issuing_key, hashes.SHA256())

    def crl_pem(self, *, now: datetime | None = None, validity: timedelta = CRL_VALIDITY) -> bytes:
        """The CRL as PEM, the format Mosquitto's `crlfile` expects."""
        return self.crl(now=now, validity=validity).public_bytes(serialization.Encoding.PEM)

    def write_crl(
        self, path: Path, *, now: datetime | None = None, validity: timedelta = CRL_VALIDITY
    ) -> Path:
        """Atomically replace the broker's CRL file (the broker never reads half a CRL)."""
        write_atomic(path, self.crl_pem(now=now, validity=validity), mode=PUBLIC_FILE_MODE)
        return path
