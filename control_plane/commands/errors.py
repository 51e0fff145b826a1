"""The refusals of remote commands. An unknown or retired device is the registry's error.

CommandError
├── UnknownCommand     400  not one of the commands the appliance runs
├── CommandNotFound    404  no such command for that device
└── DeviceUnreachable  503  the control plane has no broker connection right now
(DeviceNotFound 404 and DeviceDecommissioned 410 come from ``control_plane.devices.errors``)
"""

from __future__ import annotations

from http import HTTPStatus

from control_plane.devices.errors import DeviceDecommissioned, DeviceNotFound
from control_plane.problems import DomainError

__all__ = [
    "CommandError",
    "CommandNotFound",
    "DeviceDecommissioned",
    "DeviceNotFound",
    "DeviceUnreachable",
    "UnknownCommand",
]


class CommandError(DomainError):
    """A command was refused or cannot be found."""

    reason = "command_error"


class UnknownCommand(CommandError):  # noqa: N818 - named in the domain's words
    """The appliance does not run a command of that name."""

    status = HTTPStatus.BAD_REQUEST
    reason = "unknown_command"


class CommandNotFound(CommandError):  # noqa: N818 - named in the domain's words
    """No command with that id was sent to that device."""

    status = HTTPStatus.NOT_FOUND
    reason = "command_not_found"


class DeviceUnreachable(CommandError):  # noqa: N818 - named in the domain's words
    """The control plane has no broker connection right now."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    reason = "device_unreachable"
    advice = "the control plane is not connected to the broker; check the broker and retry"
