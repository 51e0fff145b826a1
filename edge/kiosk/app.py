"""The kiosk app factory: page, static files, commands, and the live WebSocket.

How it works: ``create_kiosk_app`` gets a started ``Register`` (or None and ``enrolled=False``
on a fresh appliance) and the replicator's ``connected`` event. Its lifespan runs two small
loops in one TaskGroup — the link watch (offline badge, backlog) and the idle tick (auto-lock)
— so neither can die unseen. ``/ws`` sends the whole state whenever it changed and accepts
``{"type": "scan", "code": …}`` from the page's keyboard-wedge reader (a scanner that types
digits and Enter), which takes the same path as a scan from the scanner service. Before
enrolment the same scan (the enrolment QR, up to 2 kB) goes to the ``first_boot`` desk instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from edge.kiosk import api, enrol_api, loyalty_api, stock_api
from edge.kiosk.enrolment_desk import DeskBusy, EnrolmentDesk
from edge.kiosk.live import LinkWatch
from edge.kiosk.screen import Screen
from edge.pos.register import Register

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def create_kiosk_app(
    *,
    register: Register | None,
    enrolled: bool,
    connected: asyncio.Event | None = None,
    first_boot: EnrolmentDesk | None = None,
    link_interval: float = 0.2,
    idle_interval: float = 1.0,
) -> FastAPI:
    """The kiosk ASGI app; nothing runs until its lifespan starts.

    ``first_boot`` is the enrolment desk of an appliance without an identity; whoever runs the
    register runs its loop (it must outlive any one page).
    """
    ledger = None if register is None else register.ledger
    link = LinkWatch(ledger=ledger, connected=connected, on_change=lambda: None)
    link.interval = link_interval
    screen = Screen(register=register, enrolled=enrolled, link=link, first_boot=first_boot)
    link.on_change = screen.hub.poke

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with asyncio.TaskGroup() as tasks:
            watch = tasks.create_task(link.run(), name="kiosk-link-watch")
            idle = tasks.create_task(_idle_ticks(screen, idle_interval), name="kiosk-idle")
            try:
                yield
            finally:
                watch.cancel()
                idle.cancel()

    app = FastAPI(title="storefleet kiosk", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.screen = screen
    app.include_router(api.router)
    app.include_router(enrol_api.router)
    app.include_router(stock_api.router)
    app.include_router(loyalty_api.router)  # points and store credit as tenders (issue 14)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "kiosk.html", {"initial": json.dumps(screen.state()).replace("<", "\\u003c")}
        )

    @app.get("/kiosk/screens", include_in_schema=False)
    async def screens() -> dict[str, int]:
        """How many pages hold the live WebSocket open: the kiosk session's wrapper reads it to
        tell a screen that shows the page from a browser that runs but never opened it (a blank
        or white screen; edge/agent/kiosk_session.py)."""
        return {"screens": screen.hub.screens}

    @app.websocket("/ws")
    async def live(socket: WebSocket) -> None:
        await socket.accept()
        dirty = screen.hub.join()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_push(socket, screen, dirty), name="kiosk-ws-push")
                tasks.create_task(_receive(socket, screen), name="kiosk-ws-receive")
        except* WebSocketDisconnect:
            pass
        finally:
            screen.hub.leave(dirty)

    return app


async def _idle_ticks(screen: Screen, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        if screen.register is not None:
            screen.register.tick()


async def _push(socket: WebSocket, screen: Screen, dirty: asyncio.Event) -> None:
    while True:
        await dirty.wait()
        dirty.clear()
        await socket.send_text(json.dumps({"type": "state", "state": screen.state()}))


async def _receive(socket: WebSocket, screen: Screen) -> None:
    while True:
        message: dict[str, Any] = await socket.receive_json()
        kind = message.get("type")
        if kind == "scan" and screen.register is not None and screen.enrolled:
            code = str(message.get("code", ""))[:64]
            response = await api.run(
                screen,
                screen.register.scan(code, cart_id=message.get("cart_id")),
                scanned=code,
            )
            await socket.send_text(
                json.dumps({"type": "scanned", "ok": response.status_code == 200})
            )
        elif kind == "scan" and screen.first_boot is not None and not screen.enrolled:
            answer: dict[str, Any] = {"type": "scanned", "ok": True}
            try:
                screen.first_boot.submit(str(message.get("code", "")))
            except DeskBusy as err:
                answer.update(ok=False, why=str(err))
            await socket.send_text(json.dumps(answer))
        elif kind == "ping":
            await socket.send_text(json.dumps({"type": "pong", "t": message.get("t")}))
