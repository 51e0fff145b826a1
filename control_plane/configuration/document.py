"""The typed document the layers resolve into: the schema's defaults, checks, hashes and budget.

The schema is ``protocols/store_config.py``, the one both sides validate with; this module only
adapts it to the layer engine: the platform layer's defaults (every section the schema gives a
default; ``store``, ``currency``, ``tax`` and ``hours`` have none and must be set at some
layer), a check that says which *key* is at fault, the per-key hashes the appliance reports, and
the redaction of what an operator's screen must never show (staff PIN hashes).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from protocols.canonical import canonical_bytes
from protocols.store_config import (
    SECTIONS,
    SIZE_BUDGET,
    StoreConfig,
    StoreConfigRefused,
    key_hashes,
    normalised,
    parse_store_config,
    store_config_json_schema,
)

#: Shown instead of a staff member's PIN hash in the API and the console.
REDACTED = "(argon2id hash, not shown)"
_KEY_OF_PROBLEM = re.compile(r"^([A-Za-z0-9_]+)")


@cache
def platform_defaults() -> dict[str, Any]:
    """The platform layer: each section's schema default, as JSON."""
    defaults: dict[str, Any] = {}
    for name, field in StoreConfig.model_fields.items():
        if field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        defaults[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return defaults


@dataclass(frozen=True, slots=True)
class Checked:
    """A valid document: normalised (defaults filled in, what is published) and its hashes."""

    document: dict[str, Any]
    hashes: dict[str, str]
    size: int


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a document is refused: the first key at fault and its JSON path and reason, every
    key at fault."""

    key: str
    keys: frozenset[str]
    path: str
    reason: str
    problems: tuple[str, ...]


def check(document: dict[str, Any]) -> Checked | Violation:
    """Validate a resolved document against the schema and the size budget.

    The normalised document is checked against the budget too: it is what the device receives.
    """
    try:
        config = parse_store_config(document)
        full = normalised(config)
        size = len(canonical_bytes(full))
        if size > SIZE_BUDGET:
            parse_store_config(full)  # raises, naming the largest key
    except StoreConfigRefused as err:
        keys = {
            match[1]
            for problem in err.problems
            if (match := _KEY_OF_PROBLEM.match(problem)) is not None
        }
        return Violation(
            key=err.key,
            keys=frozenset(keys | {err.key}),
            path=err.path,
            reason=err.reason,
            problems=tuple(err.problems),
        )
    return Checked(document=full, hashes=key_hashes(config), size=size)


def value_hash(value: Any) -> str:
    """The hash of one section's value as the appliance computes it (sha256 of canonical JSON)."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def is_key(key: str) -> bool:
    """Whether ``key`` is a top-level section of the document."""
    return key in SECTIONS


def sections() -> tuple[str, ...]:
    """Every section, in the schema's order."""
    return tuple(SECTIONS)


def redacted(key: str, value: Any) -> Any:
    """``value`` as an operator may see it: staff PIN hashes replaced."""
    if key != "staff" or not isinstance(value, dict):
        return value
    members = value.get("members")
    if not isinstance(members, list):
        return value
    return value | {
        "members": [
            member | {"pin_hash": REDACTED} if isinstance(member, dict) else member
            for member in members
        ]
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the document, as ``GET /api/config/schema`` publishes it."""
    return store_config_json_schema()


__all__ = [
    "SIZE_BUDGET",
    "Checked",
    "Violation",
    "check",
    "is_key",
    "json_schema",
    "platform_defaults",
    "redacted",
    "sections",
    "value_hash",
]
