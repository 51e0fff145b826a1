"""Canonical JSON: the one byte string a value hashes to, on the appliance and in the cloud.

Keys sorted, no insignificant white space, UTF-8, integers and strings only for numbers that
matter. Floats are refused outright: money is integer minor units or a Decimal written as a string,
and a float's text form differs between languages, which would break the hash chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TypeAlias

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


def canonical_text(value: object, *, checked: bool = True) -> str:
    """Serialise ``value`` canonically, refusing anything without a single JSON form.

    ``checked=False`` skips the walk that refuses floats and Decimals; it is for values that came
    out of :func:`protocols.codec.decode`, which already refuses floats in journal bodies, so the
    cloud does not pay for the same check twice on its hot path.
    """
    if checked:
        _check(value, "")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_bytes(value: object, *, checked: bool = True) -> bytes:
    """:func:`canonical_text` as UTF-8 bytes."""
    try:
        return canonical_text(value, checked=checked).encode()
    except UnicodeEncodeError as err:
        raise NonCanonicalValue("a string is not valid Unicode (lone surrogate)") from err
