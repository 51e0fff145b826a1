"""The rollout's rules, pure: states, waves and their gates, deadlines, target and windows.

Nothing here touches the database or the broker: the driver (:mod:`control_plane.rollouts.driver`)
and the progress ingest (:mod:`control_plane.rollouts.progress`) decide with these functions, and
the tests check them without any service running.

Waves: each wave is either an absolute number of devices (``devices``: a canary of 1) or a
cumulative share of the target (``percent``: 5, 25, 100 — "after this wave, this share has been
asked"), assigned once when the rollout is created, in a fixed order. A wave advances when
``success_percent`` of its devices succeeded and it then soaked for ``soak_s``. It halts the
rollout when its failures (failed, reverted, timed out: a revert is a failure) reach
``max_failures`` (an absolute count, hawkBit's error threshold) or, once ``min_executed`` of its
devices have finished either way, ``failure_percent`` of those that finished (AWS IoT Jobs' abort
rule, counted among executed devices only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protocols.release_bundle import FINAL_STATES, ReleaseState

PENDING = "pending"
#: Every per-device state, in the order a release moves through them.
STATES: tuple[str, ...] = (PENDING, *(state.value for state in ReleaseState))
FINAL: frozenset[str] = frozenset(state.value for state in FINAL_STATES)
FAILURES: frozenset[str] = frozenset({"failed", "reverted", "timed_out"})
#: Where a device stands before it finished: the states that have a deadline.
IN_FLIGHT: tuple[str, ...] = tuple(s for s in STATES if s not in FINAL and s != PENDING)

#: Seconds a device may stay silent in each state before the rollout's policy acts.
DEFAULT_DEADLINES: dict[str, int] = {
    "notified": 3600,  # counted from when the device is next seen online (AWS IoT #519)
    "waiting_for_window": 36 * 3600,  # a window comes at least once a day
    "downloading": 1800,
    "verifying": 600,
    "installing": 1800,
    "confirming": 1800,  # the agent's health window, and its State showing the release
}

RolloutStatus = Literal["draft", "running", "paused", "halted", "aborted", "completed"]
WINDOW_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
_TAG = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class WaveIn(BaseModel):
    """One wave: how many devices, how long it soaks, when it advances and when it halts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        None, description="an absolute number of devices in this wave (a canary: 1)"
    )
    percent: Annotated[int, Field(ge=1, le=100)] | None = Field(
        None, description="the share of the target asked once this wave is done (cumulative)"
    )
    soak_s: Annotated[int, Field(ge=0, le=30 * 86400)] = 0
    success_percent: Annotated[int, Field(ge=1, le=100)] = 100
    failure_percent: Annotated[int, Field(ge=0, le=100)] = 10
    min_executed: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    max_failures: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @model_validator(mode="after")
    def _one_size(self) -> WaveIn:
        if (self.devices is None) == (self.percent is None):
            raise ValueError("give a wave either devices (a count) or percent (of the target)")
        return self


class TargetIn(BaseModel):
    """Which devices: the whole tenant, stores carrying any of some tags, stores, or devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tenant", "tags", "stores", "devices"] = "tenant"
    values: Annotated[list[Annotated[str, Field(pattern=_TAG)]], Field(max_length=10_000)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _values(self) -> TargetIn:
        if self.kind == "tenant" and self.values:
            raise ValueError("a tenant-wide target takes no values")
        if self.kind != "tenant" and not self.values:
            raise ValueError(f"a {self.kind} target needs at least one value")
        return self


class RolloutIn(BaseModel):
    """A new rollout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
    name: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")] = ""
    tenant_id: Annotated[str, Field(pattern=_TAG)] | None = Field(
        None, description="platform admins name the tenant; others act in their own"
    )
    target: TargetIn = Field(default_factory=TargetIn)
    waves: Annotated[list[WaveIn], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: [
            WaveIn(devices=1),
            WaveIn(percent=5),
            WaveIn(percent=25),
            WaveIn(percent=100),
        ]
    )
    rate_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    deadlines: dict[str, Annotated[int, Field(ge=1, le=30 * 86400)]] = Field(
        default_factory=dict, description="seconds per in-flight state; defaults for the rest"
    )
    on_silence: Literal["time_out", "wait"] = "time_out"
    maintenance_window: Annotated[str, Field(pattern=WINDOW_PATTERN)] | None = Field(
        None, description="HH:MM-HH:MM in each store's time zone, for stores without their own"
    )
    force: bool = Field(False, description="notify outside maintenance windows (audited)")

    @field_validator("deadlines")
    @classmethod
    def _deadline_states(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(IN_FLIGHT))
        if unknown:
            raise ValueError(f"no deadline for {', '.join(unknown)}; one of {', '.join(IN_FLIGHT)}")
        return value


@dataclass(frozen=True, slots=True)
class Wave:
    """A wave as stored: its spec and how many devices it got."""

    spec: WaveIn
    size: int


def assign_waves(device_ids: Sequence[str], waves: Sequence[WaveIn]) -> list[int]:
    """The wave number of each device (in ``device_ids``' order), each wave filled in turn;
    the last wave takes every device the others left (its size is what remains)."""
    total = len(device_ids)
    numbers: list[int] = []
    for index, wave in enumerate(waves):
        taken = len(numbers)
        if wave.devices is not None:
            size = wave.devices
        else:
            if wave.percent is None:
                raise RuntimeError("a wave has neither a device count nor a percentage")
            size = -(-total * wave.percent // 100) - taken  # ceil, in integers
        if index == len(waves) - 1:
            size = total - taken  # the last wave takes every device left
        size = max(0, min(size, total - taken))
        numbers.extend([index] * size)
    return numbers


@dataclass(frozen=True, slots=True)
class Tally:
    """A wave's devices by outcome."""

    size: int
    succeeded: int
    failures: int

    @property
    def executed(self) -> int:
        """Devices that finished, either way."""
        return self.succeeded + self.failures


def tally(states: Sequence[str]) -> Tally:
    """Count a wave's device states."""
    return Tally(
        size=len(states),
        succeeded=sum(1 for s in states if s == "succeeded"),
        failures=sum(1 for s in states if s in FAILURES),
    )


def halt_reason(wave: WaveIn, counts: Tally) -> str | None:
    """Why the wave halts the rollout, or None."""
    if wave.max_failures is not None and counts.failures >= wave.max_failures:
        return f"{counts.failures} devices failed, the wave's limit is {wave.max_failures}"
    if (
        counts.failures > 0
        and counts.executed >= wave.min_executed
        and counts.failures * 100 >= wave.failure_percent * counts.executed
    ):
        return (
            f"{counts.failures} of {counts.executed} devices that finished failed "
            f"(limit {wave.failure_percent} % once {wave.min_executed} finished)"
        )
    return None


def wave_passed(wave: WaveIn, counts: Tally) -> bool:
    """Whether enough of the wave succeeded to advance (after its soak)."""
    return counts.size == 0 or counts.succeeded * 100 >= wave.success_percent * counts.size


def in_window(window: str, zone: str, now_ms: int) -> bool:
    """Whether ``now_ms`` falls in the daily ``HH:MM-HH:MM`` window of time zone ``zone``.

    A window may cross midnight (``22:00-06:00``); an unknown zone is read as UTC.
    """
    if not re.fullmatch(WINDOW_PATTERN, window):
        raise ValueError(f"{window!r} is not HH:MM-HH:MM")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = datetime.fromtimestamp(now_ms / 1000, tz).time()
    start_text, end_text = window.split("-")
    start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    if start == end:
        return True  # a whole day
    if start < end:
        return start <= local < end
    return local >= start or local < end


def deadline_s(deadlines: dict[str, int], state: str) -> int | None:
    """Seconds allowed in ``state`` (None for pending and final states)."""
    if state not in IN_FLIGHT:
        return None
    return deadlines.get(state, DEFAULT_DEADLINES[state])
