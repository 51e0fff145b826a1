"""API shapes of remote commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocols.limits import MAP_ENTRIES, Identifier

#: The most a command's ``args`` may take as JSON; a command's whole message must stay well
#: inside the contract's 64 KiB per ``cmd`` payload.
ARGS_BYTES = 16 * 1024


def _texts(value: object) -> Iterator[str]:
    """Every key and string in a JSON value (the size check has already bounded its depth)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


class CommandIn(BaseModel):
    """What an operator asks a device to do; the device validates ``args`` itself."""

    model_config = ConfigDict(extra="forbid")

    name: Identifier
    args: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAP_ENTRIES,
        description=f"the command's arguments: JSON of at most {ARGS_BYTES} bytes",
    )
    timeout_s: int = Field(
        default=30, ge=1, le=600, description="no result after this long: shown as timed out"
    )

    @field_validator("args")
    @classmethod
    def _sendable(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Refuse what the wire and the store cannot carry: NaN, infinity, NUL, lone surrogates."""
        try:
            wire = json.dumps(args, allow_nan=False, ensure_ascii=False).encode()
        except UnicodeEncodeError as err:
            msg = "args hold text that is not valid Unicode (a lone surrogate)"
            raise ValueError(msg) from err
        except ValueError as err:
            msg = "args hold a number JSON cannot carry (NaN or infinity)"
            raise ValueError(msg) from err
        except RecursionError as err:
            msg = "args nest too deeply"
            raise ValueError(msg) from err
        if any("\x00" in text for text in _texts(args)):
            msg = "args hold a NUL character"
            raise ValueError(msg)
        if len(wire) > ARGS_BYTES:
            msg = f"args take {len(wire)} bytes as JSON; at most {ARGS_BYTES}"
            raise ValueError(msg)
        return args


class CommandOut(BaseModel):
    """A command and, once the device answered, its result."""

    id: str
    device_id: str
    name: str
    args: dict[str, Any]
    status: Literal["pending", "done", "timed_out"]
    ok: bool | None
    result: dict[str, Any] | None
    error: str | None
    created_at: int
    deadline_at: int
    completed_at: int | None
    summary: str = Field(description="the outcome in an operator's words")
