"""The kiosk's uvicorn server leaves SIGINT and SIGTERM to the process that runs the register."""

from __future__ import annotations

import signal

import httpx
import pytest
from fastapi import FastAPI

from edge.kiosk.server import serve_kiosk
from tests.harness.services import free_port


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_serving_the_kiosk_installs_no_signal_handler(signum: signal.Signals) -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    before = signal.getsignal(signum)
    port = free_port()
    async with serve_kiosk(app, host="127.0.0.1", port=port), httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/ping")
        during = signal.getsignal(signum)
    assert answer.json() == "pong"
    assert during is before
