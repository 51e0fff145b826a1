"""Errors of the peripheral services.

::

    PeripheralError                 (device: which device, by its configured name)
    ├── DeviceUnavailableError      cannot reach it: unplugged, refused, timed out
    ├── DeviceFaultError            reachable but cannot work: out of paper, cover open
    └── DeviceProtocolError         it sent bytes we cannot understand (counted, then skipped)

Services catch these, record them in the device's health and retry; they never escape a
service's loop. Lower-level errors (OSError, serial.SerialException, codec errors) are always
mapped to one of these with ``raise … from err``.
"""

from __future__ import annotations


class PeripheralError(Exception):
    """Base: ``device`` names the device in the store's config."""

    def __init__(self, message: str, *, device: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class DeviceUnavailableError(PeripheralError):
    """The device does not answer or is not there."""


class DeviceFaultError(PeripheralError):
    """The device answers but reports a condition a person must fix (``condition``)."""

    def __init__(self, message: str, *, device: str, condition: str) -> None:
        super().__init__(message, device=device)
        self.condition = condition


class DeviceProtocolError(PeripheralError):
    """The device's bytes break its protocol."""
