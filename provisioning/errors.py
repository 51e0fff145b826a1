"""The one exception tree of the provisioning package.

Every refusal carries the context a caller needs to act (which serial, which device, which
reason) and a message that says what to do next, because these messages end up in front of a
field tech or an operator, not a developer.

    ProvisioningError
    ├── CertificateAuthorityError          the CA directory or its keys cannot be used
    │   ├── CaPassphraseError              wrong or missing passphrase for an encrypted CA key
    │   └── UnknownSerial                  revoke() of a serial this CA never issued
    ├── InvalidDeviceId                    an id that is not safe as CN and MQTT topic level
    ├── EnrolmentRefused                   an enrolment attempt that must not succeed
    │   ├── TokenUnknown
    │   ├── TokenUsed
    │   ├── TokenExpired
    │   ├── TokenRevoked
    │   ├── MalformedToken
    │   ├── WeakKey                        CSR key type or size not acceptable
    │   └── BadCsr                         CSR unparseable or its signature does not verify
    ├── EnrolmentPayloadError              a scanned QR string that is not an sf.enrolment
    ├── CaFingerprintMismatch              received chain is not from the pinned CA
    ├── BrokerConfigError                  a value unsafe to write into mosquitto.conf
    └── DeviceIdentityError                the appliance's key/cert store cannot be used
"""

from __future__ import annotations


class ProvisioningError(Exception):
    """Base of everything this package raises on purpose."""


class CertificateAuthorityError(ProvisioningError):
    """The CA directory or its key material cannot be used."""

    def __init__(self, message: str, *, directory: str | None = None) -> None:
        super().__init__(message)
        self.directory = directory


class CaPassphraseError(CertificateAuthorityError):
    """An encrypted CA private key could not be decrypted with the configured passphrase."""


class UnknownSerial(CertificateAuthorityError):  # noqa: N818 - reads as the refusal it is
    """revoke() was asked for a serial that this CA has no record of issuing."""

    def __init__(self, serial: int) -> None:
        super().__init__(
            f"serial {serial:x} was never issued by this CA; check the device's certificate "
            "with `storefleet provision inspect-cert` and revoke the serial it shows"
        )
        self.serial = serial


class InvalidDeviceId(ProvisioningError):  # noqa: N818 - named for what was refused
    """A device id that is unsafe as a certificate CN and as one MQTT topic level."""

    def __init__(self, device_id: str, why: str) -> None:
        super().__init__(f"device id {device_id!r} is not usable: {why}")
        self.device_id = device_id


class EnrolmentRefused(ProvisioningError):  # noqa: N818 - the name the brief and routers use
    """An enrolment attempt that must not succeed; `reason` is a stable machine-readable code.

    The control plane maps these to HTTP responses; the appliance shows `str(err)` on its
    first-boot screen, so the message says what the field tech should do.
    """

    reason: str = "refused"
    advice: str = "ask an operator for a new enrolment code"

    def __init__(self, detail: str | None = None) -> None:
        text = f"enrolment refused ({self.reason})"
        if detail:
            text += f": {detail}"
        super().__init__(f"{text}; {self.advice}")
        self.detail = detail


class TokenUnknown(EnrolmentRefused):
    """No enrolment matches the token (never created, or typed wrong)."""

    reason = "token_unknown"
    advice = "check the code was scanned or typed completely, or ask for a new enrolment"


class TokenUsed(EnrolmentRefused):
    """The single-use token was already redeemed by another key."""

    reason = "token_used"
    advice = "each code enrols one appliance once; ask an operator for a new enrolment"


class TokenExpired(EnrolmentRefused):
    """The enrolment's expiry passed before it was redeemed."""

    reason = "token_expired"
    advice = "ask an operator to create a new enrolment (codes are valid for 24 hours)"


class TokenRevoked(EnrolmentRefused):
    """An operator revoked the enrolment before it was redeemed."""

    reason = "token_revoked"
    advice = "this code was cancelled by an operator; ask them for the current one"


class MalformedToken(EnrolmentRefused):
    """The token or typed fallback code is not in the expected format (or fails its check)."""

    reason = "malformed_token"
    advice = "re-scan the QR code or re-type the 12-character code exactly as printed"


class WeakKey(EnrolmentRefused):
    """The CSR's key is of a type or size we do not accept."""

    reason = "weak_key"
    advice = "the appliance must use an EC P-256/P-384 key (or RSA of 2048 bits or more)"


class BadCsr(EnrolmentRefused):
    """The CSR cannot be parsed or its self-signature does not verify."""

    reason = "bad_csr"
    advice = "the appliance should regenerate its certificate request and retry"


class EnrolmentPayloadError(ProvisioningError):
    """A scanned string that is not a valid `sf.enrolment` payload."""

    def __init__(self, message: str, *, text: str | None = None) -> None:
        super().__init__(f"{message}; re-scan the enrolment QR code or type the fallback code")
        self.text = text


class CaFingerprintMismatch(ProvisioningError):  # noqa: N818 - names the refusal
    """The certificate chain received at enrolment is not anchored in the pinned CA."""

    def __init__(self, *, expected: str, actual: str | None) -> None:
        got = actual if actual is not None else "no CA certificate in the chain"
        super().__init__(
            f"the control plane answered with a certificate chain from a different CA "
            f"(pinned {expected}, got {got}); do not continue: check the enrolment QR belongs "
            "to this fleet and that nothing intercepts the connection"
        )
        self.expected = expected
        self.actual = actual


class BrokerConfigError(ProvisioningError):
    """A value that would make the rendered Mosquitto config wrong or unsafe."""


class DeviceIdentityError(ProvisioningError):
    """The appliance's identity directory or the material given to it cannot be used."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path
