"""Typed records ↔ JSON-safe journal bodies, driven by the records' type hints.

How it works: every record the ledger journals (``Sale``, ``SaleReturn``, shift events, reports)
is a frozen dataclass deriving from ``JournalRecord``, which names its ``kind``. ``encode`` walks
the dataclass by its annotations and emits only dicts, lists, strings, ints, bools and ``None``:
Decimals become strings (``"0.081"``), datetimes ISO 8601 strings, enums their value, and a
member of a union of dataclasses gets a ``"type"`` tag. ``decode`` walks the same annotations
back, so ``decode(encode(r)) == r`` for every record, and a body that does not fit raises
``JournalBodyError``. The body carries ``kind`` and ``v`` (schema version) at the top. A field
added later with a default (a sale's customer) may be missing from an older body: it decodes to
the default, so every body ever journaled still reads.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self

from edge.checkout.errors import JournalBodyError
from protocols.vocabulary import JournalKind

BODY_VERSION = 1
_REGISTRY: dict[str, type[JournalRecord]] = {}


class JournalRecord:
    """Mixin for journaled records; ``KINDS`` lists the kinds the class encodes as."""

    __slots__ = ()
    KINDS: ClassVar[tuple[JournalKind, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in cls.KINDS:
            _REGISTRY[kind] = cls  # the slots copy dataclass makes registers last, as it should

    @property
    def journal_kind(self) -> JournalKind:
        """The kind written into the body; records with several kinds override this."""
        return self.KINDS[0]

    def to_journal_body(self) -> dict[str, Any]:
        """The JSON-safe body: ``{"kind": …, "v": 1, <fields>}``."""
        body: dict[str, Any] = {"kind": self.journal_kind.value, "v": BODY_VERSION}
        body.update(_encode_dataclass(self))
        return body

    @classmethod
    def from_journal_body(cls, body: Mapping[str, Any]) -> Self:
        """Decode a body of one of this class's kinds."""
        kind = str(body.get("kind"))
        if kind not in cls.KINDS:
            raise JournalBodyError(kind=kind, reason=f"not a {cls.__name__}")
        if body.get("v") != BODY_VERSION:
            raise JournalBodyError(kind=kind, reason=f"unsupported version {body.get('v')!r}")
        try:
            record: Self = _decode_dataclass(cls, body)
        except (KeyError, TypeError, ValueError, InvalidOperation) as err:
            raise JournalBodyError(kind=kind, reason=str(err) or type(err).__name__) from err
        return record


def record_class(kind: str) -> type[JournalRecord]:
    """The record class registered for ``kind``."""
    try:
        return _REGISTRY[kind]
    except KeyError as err:
        raise JournalBodyError(kind=kind, reason="unknown kind") from err


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _encode_dataclass(value: Any) -> dict[str, Any]:
    hints = _hints(type(value))
    return {
        f.name: _encode(getattr(value, f.name), hints[f.name])
        for f in dataclasses.fields(value)
        if f.init
    }


def _encode(value: Any, tp: Any) -> Any:
    if _is_union(tp):
        if value is None:
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _encode(value, options[0])
        body = _encode_dataclass(value)
        body["type"] = type(value).__name__
        return body
    if typing.get_origin(tp) is tuple:
        (item_tp, _) = typing.get_args(tp)
        return [_encode(v, item_tp) for v in value]
    if tp is Decimal:
        return str(value)
    if tp is datetime:
        return value.isoformat()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(tp):
        return _encode_dataclass(value)
    if tp in (int, str, bool):
        if type(value) is not tp:
            raise TypeError(f"expected {tp.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"no journal encoding for {tp!r}")


def _decode_dataclass(cls: type[Any], body: Mapping[str, Any]) -> Any:
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    kwargs = {
        f.name: _decode(body[f.name], hints[f.name])
        for f in fields
        if f.name in body or not _has_default(f)
    }
    return cls(**kwargs)


def _has_default(f: dataclasses.Field[Any]) -> bool:
    """A field added later with a default: bodies written before it still decode."""
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _decode(raw: Any, tp: Any) -> Any:
    if _is_union(tp):
        if raw is None:
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _decode(raw, options[0])
        for option in options:
            if option.__name__ == raw.get("type"):
                return _decode_dataclass(option, raw)
        raise ValueError(f"no union member named {raw.get('type')!r}")
    if typing.get_origin(tp) is tuple:
        (item_tp, _) = typing.get_args(tp)
        return tuple(_decode(v, item_tp) for v in raw)
    if tp is Decimal:
        if not isinstance(raw, str):
            raise TypeError("a Decimal must be a string")
        return Decimal(raw)
    if tp is datetime:
        return datetime.fromisoformat(raw)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(raw)
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, raw)  # type: ignore[arg-type]
    if tp in (int, str, bool):
        if type(raw) is not tp:
            raise TypeError(f"expected {tp.__name__}, got {type(raw).__name__}")
        return raw
    raise TypeError(f"no journal decoding for {tp!r}")
