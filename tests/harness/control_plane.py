"""The whole control plane app (API, console, ingest) served by uvicorn inside the test's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from control_plane.app import create_app
from control_plane.settings import ControlPlaneSettings
from tests.harness.services import free_port


@asynccontextmanager
async def served_control_plane(*, database_url: str, broker_url: str) -> AsyncIterator[str]:
    """Yield the base URL of a running control plane; stop it cleanly afterwards."""
    port = free_port()
    settings = ControlPlaneSettings(database_url=database_url, broker_url=broker_url, port=port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve(), name="control-plane")
    async with asyncio.timeout(20):
        while not server.started:
            assert not task.done(), "control plane exited at start"
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
