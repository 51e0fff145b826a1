"""Console pages of releases and rollouts: the list with a create form, and one rollout live.

Guarded like every console page (``policy.RolloutsPage``: not logged in goes to ``/login``);
another tenant's rollout answers 404. The buttons and the form are rendered only when the
operator may use them (``rollouts:write``); they call the API with the session's CSRF token
(``X-CSRF-Token``), exactly as the console's other forms, so the API's guard decides in the end.
The rollout page re-reads ``/api/rollouts/{id}`` every few seconds: waves, counts by state and
every device with its reason update without a reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.operators.policy import Action, RolloutsPage, permits
from control_plane.operators.principal import Principal
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.releases import service as releases
from control_plane.rollouts import model, service
from control_plane.tenancy import TenantScope

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def _operator(request: Request, principal: Principal) -> dict[str, Any]:
    """Who is logged in, what the page may offer, and the CSRF token its scripts send."""
    secret = request.cookies.get(SESSION_COOKIE)
    return {
        "principal": principal,
        "can": {"write_rollouts": permits(principal, Action.ROLLOUTS_WRITE)},
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
        "states": model.STATES,
    }


@router.get("/rollouts", response_class=HTMLResponse)
async def rollouts_page(request: Request, engine: Engine, principal: RolloutsPage) -> HTMLResponse:
    """Releases, the tenant's rollouts, and (for operators) the form that creates one."""
    context = _operator(request, principal) | {
        "releases": await releases.list_releases(engine),
        "rollouts": await service.list_rollouts(engine, scope=_scope(principal)),
    }
    return templates.TemplateResponse(request, "rollouts.html", context)


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
async def rollout_page(
    request: Request,
    rollout_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")],
    engine: Engine,
    principal: RolloutsPage,
) -> HTMLResponse:
    """One rollout: its waves, devices by state, every device with its reason; the buttons."""
    view = await service.get_rollout(engine, scope=_scope(principal), rollout_id=rollout_id)
    context = _operator(request, principal) | {"rollout": view}
    return templates.TemplateResponse(request, "rollout.html", context)


def _scope(principal: Principal) -> TenantScope:
    return TenantScope.of(principal)
