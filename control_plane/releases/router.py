"""REST endpoints of releases: publish and list (operators), download (devices).

Publishing needs ``releases:publish`` (platform admins: releases are platform-wide, signed by
the platform's keys); listing needs ``rollouts:read``. The bundle is the raw request body
(``application/octet-stream``). A device downloads with its own assertion
(``device_auth.OwnDeviceDep``), with ``Range`` (206, ``Content-Range``; 416 past the end) and an
``ETag`` that is the bundle's sha256, so an interrupted download resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices.device_auth import OWN_DEVICE_REFUSALS, OwnDeviceDep
from control_plane.inputs import Limit
from control_plane.operators import audit
from control_plane.operators.gatekeeper import client_address, wall_clock_ms
from control_plane.operators.policy import ReleasesPublish, RolloutsRead
from control_plane.problems import problem_responses
from control_plane.releases import service
from control_plane.releases.errors import (
    BundleRejected,
    BundleTooLarge,
    ReleaseExists,
    ReleaseNotFound,
    ReleasesNotTrusted,
)
from control_plane.releases.store import BundleStore
from control_plane.settings import ControlPlaneSettings

router = APIRouter(prefix="/api", tags=["releases"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
VersionPath = Annotated[
    str, PathParam(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z.+!_-]+$")
]


class ReleaseOut(BaseModel):
    """A published release."""

    version: str
    sha256: str
    size: int
    key_id: str
    signature: str
    min_agent_version: str
    files: list[dict[str, Any]]
    published_by: str
    published_at: int


def settings_of(request: Request) -> ControlPlaneSettings:
    """The settings the app was made with."""
    settings: ControlPlaneSettings = request.app.state.settings
    return settings


def bundle_store(request: Request) -> BundleStore:
    """The app's bundle store (its directory from STOREFLEET_CP_RELEASE_DIR)."""
    return BundleStore(settings_of(request).release_dir)


def _out(view: service.ReleaseView) -> ReleaseOut:
    return ReleaseOut.model_validate(dataclasses.asdict(view))


@router.post(
    "/releases",
    status_code=HTTPStatus.CREATED,
    responses={
        **problem_responses(
            BundleRejected, BundleTooLarge, ReleaseExists, ReleasesNotTrusted, invalid=False
        ),
        200: {"description": "the same bundle was published already", "model": ReleaseOut},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def publish_release(
    request: Request, engine: Engine, principal: ReleasesPublish
) -> JSONResponse:
    """Upload a signed bundle (.sfb): verified against the trusted keys, then kept (201)."""
    settings = settings_of(request)
    store = bundle_store(request)
    upload = await store.receive(request.stream(), max_bytes=settings.release_max_mb * 1024 * 1024)
    view, new = await service.publish(
        engine,
        store=store,
        trusted=settings.trusted_release_keys,
        upload=upload,
        actor=audit.Actor.of(principal),
        client=client_address(request),
        now_ms=wall_clock_ms(),
    )
    return JSONResponse(
        _out(view).model_dump(mode="json"),
        status_code=HTTPStatus.CREATED if new else HTTPStatus.OK,
    )


@router.get("/releases", responses=problem_responses())
async def list_releases(
    engine: Engine, principal: RolloutsRead, limit: Limit = 100
) -> list[ReleaseOut]:
    """Published releases, newest first."""
    return [_out(view) for view in await service.list_releases(engine, limit=limit)]


@router.get("/releases/{version}", responses=problem_responses(ReleaseNotFound))
async def get_release(version: VersionPath, engine: Engine, principal: RolloutsRead) -> ReleaseOut:
    """One published release."""
    return _out(await service.get_release(engine, version))


@router.get(
    "/devices/{device_id}/releases/{version}/bundle",
    response_class=FileResponse,
    responses={
        **problem_responses(ReleaseNotFound, *OWN_DEVICE_REFUSALS),
        206: {"description": "the requested range of the bundle"},
        416: {"description": "the range is past the bundle's end"},
    },
)
async def download_bundle(
    request: Request, version: VersionPath, engine: Engine, device: OwnDeviceDep
) -> Response:
    """The release's bundle for the calling device; ``Range`` resumes a cut download."""
    view = await service.get_release(engine, version)
    path = bundle_store(request).path(view.sha256)
    if path is None:
        raise ReleaseNotFound(f"{version} (its bundle is not on this control plane's disk)")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"storefleet-app-{view.version}.sfb",
        headers={"ETag": f'"{view.sha256}"'},
    )
