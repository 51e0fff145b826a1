"""The domain errors of provisioning in the control plane; the app answers them as problems.

Refusals of an enrolment itself (unknown, used, expired, revoked token; bad CSR; weak key) are
the library's `provisioning.errors.EnrolmentRefused` tree and keep their stable `reason`;
:func:`refusal_problem` gives each its HTTP status (the app installs it as a translation).

    ProvisioningServiceError
    ├── CaUnavailable            503  the CA cannot be opened (directory, passphrase, settings)
    ├── EnrolmentNotFound        404
    ├── EnrolmentNotPending      410  revoke or reprint of an enrolment already used/revoked/expired
    ├── RenewalRefused           403  the CSR's key is not the key of a current certificate
    └── SealBroken               410  (sealing.py) a pending QR does not open with this passphrase

A store or device that does not exist, or a device that was decommissioned, is the registry's
error (``StoreNotFound``, ``DeviceNotFound``, ``DeviceDecommissioned``), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from control_plane.devices.errors import DeviceDecommissioned, DeviceNotFound, StoreNotFound
from control_plane.problems import DomainError, Problem, problem
from control_plane.provisioning.attempts import TooManyAttempts
from provisioning.errors import (
    EnrolmentRefused,
    TokenExpired,
    TokenRevoked,
    TokenUnknown,
    TokenUsed,
)

__all__ = [
    "REFUSAL_STATUS",
    "CaUnavailable",
    "DeviceDecommissioned",
    "DeviceNotFound",
    "EnrolmentNotFound",
    "EnrolmentNotPending",
    "ProvisioningServiceError",
    "RenewalRefused",
    "StoreNotFound",
    "refusal_problem",
]


class ProvisioningServiceError(DomainError):
    """Base of the control plane's provisioning refusals."""

    reason = "provisioning_error"


class CaUnavailable(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """The CA directory, passphrase or settings are wrong; nothing is issued until fixed."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    reason = "ca_unavailable"


@dataclass(eq=False)
class EnrolmentNotFound(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """No enrolment with that id."""

    status = HTTPStatus.NOT_FOUND
    reason = "enrolment_not_found"
    message = "enrolment {enrolment_id!r} does not exist"

    enrolment_id: str


@dataclass(eq=False)
class EnrolmentNotPending(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """The enrolment was already used, revoked or has expired: it cannot be shown or revoked."""

    status = HTTPStatus.GONE
    reason = "enrolment_not_pending"
    advice = "create a new enrolment for the store"
    message = "enrolment {enrolment_id!r} is {state}; {advice}"

    enrolment_id: str
    state: str


@dataclass(eq=False)
class RenewalRefused(ProvisioningServiceError):  # noqa: N818 - named for what was refused
    """A renewal whose CSR does not prove possession of a current certificate's key."""

    status = HTTPStatus.FORBIDDEN
    reason = "renewal_refused"
    advice = (
        "renew with a CSR for the key of the device's current certificate; if that certificate "
        "expired or was revoked, enrol the appliance again"
    )

    message = "renewal of {device_id!r} refused: {detail}; {advice}"

    device_id: str
    detail: str


#: The status of each enrolment refusal; any other refusal (malformed token, bad CSR, weak key)
#: is a 400.
REFUSAL_STATUS: dict[type[EnrolmentRefused], int] = {
    TokenUnknown: HTTPStatus.NOT_FOUND,
    TokenUsed: HTTPStatus.CONFLICT,
    TokenExpired: HTTPStatus.GONE,
    TokenRevoked: HTTPStatus.GONE,
    TooManyAttempts: HTTPStatus.TOO_MANY_REQUESTS,
}


def refusal_problem(err: EnrolmentRefused) -> Problem:
    """An enrolment refusal as the problem the appliance's first-boot screen shows."""
    status = next(
        (REFUSAL_STATUS[kind] for kind in type(err).__mro__ if kind in REFUSAL_STATUS),
        HTTPStatus.BAD_REQUEST,
    )
    return problem(status, reason=err.reason, detail=str(err), advice=err.advice)
