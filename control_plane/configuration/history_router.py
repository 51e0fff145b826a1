"""REST endpoints of configuration history: preview a change, list a layer's versions, roll a
layer back, list a device's effective-document versions. Included by ``router.py`` under
``/api/config``, beside the layer they act on:

- ``POST …/{tenants|groups|stores|devices}/{id}/settings/preview`` — what a change (or a
  rollback) would do; nothing stored, no audit entry for the preview itself (it changes nothing;
  a refused one is still audited by the guard). The same action as editing that layer.
- ``GET …/settings/history`` — the layer's versions, newest first (``config:read``), a page at a
  time: ``?limit=`` (1–200, default 50) versions; when older ones remain the answer carries
  ``Link: <…?limit=50&before=N>; rel="next"``, N being the last version listed, and following it
  lists the versions older than N. The cursor is a version number, so a change made meanwhile
  (a newer version) never shifts or repeats a page.
- ``POST …/settings/rollback`` — restore a version as a new one: audited, validated and published
  like any change (the action of editing that layer).
- ``GET /api/config/devices/{device_id}/versions`` — the device's document versions, paged the
  same way.

Another tenant's layer or device is not found (404), as everywhere in the configuration API.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Protocol, TypeVar

from fastapi import APIRouter, Query, Request, Response

from control_plane.configuration import history, preview, rollback
from control_plane.configuration.errors import (
    InvalidConfiguration,
    KeyManagedElsewhere,
    LayerVersionNotFound,
    NothingToRestore,
    SettingNotFound,
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
    wake_publisher,
)
from control_plane.configuration.schemas import (
    DeviceVersionOut,
    LayerVersionOut,
    PreviewIn,
    PreviewOut,
    RestoredOut,
    RollbackIn,
)
from control_plane.devices.errors import DeviceNotFound
from control_plane.inputs import DeviceIdPath
from control_plane.operators import audit
from control_plane.operators.audit import Actor
from control_plane.operators.policy import ConfigRead
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope

router = APIRouter(tags=["configuration"])
PAGE = 50  # versions per page unless the client asks for another number
Limit = Annotated[
    int, Query(ge=1, le=history.MAX_LISTED, description="versions per page (1-200, default 50)")
]
Before = Annotated[
    int | None,
    Query(
        ge=1,
        description="the cursor: only versions older than this one (the Link rel=next header "
        "of the previous page names it)",
    ),
]


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


def _page(request: Request, response: Response, found: list[V], limit: int) -> list[V]:
    """The first ``limit`` of ``found`` (asked for one more); a Link to the next page if any."""
    if len(found) <= limit:
        return found
    shown = found[:limit]
    following = request.url.include_query_params(limit=limit, before=shown[-1].version)
    response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return shown


_PREVIEW_REFUSALS = (
    UnknownKey,
    KeyManagedElsewhere,
    InvalidConfiguration,
    SettingNotFound,
    LayerVersionNotFound,
    NothingToRestore,
)
_ROLLBACK_REFUSALS = (
    LayerVersionNotFound,
    NothingToRestore,
    SupportAccessRefused,
    InvalidConfiguration,
)


def _history_routes(route: LayerRoute) -> None:
    """Preview a change, list the versions and roll back ``route``'s layer."""
    layer = route.layer

    async def preview_layer(
        target: Target, body: PreviewIn, engine: Engine, principal: Writer
    ) -> PreviewOut:
        scope, actor = TenantScope.of(principal), Actor.of(principal)
        if body.restore is not None:
            found = await preview.preview_rollback(
                engine, scope=scope, actor=actor, layer=layer, target=target, version=body.restore
            )
        else:
            found = await preview.preview_change(
                engine,
                scope=scope,
                actor=actor,
                layer=layer,
                target=target,
                values=body.values,
                delete=body.delete,
            )
        audit.changed_nothing()
        return PreviewOut.model_validate(dataclasses.asdict(found))

    async def layer_history(
        target: Target,
        engine: Engine,
        principal: ConfigRead,
        request: Request,
        response: Response,
        limit: Limit = PAGE,
        before: Before = None,
    ) -> list[LayerVersionOut]:
        versions = await history.layer_history(
            engine,
            scope=TenantScope.of(principal),
            layer=layer,
            target=target,
            limit=limit + 1,
            before=before,
        )
        shown = _page(request, response, versions, limit)
        return [LayerVersionOut.model_validate(dataclasses.asdict(v)) for v in shown]

    async def rollback_layer(
        request: Request, target: Target, body: RollbackIn, engine: Engine, principal: Writer
    ) -> RestoredOut:
        done = await rollback.rollback_layer(
            engine,
            scope=TenantScope.of(principal),
            actor=Actor.of(principal),
            layer=layer,
            target=target,
            version=body.version,
            may_change=functools.partial(guard_support_access, principal),
        )
        wake_publisher(request)
        return RestoredOut.model_validate(dataclasses.asdict(done) | {"layer": done.layer.value})

    add = functools.partial(add_layer_route, router, route)
    add(
        preview_layer,
        operation="preview",
        method="POST",
        path="/settings/preview",
        name=f"preview_{route.name}",
        refusals=_PREVIEW_REFUSALS,
    )
    add(
        layer_history,
        operation="history",
        method="GET",
        path="/settings/history",
        name=f"{route.name}_history",
    )
    add(
        rollback_layer,
        operation="rollback",
        method="POST",
        path="/settings/rollback",
        name=f"rollback_{route.name}",
        refusals=_ROLLBACK_REFUSALS,
    )


for _route in LAYER_ROUTES:
    _history_routes(_route)


@router.get("/devices/{device_id}/versions", responses=problem_responses(DeviceNotFound))
async def device_versions(
    device_id: DeviceIdPath,
    engine: Engine,
    principal: ConfigRead,
    request: Request,
    response: Response,
    limit: Limit = PAGE,
    before: Before = None,
) -> list[DeviceVersionOut]:
    """The versions of the device's effective document, newest first, each with its cause;
    a page at a time (``Link: <…>; rel="next"`` while older ones remain)."""
    found = await history.device_versions(
        engine,
        scope=TenantScope.of(principal),
        device_id=device_id,
        limit=limit + 1,
        before=before,
    )
    shown = _page(request, response, found, limit)
    return [DeviceVersionOut.model_validate(dataclasses.asdict(v)) for v in shown]
