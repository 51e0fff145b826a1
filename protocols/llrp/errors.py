"""LLRP codec errors.

::

    LlrpError
    ├── Incomplete   more bytes are needed; nothing was consumed
    └── Malformed    the bytes break the spec; ``discard`` says how far to skip, if known
"""

from __future__ import annotations


class LlrpError(Exception):
    """Base of every LLRP codec error."""


class Incomplete(LlrpError):  # noqa: N818  h11-style names the brief and callers use
    """The buffer holds a prefix of a message; read more and call again."""

    def __init__(self, *, needed: int, have: int) -> None:
        super().__init__(f"need {needed} bytes, have {have}")
        self.needed = needed
        self.have = have


class Malformed(LlrpError):  # noqa: N818  h11-style names the brief and callers use
    """The bytes cannot be an LLRP message of the subset we speak.

    ``discard`` is the number of bytes the caller may drop to resynchronise (the whole message
    when its header was sound), or ``None`` when the stream itself is lost and the TCP
    connection has to be closed.
    """

    def __init__(
        self,
        reason: str,
        *,
        message_type: int | None = None,
        parameter_type: int | None = None,
        offset: int = 0,
        discard: int | None = None,
    ) -> None:
        super().__init__(
            f"{reason} (message type {message_type}, parameter {parameter_type}, offset {offset})"
        )
        self.reason = reason
        self.message_type = message_type
        self.parameter_type = parameter_type
        self.offset = offset
        self.discard = discard
