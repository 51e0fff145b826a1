"""REST endpoints of remote commands."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.commands import service
from control_plane.commands.schemas import CommandIn, CommandOut
from control_plane.dependencies import get_engine

router = APIRouter(prefix="/api/devices/{device_id}/commands", tags=["commands"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def get_publisher(request: Request) -> service.Publisher:
    """The app's broker connection: the ingest worker's client."""
    publisher: service.Publisher = request.app.state.ingest
    return publisher


Publisher = Annotated[service.Publisher, Depends(get_publisher)]

_CODES: dict[type[service.CommandError], int] = {
    service.DeviceNotFound: status.HTTP_404_NOT_FOUND,
    service.CommandNotFound: status.HTTP_404_NOT_FOUND,
    service.DeviceDecommissioned: status.HTTP_409_CONFLICT,
    service.UnknownCommand: status.HTTP_400_BAD_REQUEST,
    service.DeviceUnreachable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def _http(err: service.CommandError) -> HTTPException:
    return HTTPException(_CODES.get(type(err), status.HTTP_400_BAD_REQUEST), detail=str(err))


def _out(view: service.CommandView) -> CommandOut:
    return CommandOut.model_validate(dataclasses.asdict(view))


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def send_command(
    device_id: str, body: CommandIn, engine: Engine, publisher: Publisher
) -> CommandOut:
    """Send a command; poll its URL for the result (202: the device has not answered yet)."""
    try:
        view = await service.send_command(
            engine,
            publisher=publisher,
            device_id=device_id,
            name=body.name,
            args=body.args,
            timeout_s=body.timeout_s,
        )
    except service.CommandError as err:
        raise _http(err) from err
    return _out(view)


@router.get("")
async def list_commands(device_id: str, engine: Engine, limit: int = 20) -> list[CommandOut]:
    """The device's latest commands, newest first."""
    views = await service.recent_commands(engine, device_id=device_id, limit=min(limit, 200))
    return [_out(view) for view in views]


@router.get("/{command_id}")
async def get_command(device_id: str, command_id: str, engine: Engine) -> CommandOut:
    """One command: pending, done (with the device's result) or timed out."""
    try:
        return _out(await service.get_command(engine, device_id=device_id, command_id=command_id))
    except service.CommandError as err:
        raise _http(err) from err
