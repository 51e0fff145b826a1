"""Send a command to a device and keep its outcome. Keyword-only; domain errors, routers map them.

How it works: :func:`send_command` records the command (no result yet) *before* publishing it at
QoS 1 on ``sf/v1/d/{device}/cmd``, so a result that comes back faster than the insert commits
still finds its row. The ingest worker hands every ``sf.cmd.result`` to :func:`record_result`,
which fills the row once, after checking the result against its command's model
(:mod:`control_plane.commands.results`): a result outside it closes the command as failed with
the reason, and is refused like any malformed message. Whether a command timed out is computed
when it is read (no result and past its deadline): no timer, nothing to lose on a restart, and
every instance agrees. The agent's MQTT session is clean, so a command that reached an offline
appliance is never run later; the operator sees "timed out" and asks again.

Errors are those of ``errors.py`` (``UnknownCommand``, ``CommandNotFound``,
``DeviceUnreachable``) and the registry's ``DeviceNotFound`` and ``DeviceDecommissioned``; the
app's problem handlers turn them into HTTP answers.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import RowMapping, Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.commands.errors import (
    CommandNotFound,
    DeviceDecommissioned,
    DeviceNotFound,
    DeviceUnreachable,
    UnknownCommand,
)
from control_plane.commands.results import checked_result
from control_plane.commands.summary import summarize
from control_plane.commands.tables import commands
from control_plane.devices.tables import devices
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.codec import encode
from protocols.errors import MalformedMessage
from protocols.messages import Command, CommandResult
from protocols.topics import Channel, device_topic
from protocols.vocabulary import CommandName

#: The commands the appliance's fleet agent runs (``edge/agent/commands.py``). Anything else is
#: refused here, so a typo fails at the operator's click instead of as a device-side rejection.
ALLOWED = frozenset(
    {
        CommandName.STOCK_COUNT_START,
        CommandName.STOCK_COUNT_STOP,
        CommandName.PRINTER_TEST_PAGE,
        CommandName.DRAWER_OPEN,
        CommandName.OS_INSTALL,  # a local OS image into the other system slot (issue 15)
    }
)

Status = Literal["pending", "done", "timed_out"]
Recorded = Literal["recorded", "duplicate", "unknown"]


class Publisher(Protocol):
    """Publishes on the control plane's broker connection (the ingest worker's).

    Raises :class:`ConnectionError` when there is no connection to publish on.
    """

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish ``payload`` on ``topic``; returns once the broker has it (QoS 1)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandView:
    """A command as the API shows it, with its status as of ``now``."""

    id: str
    device_id: str
    name: str
    args: dict[str, Any]
    status: Status
    ok: bool | None
    result: dict[str, Any] | None
    error: str | None
    created_at: int
    deadline_at: int
    completed_at: int | None
    summary: str


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def send_command(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    publisher: Publisher,
    device_id: str,
    name: str,
    args: dict[str, Any],
    timeout_s: int = 30,
    now_ms: int | None = None,
) -> CommandView:
    """Record and publish one command; returns it as pending."""
    if name not in ALLOWED:
        raise UnknownCommand(f"unknown command {name!r}; one of {', '.join(sorted(ALLOWED))}")
    async with engine.connect() as conn:
        device = (
            await conn.execute(
                select(devices.c.decommissioned_at).where(
                    devices.c.id == device_id, scope.where(devices.c.tenant_id)
                )
            )
        ).first()
    if device is None:
        raise DeviceNotFound(device_id)
    if device.decommissioned_at is not None:
        raise DeviceDecommissioned(device_id)
    created = _now_ms() if now_ms is None else now_ms
    command = Command(id=uuid.uuid4().hex, name=name, args=args)
    row = {
        "id": command.id,
        "device_id": device_id,
        "name": name,
        "args": json.dumps(args, sort_keys=True),
        "created_at": created,
        "deadline_at": created + timeout_s * 1000,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(commands).values(**row))
    try:
        await publisher.publish(device_topic(device_id, Channel.CMD), encode(command), 1)
    except ConnectionError as err:
        # Not sent (or not known to be): close the row so it does not wait for a result.
        await _complete(
            engine, command_id=command.id, ok=False, result=None, error=f"not sent: {err}"
        )
        raise DeviceUnreachable(f"command not sent to {device_id!r}: {err}") from err
    return await get_command(
        engine, scope=scope, device_id=device_id, command_id=command.id, now_ms=created
    )


#: Command ids are ours: 32 hex digits (``uuid4().hex``). Anything else answers no command.
_COMMAND_ID = re.compile(r"^[0-9a-f]{32}$")


async def record_result(engine: AsyncEngine, device_id: str, result: CommandResult) -> Recorded:
    """Keep the device's answer to one of its commands; the first answer wins.

    Raises :class:`~protocols.errors.MalformedMessage` for a result its command does not allow,
    after closing the command as failed with that reason, so the operator sees why instead of a
    time-out.
    """
    if not _COMMAND_ID.fullmatch(result.id):
        return "unknown"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(commands.c.name, commands.c.completed_at).where(
                    commands.c.id == result.id, commands.c.device_id == device_id
                )
            )
        ).first()
    if row is None:
        return "unknown"
    if row.completed_at is not None:
        return "duplicate"
    try:
        checked_result(row.name, result)
    except MalformedMessage as err:
        await _complete(
            engine,
            command_id=result.id,
            device_id=device_id,
            ok=False,
            result=None,
            error=f"the device's answer was refused: {err.reason}",
        )
        raise
    completed = await _complete(
        engine,
        command_id=result.id,
        device_id=device_id,
        ok=result.ok,
        result=result.result,
        error=result.error,
    )
    return "recorded" if completed else "duplicate"


async def _complete(
    engine: AsyncEngine,
    *,
    command_id: str,
    ok: bool,
    result: dict[str, Any] | None,
    error: str | None,
    device_id: str | None = None,
) -> bool:
    query = update(commands).where(commands.c.id == command_id, commands.c.completed_at.is_(None))
    if device_id is not None:  # a device answers only for its own commands
        query = query.where(commands.c.device_id == device_id)
    async with engine.begin() as conn:
        changed = await conn.execute(
            query.values(
                completed_at=_now_ms(),
                ok=ok,
                result=None if result is None else json.dumps(result, sort_keys=True),
                error=error,
            )
        )
    return bool(changed.rowcount)


def _json_safe(value: object) -> Any:
    """A stored value as the API can send it: no NaN or infinity (an old row may hold one)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _stored_object(text: str | None) -> dict[str, Any] | None:
    """A stored JSON object, whatever the row holds: not JSON or not an object is shown raw."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"raw": text}
    return _json_safe(value) if isinstance(value, dict) else {"raw": _json_safe(value)}


def _view(row: RowMapping, now_ms: int) -> CommandView:
    status: Status = (
        "done"
        if row["completed_at"] is not None
        else "timed_out"
        if now_ms > row["deadline_at"]
        else "pending"
    )
    result = _stored_object(row["result"])
    return CommandView(
        id=row["id"],
        device_id=row["device_id"],
        name=row["name"],
        args=_stored_object(row["args"]) or {},
        status=status,
        ok=row["ok"],
        result=result,
        error=row["error"],
        created_at=row["created_at"],
        deadline_at=row["deadline_at"],
        completed_at=row["completed_at"],
        summary=summarize(
            name=row["name"], status=status, ok=row["ok"], result=result, error=row["error"]
        ),
    )


def _in_scope(scope: TenantScope) -> Select[Any]:
    """Commands of the devices in ``scope`` (a command's tenant is its device's)."""
    return (
        select(commands)
        .join(devices, devices.c.id == commands.c.device_id)
        .where(scope.where(devices.c.tenant_id))
    )


async def get_command(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    command_id: str,
    now_ms: int | None = None,
) -> CommandView:
    """One command of the device, its status as of ``now_ms`` (default: now)."""
    query = _in_scope(scope).where(commands.c.id == command_id, commands.c.device_id == device_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise CommandNotFound(f"no command {command_id!r} for device {device_id!r}")
    return _view(row, _now_ms() if now_ms is None else now_ms)


async def recent_commands(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    device_id: str,
    limit: int = 20,
    now_ms: int | None = None,
) -> list[CommandView]:
    """The device's latest commands, newest first (none for a device out of scope)."""
    query = (
        _in_scope(scope)
        .where(commands.c.device_id == device_id)
        .order_by(commands.c.created_at.desc(), commands.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    now = _now_ms() if now_ms is None else now_ms
    return [_view(row, now) for row in rows]
