"""The limits every value of the contract fits: one table, read by both sides.

Why one table: a value the appliance can make but the cloud cannot store blocks replication, and a
value a device can receive but not handle stops a register. Both are decided here, once. The
cloud's columns are sized from these numbers (``tests/control_plane/ingest/test_record_limits.py``
holds them together), and every message field, the sale body and the edge's settings use the
types below, so the appliance refuses at the source what the cloud would refuse at the end.

=================  ==================================  =========================================
limit              value                               why
=================  ==================================  =========================================
``INT64_MAX``      2^63 − 1                            SQLite ``INTEGER``, PostgreSQL ``BIGINT``
``ID_LENGTH``      64 characters, no control chars     ids and kinds: ``String(64)`` columns
``CURRENCY``       3 uppercase ASCII letters           ISO 4217 shape: ``String(3)`` columns
``LABEL_LENGTH``   100 characters, no control chars    versions, release names, register names
``TEXT_LENGTH``    1,000 characters                    free text: an error, a reason, a line name
``URL_LENGTH``     2,048 characters                    a bundle's URL
``MAP_ENTRIES``    256 keys                            any free-form object in a message
=================  ==================================  =========================================

PostgreSQL refuses a NUL character in any text; SQLite keeps it. Identifiers and labels refuse
every control character, so neither store ever sees one there.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Field, StringConstraints

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
ID_LENGTH: Final = 64
CURRENCY_LENGTH: Final = 3
LABEL_LENGTH: Final = 100
TEXT_LENGTH: Final = 1000
URL_LENGTH: Final = 2048
MAP_ENTRIES: Final = 256

#: No C0 control character and no DEL: PostgreSQL refuses NUL, and none belongs in a name.
PRINTABLE_PATTERN: Final = r"^[^\x00-\x1f\x7f]*$"
#: No NUL (PostgreSQL's text cannot hold it); tabs and newlines are fine in free text.
NO_NUL_PATTERN: Final = r"^[^\x00]*$"
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"

# -- integers: strict (no "5", no 5.0, no true) and within a 64-bit column ------------------------

#: Any signed amount a column holds (money in minor units may be negative: a refund line).
Int64 = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
#: A count, a version, a mark that is never negative.
Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
#: A journal sequence number or anything else numbered from 1.
Seq = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]
#: Milliseconds since the epoch (or a duration in milliseconds).
Millis = Count

# -- strings --------------------------------------------------------------------------------------

#: An id or a kind: stored in ``String(64)`` columns and used as a label.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=ID_LENGTH, pattern=PRINTABLE_PATTERN)
]
#: An id that may be absent (``""``), e.g. a boot id not known yet.
OptionalIdentifier = Annotated[
    str, StringConstraints(max_length=ID_LENGTH, pattern=PRINTABLE_PATTERN)
]
#: A short name: a version, a release, a slot, a window.
Label = Annotated[str, StringConstraints(max_length=LABEL_LENGTH, pattern=PRINTABLE_PATTERN)]
#: Free text a person reads: an error, a reason, a line's description.
Text = Annotated[str, StringConstraints(max_length=TEXT_LENGTH, pattern=NO_NUL_PATTERN)]
#: A URL of a bundle.
Url = Annotated[
    str, StringConstraints(min_length=1, max_length=URL_LENGTH, pattern=PRINTABLE_PATTERN)
]
#: An ISO 4217-shaped currency code (``EUR``, ``CHF``): what a ``String(3)`` column holds.
CurrencyCode = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]

# -- objects --------------------------------------------------------------------------------------

#: A free-form JSON object in a message: bounded in keys (the payload limit bounds the rest).
JsonObject = Annotated[dict[str, Any], Field(max_length=MAP_ENTRIES)]


def clip(text: str, limit: int = TEXT_LENGTH) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, so a reason always fits its field."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
