"""The domain errors of provisioning in the control plane; the router maps them to HTTP.

Refusals of an enrolment itself (unknown, used, expired, revoked token; bad CSR; weak key) are
the library's `provisioning.errors.EnrolmentRefused` tree and keep their stable `reason`.

    ProvisioningServiceError
    ├── CaUnavailable            the CA cannot be opened (directory, passphrase)
    ├── StoreNotFound
    ├── EnrolmentNotFound
    ├── EnrolmentNotPending      revoke or reprint of an enrolment already used/revoked/expired
    ├── DeviceNotFound
    ├── DeviceDecommissioned
    ├── RenewalRefused           the CSR's key is not the key of a current certificate
    └── SealBroken               (sealing.py) a pending QR does not open with this passphrase
"""

from __future__ import annotations


class ProvisioningServiceError(Exception):
    """Base of the control plane's provisioning refusals."""

    reason: str = "provisioning_error"


class CaUnavailable(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """The CA directory or passphrase is wrong; nothing can be issued until it is fixed."""

    reason = "ca_unavailable"


class StoreNotFound(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """No such store (or it belongs to another tenant)."""

    reason = "store_not_found"

    def __init__(self, store_id: str, tenant_id: str) -> None:
        super().__init__(f"store {store_id!r} of tenant {tenant_id!r} does not exist")
        self.store_id = store_id
        self.tenant_id = tenant_id


class EnrolmentNotFound(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """No enrolment with that id."""

    reason = "enrolment_not_found"

    def __init__(self, enrolment_id: str) -> None:
        super().__init__(f"enrolment {enrolment_id!r} does not exist")
        self.enrolment_id = enrolment_id


class EnrolmentNotPending(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """The enrolment was already used, revoked or has expired: it cannot be shown or revoked."""

    reason = "enrolment_not_pending"

    def __init__(self, enrolment_id: str, state: str) -> None:
        super().__init__(
            f"enrolment {enrolment_id!r} is {state}; create a new enrolment for the store"
        )
        self.enrolment_id = enrolment_id
        self.state = state


class DeviceNotFound(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """No device with that id in the registry."""

    reason = "device_not_found"

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} does not exist")
        self.device_id = device_id


class DeviceDecommissioned(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """The device was decommissioned: it gets no new certificate, it must be enrolled anew."""

    reason = "device_decommissioned"

    def __init__(self, device_id: str) -> None:
        super().__init__(
            f"device {device_id!r} was decommissioned; enrol the appliance again with a new code"
        )
        self.device_id = device_id


class RenewalRefused(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """A renewal whose CSR does not prove possession of a current certificate's key."""

    reason = "renewal_refused"
    advice = (
        "renew with a CSR for the key of the device's current certificate; if that certificate "
        "expired or was revoked, enrol the appliance again"
    )

    def __init__(self, device_id: str, detail: str) -> None:
        super().__init__(f"renewal of {device_id!r} refused: {detail}; {self.advice}")
        self.device_id = device_id
        self.detail = detail
