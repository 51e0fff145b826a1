"""Why first-boot enrolment stopped; each message is shown on the first-boot screen.

    EnrolmentFailed
    ├── ControlPlaneUnreachable     no answer (network, DNS, TLS); retry is safe
    ├── EnrolmentRejected           the control plane refused: `reason` and `advice` from it
    └── NotEnrolled                 mqtt_tls_context() before enrolment finished

Pin failures are the library's `provisioning.errors.CaFingerprintMismatch`, raised as is:
nothing was sent, and nothing may be retried against that server.
"""

from __future__ import annotations


class EnrolmentFailed(Exception):  # noqa: N818 - named for what was refused
    """Base of the appliance's enrolment failures."""


class ControlPlaneUnreachable(EnrolmentFailed):
    """The control plane did not answer; the key is kept and a retry resumes safely."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(
            f"cannot reach the control plane at {url} ({why}); check the store network and "
            "scan again: this appliance keeps its key and resumes where it stopped"
        )
        self.url = url


class EnrolmentRejected(EnrolmentFailed):
    """The control plane refused the enrolment; `reason` is its stable code."""

    def __init__(self, *, status: int, reason: str, advice: str, message: str) -> None:
        super().__init__(message or f"enrolment refused ({reason}); {advice}")
        self.status = status
        self.reason = reason
        self.advice = advice


class NotEnrolled(EnrolmentFailed):
    """The appliance has no complete identity yet."""

    def __init__(self, directory: str) -> None:
        super().__init__(f"{directory} holds no enrolled identity; scan an enrolment code first")
        self.directory = directory
