"""Serving the kiosk's page: uvicorn on the register's port, signals left to the process.

The register's composition (:mod:`edge.register.compose`) runs :func:`kiosk_server` in its
TaskGroup; tests and tools use :func:`serve_kiosk`, which yields once connections are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import uvicorn
from fastapi import FastAPI

from mqttlink.tasks import ServiceTasks


class KioskServer(uvicorn.Server):
    """uvicorn that leaves signal handling to the process around it.

    uvicorn's own handlers would make Ctrl-C or SIGTERM stop only the kiosk; the register's
    TaskGroup (and the fleet agent above it) must see them and close everything in order.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        """Install no handlers: the signals stay with whoever runs the register."""
        yield


def kiosk_server(app: FastAPI, *, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app`` that leaves signal handling to the process around it."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    return KioskServer(config)


@contextlib.asynccontextmanager
async def serve_kiosk(app: FastAPI, *, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """uvicorn serving ``app`` until the context exits; yields once it accepts connections.

    For tests and tools; the register itself runs the server in its TaskGroup.
    """
    server = kiosk_server(app, host=host, port=port)
    async with ServiceTasks(f"kiosk on port {port}") as tasks:
        task = tasks.spawn(server.serve(), name=f"kiosk-http-{port}")
        try:
            while not server.started:
                if task.done():
                    raise RuntimeError(f"kiosk server on port {port} stopped during start")
                await asyncio.sleep(0.01)
            yield server
        finally:
            server.should_exit = True
            await asyncio.wait([task])  # a graceful stop; what it died of comes out of the tasks
