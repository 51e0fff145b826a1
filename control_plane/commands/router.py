"""REST endpoints of remote commands. Refusals are domain errors (``errors.py``, the registry's).

Sending needs ``commands:send``, reading ``devices:read``; a device of another tenant is not found.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.commands import service
from control_plane.commands.errors import (
    CommandNotFound,
    DeviceDecommissioned,
    DeviceNotFound,
    DeviceUnreachable,
    UnknownCommand,
)
from control_plane.commands.schemas import CommandIn, CommandOut
from control_plane.dependencies import get_engine
from control_plane.inputs import DeviceIdPath, Limit, RefPath
from control_plane.operators.policy import CommandsSend, DevicesRead
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope

router = APIRouter(prefix="/api/devices/{device_id}/commands", tags=["commands"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def get_publisher(request: Request) -> service.Publisher:
    """The app's broker connection: the ingest worker's client."""
    publisher: service.Publisher = request.app.state.ingest
    return publisher


Publisher = Annotated[service.Publisher, Depends(get_publisher)]


def _out(view: service.CommandView) -> CommandOut:
    return CommandOut.model_validate(dataclasses.asdict(view))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(
        UnknownCommand, DeviceNotFound, DeviceDecommissioned, DeviceUnreachable
    ),
)
async def send_command(
    device_id: DeviceIdPath,
    body: CommandIn,
    engine: Engine,
    publisher: Publisher,
    principal: CommandsSend,
) -> CommandOut:
    """Send a command; poll its URL for the result (202: the device has not answered yet)."""
    view = await service.send_command(
        engine,
        scope=TenantScope.of(principal),
        publisher=publisher,
        device_id=device_id,
        name=body.name,
        args=body.args,
        timeout_s=body.timeout_s,
    )
    return _out(view)


@router.get("", responses=problem_responses())
async def list_commands(
    device_id: DeviceIdPath, engine: Engine, principal: DevicesRead, limit: Limit = 20
) -> list[CommandOut]:
    """The device's latest commands, newest first."""
    views = await service.recent_commands(
        engine, scope=TenantScope.of(principal), device_id=device_id, limit=limit
    )
    return [_out(view) for view in views]


@router.get("/{command_id}", responses=problem_responses(CommandNotFound))
async def get_command(
    device_id: DeviceIdPath, command_id: RefPath, engine: Engine, principal: DevicesRead
) -> CommandOut:
    """One command: pending, done (with the device's result) or timed out."""
    view = await service.get_command(
        engine, scope=TenantScope.of(principal), device_id=device_id, command_id=command_id
    )
    return _out(view)
