"""Console pages: stores, devices with presence and replication health, recent sales."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices import service as devices
from control_plane.sales import service as sales
from control_plane.sales.router import format_minor

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.filters["money"] = format_minor
Engine = Annotated[AsyncEngine, Depends(get_engine)]


def _ago(ms: int | None) -> str:
    if ms is None:
        return "never"
    seconds = max(0, (time.time_ns() // 1_000_000 - ms) // 1000)
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


templates.env.filters["ago"] = _ago


@router.get("/", response_class=HTMLResponse)
async def fleet(request: Request, engine: Engine) -> HTMLResponse:
    """The fleet at a glance."""
    context = {
        "stores": await devices.list_stores(engine),
        "devices": await devices.list_devices(engine),
        "totals": {row["store_id"]: row for row in await sales.totals_by_store(engine)},
        "sales": await sales.recent_sales(engine, limit=25),
    }
    return templates.TemplateResponse(request, "fleet.html", context)
