"""Why a rollout request is refused.

RolloutError
├── RolloutNotFound      404  no rollout with that id in the caller's tenant
├── NoDevicesTargeted    422  the target matches no device of the tenant
└── RolloutStateRefused  409  the action does not apply in the rollout's status
A release that does not exist is the releases' ``ReleaseNotFound`` (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar

from control_plane.problems import DomainError


class RolloutError(DomainError):
    """A rollout request was refused."""

    reason: ClassVar[str] = "rollout_error"


@dataclass(eq=False)
class RolloutNotFound(RolloutError):  # noqa: N818 - named for what was refused
    """No such rollout in the caller's tenant (another tenant's answers the same)."""

    status = HTTPStatus.NOT_FOUND
    reason = "rollout_not_found"
    message = "no rollout {rollout_id!r}"

    rollout_id: str


class NoDevicesTargeted(RolloutError):  # noqa: N818 - named for what was refused
    """The target names no device."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "rollout_targets_nothing"
    advice = "check the target's tags, stores or devices: none of the tenant's devices match"


class RolloutStateRefused(RolloutError):  # noqa: N818 - named for what was refused
    """The action does not apply now (resume a completed rollout, start one twice)."""

    status = HTTPStatus.CONFLICT
    reason = "rollout_state_refused"
    advice = "reload the rollout: its status changed"
