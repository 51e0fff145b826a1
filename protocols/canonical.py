"""Canonical JSON: the one byte string a value hashes to, on the appliance and in the cloud.

Keys sorted, no insignificant white space, UTF-8, integers and strings only for numbers that
matter. Floats are refused outright: money is integer minor units or a Decimal written as a string,
and a float's text form differs between languages, which would break the hash chain.

How it is written: the text is defined as the standard library's
``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` — every hash
in every ledger and in the cloud was computed over that text. orjson writes the same bytes for
every value this module accepts (keys in code-point order, the same escapes for control
characters, UTF-8 unescaped) about ten times faster, which was 16 % of the cloud's ingest time
(py-spy, ``bench/replication.py``). Where orjson refuses a value the standard library writes
(an integer beyond 64 bits, a lone surrogate, nesting deeper than 255), the standard library
writes it, so the text never depends on which encoder ran.
``tests/protocols/test_canonical.py`` proves the identity over generated values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TypeAlias

import orjson

from protocols.errors import NonCanonicalValue

JsonValue: TypeAlias = str | int | bool | list["JsonValue"] | dict[str, "JsonValue"] | None


def _check(value: object, path: str) -> None:
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError as err:
                raise NonCanonicalValue(f"string at {path or '$'} is not valid Unicode") from err
        return
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, bytes | bytearray | memoryview):
        raise NonCanonicalValue(f"bytes at {path or '$'}: encode them as text first")
    if isinstance(value, float):
        raise NonCanonicalValue(f"float at {path or '$'}: write money as minor units or a string")
    if isinstance(value, Decimal):
        raise NonCanonicalValue(f"Decimal at {path or '$'}: convert it to str before hashing")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NonCanonicalValue(f"non-string key {key!r} at {path or '$'}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, Sequence):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise NonCanonicalValue(f"{type(value).__name__} at {path or '$'} has no JSON form")


#: Sorted keys; dataclasses and datetimes are not given orjson's own forms (the standard library,
#: and so the canonical text, has none: they fall through to it and are refused there).
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)


def _stdlib_text(value: object) -> str:
    """The definition of the canonical text (see the module's docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_text(value: object, *, checked: bool = True) -> str:
    """Serialise ``value`` canonically, refusing anything without a single JSON form.

    ``checked=False`` skips the walk that refuses floats and Decimals; it is for values that came
    out of :func:`protocols.codec.decode`, which already refuses floats in journal bodies, so the
    cloud does not pay for the same check twice on its hot path. It must not be given a float:
    orjson and the standard library write some floats differently.
    """
    if checked:
        _check(value, "")
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError: a value only the standard library writes
        return _stdlib_text(value)


def canonical_bytes(value: object, *, checked: bool = True) -> bytes:
    """:func:`canonical_text` as UTF-8 bytes."""
    if checked:
        _check(value, "")
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a value only the standard library writes
        pass
    try:
        return _stdlib_text(value).encode()
    except UnicodeEncodeError as err:
        raise NonCanonicalValue("a string is not valid Unicode (lone surrogate)") from err
