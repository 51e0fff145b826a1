"""REST endpoints of rollouts: create, list, read, and start/pause/resume/abort/retry.

Reading needs ``rollouts:read`` (viewers and up), changing ``rollouts:write`` (operators and
admins); each change is audited (``control_plane.rollouts.service``). Another tenant's rollout
answers 404 like a missing one. A store's maintenance window needs ``stores:write``.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices.errors import StoreNotFound
from control_plane.inputs import Identifier, Limit
from control_plane.operators import audit
from control_plane.operators.gatekeeper import client_address, wall_clock_ms
from control_plane.operators.policy import RolloutsRead, RolloutsWrite, StoresWrite
from control_plane.problems import problem_responses
from control_plane.releases.errors import ReleaseNotFound
from control_plane.rollouts import model, service
from control_plane.rollouts.errors import NoDevicesTargeted, RolloutNotFound, RolloutStateRefused
from control_plane.tenancy import TenantScope

router = APIRouter(prefix="/api", tags=["rollouts"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
RolloutPath = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]


class DeviceOut(BaseModel):
    """One device of a rollout: its wave, state, why, and deadline."""

    device_id: str
    store_id: str
    wave: int
    state: str
    detail: str
    previous_release: str
    state_at: int
    deadline_at: int | None
    notified_at: int | None
    rolled_back_at: int | None
    attempts: int


class WaveOut(BaseModel):
    """One wave: its rules, size and devices by state."""

    number: int
    spec: dict[str, Any]
    size: int
    counts: dict[str, int]


class RolloutOut(BaseModel):
    """A rollout with its devices counted by state (and, for one rollout, waves and devices)."""

    id: str
    tenant_id: str
    release: str
    name: str
    status: str
    reason: str
    current_wave: int
    target: dict[str, Any]
    rate_per_minute: int
    deadlines: dict[str, int]
    on_silence: str
    maintenance_window: str | None
    force: bool
    created_by: str
    created_at: int
    updated_at: int
    counts: dict[str, int]
    waves: list[WaveOut]
    devices: list[DeviceOut]


class MaintenanceWindowIn(BaseModel):
    """A store's daily maintenance window, HH:MM-HH:MM in its time zone: an override of "outside
    its opening hours" (None: no override; its opening hours decide, else any time)."""

    model_config = ConfigDict(extra="forbid")

    maintenance_window: Annotated[str, Field(pattern=model.WINDOW_PATTERN)] | None


def _out(view: service.RolloutView) -> RolloutOut:
    return RolloutOut.model_validate(dataclasses.asdict(view))


@router.post(
    "/rollouts",
    status_code=HTTPStatus.CREATED,
    responses=problem_responses(ReleaseNotFound, NoDevicesTargeted),
)
async def create_rollout(
    request: Request, body: model.RolloutIn, engine: Engine, principal: RolloutsWrite
) -> RolloutOut:
    """Create a rollout (status draft): its devices are chosen and put in waves now."""
    return _out(
        await service.create_rollout(
            engine,
            scope=TenantScope.of(principal),
            spec=body,
            actor=audit.Actor.of(principal),
            client=client_address(request),
            now_ms=wall_clock_ms(),
        )
    )


@router.get("/rollouts", responses=problem_responses())
async def list_rollouts(
    engine: Engine, principal: RolloutsRead, limit: Limit = 100
) -> list[RolloutOut]:
    """The tenant's rollouts, newest first (without their device lists)."""
    views = await service.list_rollouts(engine, scope=TenantScope.of(principal), limit=limit)
    return [_out(view) for view in views]


@router.get("/rollouts/{rollout_id}", responses=problem_responses(RolloutNotFound))
async def get_rollout(
    rollout_id: RolloutPath, engine: Engine, principal: RolloutsRead
) -> RolloutOut:
    """One rollout with its waves and every device's state."""
    return _out(
        await service.get_rollout(engine, scope=TenantScope.of(principal), rollout_id=rollout_id)
    )


async def _act(
    request: Request, engine: AsyncEngine, principal: Any, rollout_id: str, verb: service.Verb
) -> RolloutOut:
    return _out(
        await service.act(
            engine,
            scope=TenantScope.of(principal),
            rollout_id=rollout_id,
            verb=verb,
            actor=audit.Actor.of(principal),
            client=client_address(request),
            now_ms=wall_clock_ms(),
        )
    )


_ACTION_REFUSALS = problem_responses(RolloutNotFound, RolloutStateRefused)


@router.post("/rollouts/{rollout_id}/start", responses=_ACTION_REFUSALS)
async def start_rollout(
    request: Request, rollout_id: RolloutPath, engine: Engine, principal: RolloutsWrite
) -> RolloutOut:
    """Start a draft rollout: the driver notifies its first wave."""
    return await _act(request, engine, principal, rollout_id, "start")


@router.post("/rollouts/{rollout_id}/pause", responses=_ACTION_REFUSALS)
async def pause_rollout(
    request: Request, rollout_id: RolloutPath, engine: Engine, principal: RolloutsWrite
) -> RolloutOut:
    """Pause: no device is notified until it resumes (those notified go on)."""
    return await _act(request, engine, principal, rollout_id, "pause")


@router.post("/rollouts/{rollout_id}/resume", responses=_ACTION_REFUSALS)
async def resume_rollout(
    request: Request, rollout_id: RolloutPath, engine: Engine, principal: RolloutsWrite
) -> RolloutOut:
    """Resume a paused or halted rollout (a halted one asks its rolled-back devices again)."""
    return await _act(request, engine, principal, rollout_id, "resume")


@router.post("/rollouts/{rollout_id}/abort", responses=_ACTION_REFUSALS)
async def abort_rollout(
    request: Request, rollout_id: RolloutPath, engine: Engine, principal: RolloutsWrite
) -> RolloutOut:
    """Abort: every device that was notified gets its previous release back."""
    return await _act(request, engine, principal, rollout_id, "abort")


@router.post("/rollouts/{rollout_id}/retry", responses=_ACTION_REFUSALS)
async def retry_rollout(
    request: Request, rollout_id: RolloutPath, engine: Engine, principal: RolloutsWrite
) -> RolloutOut:
    """Retry the failed, reverted and timed-out devices: pending again, the rollout running."""
    return await _act(request, engine, principal, rollout_id, "retry")


@router.put(
    "/stores/{store_id}/maintenance-window",
    status_code=HTTPStatus.NO_CONTENT,
    responses=problem_responses(StoreNotFound),
)
async def set_maintenance_window(
    request: Request,
    store_id: Annotated[Identifier, PathParam()],
    body: MaintenanceWindowIn,
    engine: Engine,
    principal: StoresWrite,
) -> None:
    """Set a store's maintenance window: rollouts notify its devices only inside it, whatever
    its opening hours say (``control_plane.rollouts.windows``)."""
    await service.set_maintenance_window(
        engine,
        scope=TenantScope.of(principal),
        store_id=store_id,
        maintenance_window=body.maintenance_window,
        actor=audit.Actor.of(principal),
        client=client_address(request),
        now_ms=wall_clock_ms(),
    )
