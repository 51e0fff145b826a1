"""Logs an appliance uploads when an operator asks (``logs.upload``): kept, listed, read.

How it works: the fleet agent POSTs the tail of the register's log (at most 1 MiB of text) to
``/api/devices/{device_id}/logs``; the control plane stores it in ``device_logs`` and answers with
its id, which the agent returns in the command's result. Bulk data goes over HTTPS with only a
pointer on MQTT (ARCHITECTURE.md). Operators list a device's uploads and read one by id.

Who may: the upload is the device's own, proven by its assertion (``device_auth.OwnDeviceDep``:
signed with its key for this request, its current certificate, never replayed, and the path's
``{device_id}`` must be the signer's, else 403): no one can plant logs under another device's
name. Reading is an operator's ``devices:read`` (``policy.DevicesRead``), and only for a device
of the operator's own tenant (another tenant's device is not found, as everywhere).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.metadata import metadata
from control_plane.dependencies import get_engine
from control_plane.devices import service
from control_plane.devices.device_auth import OWN_DEVICE_REFUSALS, OwnDeviceDep
from control_plane.devices.errors import DeviceNotFound, RegistryError
from control_plane.inputs import DeviceIdPath
from control_plane.operators.policy import DevicesRead
from control_plane.operators.principal import Principal
from control_plane.problems import problem_responses

#: The most one upload may carry (the agent sends the last 512 KiB by default).
MAX_LOG_BYTES = 1024 * 1024

device_logs = Table(
    "device_logs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.id"), nullable=False),
    Column("source", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_device_logs_device_received", "device_id", "received_at"),
)

router = APIRouter(prefix="/api", tags=["device logs"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]


class LogNotFound(RegistryError):  # noqa: N818 - named for what was refused
    """No upload with that id for that device."""

    status = status.HTTP_404_NOT_FOUND
    reason = "log_not_found"

    def __init__(self, device_id: str, log_id: str) -> None:
        super().__init__(f"device {device_id!r} has no log {log_id!r}")


class LogUploadIn(BaseModel):
    """What the agent uploads: which log, its last lines, whether older ones were left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default="register", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    text: str = Field(max_length=MAX_LOG_BYTES)
    truncated: bool = False

    @field_validator("text")
    @classmethod
    def _storable(cls, value: str) -> str:
        if len(value.encode()) > MAX_LOG_BYTES:
            raise ValueError(f"at most {MAX_LOG_BYTES} bytes of UTF-8 per upload")
        if "\x00" in value:  # PostgreSQL's text refuses NUL; the agent never sends one
            raise ValueError("NUL characters cannot be stored")
        return value


class LogOut(BaseModel):
    """One upload, without its text."""

    id: str
    device_id: str
    source: str
    bytes: int
    truncated: bool
    received_at: int


class LogTextOut(LogOut):
    """One upload with its text."""

    text: str


@router.post(
    "/devices/{device_id}/logs",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*OWN_DEVICE_REFUSALS),
)
async def upload_log(body: LogUploadIn, engine: Engine, device: OwnDeviceDep) -> LogOut:
    """Keep an appliance's uploaded log (the ``logs.upload`` command) and answer its id.

    Only the device itself may upload (its assertion, for its own ``{device_id}``)."""
    row = {
        "id": uuid.uuid4().hex,
        "device_id": device.device_id,
        "source": body.source,
        "text": body.text,
        "bytes": len(body.text.encode()),
        "truncated": body.truncated,
        "received_at": time.time_ns() // 1_000_000,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(device_logs).values(row))
    return LogOut.model_validate(row)


async def _visible(engine: AsyncEngine, device_id: str, principal: Principal) -> None:
    """The device exists and is the principal's tenant's, else :class:`DeviceNotFound`."""
    device = await service.get_device(engine, device_id=device_id)
    if not principal.sees_tenant(str(device["tenant_id"])):
        raise DeviceNotFound(device_id)


@router.get("/devices/{device_id}/logs", responses=problem_responses(DeviceNotFound))
async def list_logs(
    device_id: DeviceIdPath, engine: Engine, principal: DevicesRead
) -> list[LogOut]:
    """The device's uploads, newest first (the last 100)."""
    await _visible(engine, device_id, principal)
    columns = [c for c in device_logs.c if c.name != "text"]
    query = (
        select(*columns)
        .where(device_logs.c.device_id == device_id)
        .order_by(device_logs.c.received_at.desc())
        .limit(100)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [LogOut.model_validate(dict(row)) for row in rows]


@router.get(
    "/devices/{device_id}/logs/{log_id}", responses=problem_responses(DeviceNotFound, LogNotFound)
)
async def read_log(
    device_id: DeviceIdPath,
    log_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the upload's id")],
    engine: Engine,
    principal: DevicesRead,
) -> LogTextOut:
    """One upload with its text."""
    await _visible(engine, device_id, principal)
    query = select(device_logs).where(
        device_logs.c.device_id == device_id, device_logs.c.id == log_id
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise LogNotFound(device_id, log_id)
    return LogTextOut.model_validate(dict(row))
