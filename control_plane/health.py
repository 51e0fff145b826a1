"""Liveness and readiness of a control-plane instance.

``/healthz`` is liveness: the process answers HTTP (a supervisor restarts it when it does not).
``/readyz`` is readiness: a load balancer sends traffic only while the instance can do its job —
the database answers, the ingest worker is running (not waiting out a restart after a death) and
holds its broker connection. It answers 503 naming each part that is down, so an operator reads
which one from the probe itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from control_plane.db.engine import DatabaseUnreachable, ping
from control_plane.ingest.worker import IngestWorker
from control_plane.supervision import Supervised

router = APIRouter(tags=["health"])

#: A readiness probe is polled every few seconds: a database slower than this counts as down.
DATABASE_TIMEOUT_S = 2.0


class Check(BaseModel):
    """One part the instance needs, and whether it works right now."""

    ok: bool
    detail: Annotated[str, Field(description="what is wrong, or what works")]


class Readiness(BaseModel):
    """Whether this instance can take traffic, part by part."""

    ready: bool
    checks: Annotated[
        dict[str, Check], Field(description="database, ingest and broker, each ok or not and why")
    ]


class Liveness(BaseModel):
    """The process answers; ``ingest_connected`` is informational (readiness decides)."""

    ok: bool
    ingest_connected: bool


@router.get("/healthz")
async def healthz(request: Request) -> Liveness:
    """Liveness: the process answers. Use ``/readyz`` to know whether it can do its job."""
    return Liveness(ok=True, ingest_connected=request.app.state.ingest.connected.is_set())


async def _database(request: Request) -> Check:
    try:
        await ping(request.app.state.engine, timeout=DATABASE_TIMEOUT_S)
    except DatabaseUnreachable as err:
        return Check(ok=False, detail=str(err))
    return Check(ok=True, detail="answers")


def _ingest(task: Supervised) -> Check:
    if task.running:
        return Check(ok=True, detail=f"running ({task.deaths} restarts so far)")
    return Check(
        ok=False,
        detail=f"not running: died {task.deaths} times, last {task.last_error}; restarting",
    )


def _broker(worker: IngestWorker) -> Check:
    if worker.connected.is_set():
        return Check(ok=True, detail=f"connected to {worker.broker.url}")
    return Check(ok=False, detail=f"not connected to {worker.broker.url}; retrying with backoff")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        status.HTTP_200_OK: {"description": "database, ingest and broker all work"},
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": Readiness,
            "description": "at least one part is down; ``checks`` says which and why",
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 only when the database answers and ingest runs connected to the broker."""
    checks = {
        "database": await _database(request),
        "ingest": _ingest(request.app.state.ingest_task),
        "broker": _broker(request.app.state.ingest),
    }
    ready = all(check.ok for check in checks.values())
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(
        body.model_dump(),
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )
