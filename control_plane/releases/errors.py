"""Why a release upload or a bundle download is refused.

ReleaseError
├── BundleRejected        422  the bundle does not verify (``bundle_<reason>``: unknown key, …)
├── BundleTooLarge        413  over STOREFLEET_CP_RELEASE_MAX_MB
├── ReleaseExists         409  that version is published already, with other bytes
├── ReleaseNotFound       404  no release with that version
└── ReleasesNotTrusted    503  no trusted release key is configured: nothing can verify
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar

from control_plane.problems import DomainError
from protocols.release_bundle import REASONS, BundleRefused


class ReleaseError(DomainError):
    """A release request was refused."""

    reason: ClassVar[str] = "release_error"


class BundleRejected(ReleaseError):  # noqa: N818 - named for what the operator is told
    """The bundle failed verification; ``why`` is the bundle format's reason."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "bundle_refused"
    advice = (
        "build the bundle again with `storefleet release build` and sign it with a key the "
        "control plane trusts (STOREFLEET_CP_RELEASE_KEYS)"
    )

    def __init__(self, refused: BundleRefused) -> None:
        super().__init__(f"{refused.reason}: {REASONS[refused.reason]} ({refused.detail})")
        self.why = refused.reason


class BundleTooLarge(ReleaseError):  # noqa: N818 - named for what was refused
    """More bytes than a bundle may have."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    reason = "bundle_too_large"
    advice = "raise STOREFLEET_CP_RELEASE_MAX_MB if this bundle is right"


class ReleaseExists(ReleaseError):  # noqa: N818 - named for what was refused
    """The version is published already and these bytes are not it."""

    status = HTTPStatus.CONFLICT
    reason = "release_exists"
    advice = "a published version never changes: build a new version"


@dataclass(eq=False)
class ReleaseNotFound(ReleaseError):  # noqa: N818 - named for what was refused
    """No release of that version."""

    status = HTTPStatus.NOT_FOUND
    reason = "release_not_found"
    message = "no release {version!r}"

    version: str


class ReleasesNotTrusted(ReleaseError):  # noqa: N818 - named for what is missing
    """No trusted release key: the control plane cannot verify any bundle."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    reason = "release_keys_missing"
    advice = "set STOREFLEET_CP_RELEASE_KEYS to the release signing keys' public keys"
