"""The shared dependencies: the engine comes from the app without a worker-thread hop."""

from __future__ import annotations

import inspect
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import engine_of, get_engine


def test_get_engine_is_async_so_fastapi_calls_it_on_the_loop() -> None:
    """A plain `def` dependency runs in FastAPI's thread pool: one hop per request."""
    assert inspect.iscoroutinefunction(get_engine)


async def test_both_give_the_apps_engine() -> None:
    app = FastAPI()
    app.state.engine = sentinel = object()
    seen: dict[str, object] = {}

    @app.get("/probe")
    async def probe(request: Request, engine: Annotated[AsyncEngine, Depends(get_engine)]) -> None:
        seen["dependency"] = engine
        seen["direct"] = engine_of(request)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/probe")).status_code == 200

    assert seen == {"dependency": sentinel, "direct": sentinel}
