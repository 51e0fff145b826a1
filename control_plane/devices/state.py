"""The state each device reports (retained ``sf.state``): release, config, slot, peripheral health.

The cloud keeps only the latest message per device: it is a report, not history (the journal is
the history). Each control-plane instance receives every retained state and writes the same row,
so the write is an idempotent upsert, portable between SQLite and PostgreSQL.

Two guards, one at each end of the row. :class:`ReportedState` is what may be stored: strict
types (no ``"5"`` for 5, no ``1e400``, NaN or a list where an object belongs), bounded sizes, the
shape of ``edge/peripherals/health.py``'s snapshot; a report outside it is refused at ingest as a
malformed message. Reading goes through :func:`_peripheral_view`, which never fails on what it
finds: rows stored before the guard existed still render, their unusable fields left out.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import RowMapping, Select, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import device_state, devices
from control_plane.ingest.refusal import refused
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.limits import (
    ID_LENGTH,
    INT64_MAX,
    INT64_MIN,
    MAP_ENTRIES,
    PRINTABLE_PATTERN,
    Count,
    Identifier,
    Int64,
    Label,
    Text,
)
from protocols.messages import State

#: The last second of year 9999: a ``last_seen`` beyond it is no clock, and milliseconds of it
#: still fit every integer type the pages compute with.
LAST_SECOND = 253_402_300_799.0
MAX_PERIPHERALS = 64
DETAIL_LENGTH = 200

Seconds = Annotated[float, Field(strict=True, ge=0, le=LAST_SECOND, allow_inf_nan=False)]
Slot = Annotated[str, StringConstraints(max_length=16, pattern=PRINTABLE_PATTERN)]
OptionalName = Annotated[str, StringConstraints(max_length=ID_LENGTH, pattern=PRINTABLE_PATTERN)]
DetailValue = (
    Annotated[str, StringConstraints(max_length=DETAIL_LENGTH, pattern=PRINTABLE_PATTERN)]
    | Int64
    | bool
)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PeripheralReport(_Strict):
    """One peripheral's health as ``DeviceHealth.snapshot()`` writes it."""

    device: OptionalName = ""
    kind: OptionalName = ""
    connected: bool | None = None
    error: Text | None = None
    last_seen: Seconds | None = None  # wall-clock seconds on the appliance
    detail: Annotated[dict[Identifier, DetailValue], Field(max_length=MAP_ENTRIES)] = Field(
        default_factory=dict
    )
    counters: Annotated[dict[Identifier, Count], Field(max_length=MAP_ENTRIES)] = Field(
        default_factory=dict
    )


class ReportedState(_Strict):
    """What a device's ``state`` may put in the ``device_state`` row."""

    config_version: Count = 0
    app_release: Label = ""
    slot: Slot = ""
    peripherals: Annotated[
        dict[Identifier, PeripheralReport], Field(max_length=MAX_PERIPHERALS)
    ] = Field(default_factory=dict)


def reported_state(state: State) -> ReportedState:
    """``state`` as it may be stored, or :class:`~protocols.errors.MalformedMessage` saying why."""
    try:
        return ReportedState.model_validate(
            {
                "config_version": state.config_version,
                "app_release": state.app_release,
                "slot": state.slot,
                "peripherals": state.peripherals,
            }
        )
    except ValidationError as err:
        raise refused(State.schema_name, err) from err


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def apply_state(engine: AsyncEngine, device_id: str, state: State) -> bool:
    """Keep ``state`` as the device's latest report; False if the device is not registered.

    Raises :class:`~protocols.errors.MalformedMessage` (before touching the database) for a
    report that does not fit :class:`ReportedState`.
    """
    report = reported_state(state)
    values: dict[str, object] = {
        "config_version": report.config_version,
        "app_release": report.app_release,
        "slot": report.slot,
        "peripherals": json.dumps(
            {name: p.model_dump() for name, p in report.peripherals.items()}, sort_keys=True
        ),
        "received_at": _now_ms(),
    }
    for _attempt in range(2):  # a concurrent first insert by another instance: update instead
        try:
            async with engine.begin() as conn:
                changed = await conn.execute(
                    update(device_state)
                    .where(device_state.c.device_id == device_id)
                    .values(**values)
                )
                if changed.rowcount:
                    return True
                known = await conn.execute(select(devices.c.id).where(devices.c.id == device_id))
                if known.first() is None:
                    return False
                await conn.execute(insert(device_state).values(device_id=device_id, **values))
                return True
        except IntegrityError:
            continue
    return True


# -- reading: whatever is stored renders -----------------------------------------------------------


def _text(value: object) -> str:
    """Any stored value as text a page can show (never raises, never a NaN in a JSON answer)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, default=str)
    except ValueError:
        return str(value)


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and 0 <= seconds <= LAST_SECOND else None


def _peripheral_view(raw: object) -> dict[str, Any]:
    """One stored peripheral in the shape the API and console show, whatever the row holds."""
    health: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    try:
        return PeripheralReport.model_validate(health).model_dump()
    except ValidationError:
        pass  # a row from before the ingest guard: keep what can be shown, drop the rest
    error = health.get("error")
    connected = health.get("connected")
    detail = health.get("detail")
    counters = health.get("counters")
    return {
        "device": _text(health.get("device", "")),
        "kind": _text(health.get("kind", "")),
        "connected": connected if isinstance(connected, bool) else None,
        "error": None if error is None else _text(error),
        "last_seen": _seconds(health.get("last_seen")),
        "detail": {
            str(key): value
            if isinstance(value, str | bool) or _integer(value) is not None
            else _text(value)
            for key, value in (detail.items() if isinstance(detail, Mapping) else ())
        },
        "counters": {
            str(key): number
            for key, value in (counters.items() if isinstance(counters, Mapping) else ())
            if (number := _integer(value)) is not None
        },
    }


def _peripherals_view(text: object) -> dict[str, dict[str, Any]]:
    try:
        raw = json.loads(text) if isinstance(text, str | bytes) else None
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        return {}
    return {str(name): _peripheral_view(health) for name, health in raw.items()}


def _decoded(row: RowMapping) -> dict[str, Any]:
    out = dict(row)
    out["peripherals"] = _peripherals_view(row["peripherals"])
    return out


def _in_scope(scope: TenantScope) -> Select[Any]:
    """Reports of the devices in ``scope`` (a report's tenant is its device's)."""
    return (
        select(device_state)
        .join(devices, devices.c.id == device_state.c.device_id)
        .where(scope.where(devices.c.tenant_id))
    )


async def get_state(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, device_id: str
) -> dict[str, Any] | None:
    """The device's latest report, peripherals decoded; None before its first one (or out of
    scope: look the device up first to tell the two apart)."""
    query = _in_scope(scope).where(device_state.c.device_id == device_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return None if row is None else _decoded(row)


async def states_by_device(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT
) -> dict[str, dict[str, Any]]:
    """The latest report of every device in scope, for the fleet table."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_in_scope(scope))).mappings().all()
    return {row["device_id"]: _decoded(row) for row in rows}


def problems(peripherals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What an operator should look at, one line per peripheral that is not well.

    The printer's error already names the device ("receipt-printer: out of paper"), so it is shown
    as is; a device that is merely disconnected says so.
    """
    found: list[str] = []
    for name, health in sorted(peripherals.items()):
        error = health.get("error")
        if error:
            text = _text(error)
            found.append(text if text.startswith(name) else f"{name}: {text}")
        elif health.get("connected") is False:
            found.append(f"{name}: disconnected")
    return found
