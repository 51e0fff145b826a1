"""API shapes of remote commands."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CommandIn(BaseModel):
    """What an operator asks a device to do; the device validates ``args`` itself."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: int = Field(
        default=30, ge=1, le=600, description="no result after this long: shown as timed out"
    )


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
