"""Serial UHF codec errors.

::

    UhfSerialError
    ├── Incomplete   wait for more bytes; nothing consumed
    └── Malformed    drop ``discard`` leading bytes and decode again (resync)
"""

from __future__ import annotations


class UhfSerialError(Exception):
    """Base of the serial UHF codec errors."""


class Incomplete(UhfSerialError):  # noqa: N818  h11-style names the brief and callers use
    """Not yet a whole frame."""

    def __init__(self, *, needed: int, have: int) -> None:
        super().__init__(f"need {needed} bytes, have {have}")
        self.needed = needed
        self.have = have


class Malformed(UhfSerialError):  # noqa: N818  h11-style names the brief and callers use
    """Not a valid frame; ``discard`` bytes may be dropped to resynchronise."""

    def __init__(
        self, reason: str, *, discard: int, cmd: int | None = None, frame: bytes = b""
    ) -> None:
        super().__init__(f"{reason} (cmd {cmd}, discard {discard}, frame {frame.hex() or '-'})")
        self.reason = reason
        self.discard = discard
        self.cmd = cmd
        self.frame = frame
