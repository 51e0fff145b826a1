"""REST endpoints of configuration changes through waves (``staged.py``, ``staged_driver.py``).
Included by ``router.py`` under ``/api/config``:

- ``POST …/{tenants|groups|stores|devices}/{id}/settings/{key}/waves`` — start publishing a key
  through waves (body: the value, and the waves, ``health_s`` and ``deadline_s`` or their
  defaults); refused like setting the key would be (422 with the JSON path), with that layer's
  edit permission. 201 with the change.
- ``GET /api/config/changes`` (``?layer=&target=``) and ``GET /api/config/changes/{id}`` — the
  changes, newest first; one change with its waves and every register's state and reason
  (``config:read``).
- ``POST /api/config/changes/{id}/{pause|resume|abort}`` — steer a change: ``config:write``, and
  for a change of the tenant or a group layer ``tenant_config:write`` too (403 otherwise); 409
  when the action does not apply to its status.

Every start and action is audited in its own transaction; another tenant's change is not found.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from control_plane.configuration import staged
from control_plane.configuration.errors import (
    ChangeNotFound,
    ChangeStateRefused,
    InvalidConfiguration,
    KeyManagedElsewhere,
    SupportAccessRefused,
    UnknownKey,
)
from control_plane.configuration.layer_routes import (
    LAYER_ROUTES,
    Engine,
    LayerRoute,
    Target,
    Writer,
    add_layer_route,
    guard_support_access,
)
from control_plane.configuration.layers import EDITABLE, Layer
from control_plane.configuration.schemas import KEY_PATTERN, StagedChangeOut, StagedIn
from control_plane.configuration.service import EDIT_ACTION
from control_plane.operators.audit import Actor
from control_plane.operators.errors import Forbidden
from control_plane.operators.policy import Action, ConfigRead, ConfigWrite, permits
from control_plane.operators.principal import Principal
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope
from protocols.topics import DEVICE_ID_PATTERN

router = APIRouter(tags=["configuration"])
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="a top-level key of the document")]
ChangeId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the change's id")]
_START_REFUSALS = (UnknownKey, KeyManagedElsewhere, SupportAccessRefused, InvalidConfiguration)
_ACTION_REFUSALS = problem_responses(ChangeNotFound, Forbidden, ChangeStateRefused)


def _out(view: staged.ChangeView) -> StagedChangeOut:
    return StagedChangeOut.model_validate(dataclasses.asdict(view))


def _stage_route(route: LayerRoute) -> None:
    """Start a change of ``route``'s layer through waves."""
    layer = route.layer

    async def stage(
        target: Target, key: Key, body: StagedIn, engine: Engine, principal: Writer
    ) -> StagedChangeOut:
        guard_support_access(principal, [key])
        view = await staged.start_change(
            engine,
            scope=TenantScope.of(principal),
            actor=Actor.of(principal),
            layer=layer,
            target=target,
            key=key,
            value=body.value,
            waves=body.waves,
            health_s=body.health_s,
            deadline_s=body.deadline_s,
        )
        return _out(view)

    add = functools.partial(add_layer_route, router, route)
    add(
        stage,
        operation="stage",
        method="POST",
        path="/settings/{key}/waves",
        name=f"stage_{route.name}_setting",
        refusals=_START_REFUSALS,
        status_code=status.HTTP_201_CREATED,
    )


for _route in LAYER_ROUTES:
    _stage_route(_route)


@router.get("/changes", responses=problem_responses())
async def list_changes(
    engine: Engine,
    principal: ConfigRead,
    layer: Layer | None = None,
    target: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN.pattern)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[StagedChangeOut]:
    """The changes published through waves, newest first, counted by state (no register list);
    ``layer`` and ``target`` narrow them to one layer's."""
    views = await staged.list_changes(
        engine, scope=TenantScope.of(principal), layer=layer, target=target, limit=limit
    )
    return [_out(view) for view in views]


@router.get("/changes/{change_id}", responses=problem_responses(ChangeNotFound))
async def get_change(change_id: ChangeId, engine: Engine, principal: ConfigRead) -> StagedChangeOut:
    """One change through waves: its status and why, its waves and every register's state."""
    return _out(
        await staged.get_change(engine, scope=TenantScope.of(principal), change_id=change_id)
    )


def _may_edit(principal: Principal) -> frozenset[Layer]:
    """The layers ``principal`` may edit, by the policy table."""
    return frozenset(layer for layer in EDITABLE if permits(principal, Action(EDIT_ACTION[layer])))


async def _act(
    engine: Engine, principal: Principal, change_id: str, verb: staged.Verb
) -> StagedChangeOut:
    view = await staged.act(
        engine,
        scope=TenantScope.of(principal),
        actor=Actor.of(principal),
        change_id=change_id,
        verb=verb,
        may_edit=_may_edit(principal),
    )
    return _out(view)


@router.post("/changes/{change_id}/pause", responses=_ACTION_REFUSALS)
async def pause_change(
    change_id: ChangeId, engine: Engine, principal: ConfigWrite
) -> StagedChangeOut:
    """Pause: no register is notified until it resumes (those notified go on settling)."""
    return await _act(engine, principal, change_id, "pause")


@router.post("/changes/{change_id}/resume", responses=_ACTION_REFUSALS)
async def resume_change(
    change_id: ChangeId, engine: Engine, principal: ConfigWrite
) -> StagedChangeOut:
    """Resume a paused change where it was."""
    return await _act(engine, principal, change_id, "resume")


@router.post("/changes/{change_id}/abort", responses=_ACTION_REFUSALS)
async def abort_change(
    change_id: ChangeId, engine: Engine, principal: ConfigWrite
) -> StagedChangeOut:
    """Abort: every register the change reached gets its previous document back."""
    return await _act(engine, principal, change_id, "abort")
