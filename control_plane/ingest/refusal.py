"""A reported value the cloud will not keep, as the contract's own error.

Decoding checks a message's envelope (``protocols``); what the control plane stores is checked
again by the domain that stores it (reported state, command results) against a stricter model.
Both refusals are the same :class:`~protocols.errors.MalformedMessage`, so the ingest loop counts
and logs them like any malformed message and no domain needs its own drop path.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from protocols.errors import MalformedMessage
from protocols.limits import clip

#: A key of the sender's object can hold anything; the reason is stored and logged, so not those.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def refused(schema: str, err: ValidationError) -> MalformedMessage:
    """The first problem of ``err`` as a reason an operator can act on (where, and what)."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "$"
    reason = _UNPRINTABLE.sub("?", f"{schema} not kept: {clip(where, 200)}: {first['msg']}")
    return MalformedMessage(reason)
