"""The bounds every API input is held to, so the store is never the first to refuse a value.

PostgreSQL refuses a NUL character in text, a string longer than its ``VARCHAR`` and an integer
past 64 bits; SQLite accepts all three; and a lone surrogate (legal in JSON, not in UTF-8) fails
whichever driver encodes it. Every string a route takes — in a body, a path or a query — is one of
the types here or in a domain's schemas built from them: bounded to its column's length, free of
NUL (stated as a ``pattern`` in the OpenAPI document, so clients see the rule) and encodable. The
numbers come from ``protocols.limits`` and the tables, so the API, the MQTT contract and both
stores agree.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, Field, StringConstraints

from protocols.limits import INT64_MAX, LABEL_LENGTH, PRINTABLE_PATTERN
from protocols.topics import DEVICE_ID_PATTERN

#: ``String(200)`` columns: tenant and store names, who created an enrolment.
NAME_LENGTH = 200
#: ``String(64)`` column of a store's time zone (the longest IANA name has 32 characters).
TIME_ZONE_LENGTH = 64
#: ``String(32)`` columns of enrolment and command ids.
REF_LENGTH = 32
#: The most rows one list request returns.
MAX_LIMIT = 1000
#: A reference: an enrolment or command id (``enr-…``, hex).
REF_PATTERN = r"^[A-Za-z0-9_-]+$"


def _utf8(value: str) -> str:
    """Refuse a lone surrogate: JSON can carry one, UTF-8 (and so the store) cannot."""
    try:
        value.encode()
    except UnicodeEncodeError as err:
        msg = "text must be valid Unicode (it holds a lone surrogate)"
        raise ValueError(msg) from err
    return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _list_zones(schema: dict[str, Any]) -> None:
    """The OpenAPI document lists the zones, so a client (and a fuzzer) knows them all."""
    schema["enum"] = sorted(_zones())


def _time_zone(value: str) -> str:
    if value not in _zones():
        msg = f"{value!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)"
        raise ValueError(msg)
    return value


Utf8 = AfterValidator(_utf8)

#: A registry id (tenant, store, device): a topic level, so also safe in every column.
Identifier = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN.pattern)]
#: A name a person gives and reads: 1–200 printable characters.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_LENGTH, pattern=PRINTABLE_PATTERN),
    Utf8,
]
#: A register's name in its store (``String(100)``); may be empty.
RegisterName = Annotated[
    str, StringConstraints(max_length=LABEL_LENGTH, pattern=PRINTABLE_PATTERN), Utf8
]
#: A store's IANA time zone; maintenance windows are computed in it.
TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TIME_ZONE_LENGTH, pattern=PRINTABLE_PATTERN),
    AfterValidator(_time_zone),
    Field(json_schema_extra=_list_zones),
]


# -- path and query parameters --------------------------------------------------------------------

DeviceIdPath = Annotated[
    str, Path(pattern=DEVICE_ID_PATTERN.pattern, description="the device's id")
]
RefPath = Annotated[str, Path(min_length=1, max_length=REF_LENGTH, pattern=REF_PATTERN)]
IdentifierFilter = Annotated[
    str | None, Query(pattern=DEVICE_ID_PATTERN.pattern, description="only this one")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many, newest first")]
#: A version or mark a client sends back: never negative, fits a 64-bit column.
Mark = Annotated[int, Query(ge=0, le=INT64_MAX)]
