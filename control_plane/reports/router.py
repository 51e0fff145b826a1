"""Reports over HTTP: each report as JSON (money in integer minor units) and as CSV, and the
console's reports page with its filters, charts and CSV links.

Reading needs ``reports:read`` (``policy.ReportsRead``; the page ``policy.ReportsPage``). The
principal's tenant is the scope: a store or register filter naming another tenant's answers the
same 404 as a missing one, and a list of stores never shows another tenant's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices.errors import DeviceNotFound, StoreNotFound
from control_plane.inputs import IdentifierFilter
from control_plane.operators.policy import ReportsPage, ReportsRead
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.problems import problem_responses
from control_plane.reports import charts
from control_plane.reports.facts import stores_in_scope
from control_plane.reports.figures import Granularity
from control_plane.reports.period import Period, PeriodRefused
from control_plane.reports.service import REPORTS, Filters, ReportName, build
from control_plane.reports.tables import Table
from control_plane.tenancy import TenantScope

router = APIRouter(tags=["reports"])
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")
Engine = Annotated[AsyncEngine, Depends(get_engine)]

#: What a report request may be refused with (besides 401/403, which every guarded route lists).
REFUSALS = (StoreNotFound, DeviceNotFound, PeriodRefused)

First = Annotated[date | None, Query(description="first local date (YYYY-MM-DD); default today")]
Last = Annotated[date | None, Query(description="last local date, inclusive; default: first")]
Bucket = Annotated[Granularity, Query(description="trends: hour of day, day or week")]
PageBucket = Annotated[Granularity | None, Query(description="default: hour for one day")]


def _filters(
    first: date | None, last: date | None, store_id: str | None, device_id: str | None,
    granularity: Granularity,
) -> Filters:  # fmt: skip
    start = first if first is not None else datetime.now(UTC).date()
    return Filters(Period.of(start, last), store_id, device_id, granularity)


@router.get(
    "/api/reports/{name}.csv",
    response_class=Response,
    responses=problem_responses(*REFUSALS) | {200: {"content": {"text/csv": {}}}},
)
async def report_csv(
    name: ReportName,
    engine: Engine,
    principal: ReportsRead,
    first: First = None,
    last: Last = None,
    store_id: IdentifierFilter = None,
    device_id: IdentifierFilter = None,
    granularity: Bucket = "day",
) -> Response:
    """A report as CSV: money as exact decimals, one header row."""
    filters = _filters(first, last, store_id, device_id, granularity)
    table = await build(engine, scope=TenantScope.of(principal), name=name, filters=filters)
    period = f"{filters.period.first}_{filters.period.last}"
    return Response(
        table.as_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="storefleet-{name}-{period}.csv"'},
    )


@router.get("/api/reports/{name}", responses=problem_responses(*REFUSALS))
async def report_json(
    name: ReportName,
    engine: Engine,
    principal: ReportsRead,
    first: First = None,
    last: Last = None,
    store_id: IdentifierFilter = None,
    device_id: IdentifierFilter = None,
    granularity: Bucket = "day",
) -> dict[str, Any]:
    """A report: its columns (with kinds) and rows; money cells are integer minor units."""
    filters = _filters(first, last, store_id, device_id, granularity)
    table = await build(engine, scope=TenantScope.of(principal), name=name, filters=filters)
    return table.as_json() | {"first": str(filters.period.first), "last": str(filters.period.last)}


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
async def reports_page(
    request: Request,
    engine: Engine,
    principal: ReportsPage,
    first: First = None,
    last: Last = None,
    store_id: IdentifierFilter = None,
    device_id: IdentifierFilter = None,
    granularity: PageBucket = None,
) -> HTMLResponse:
    """Every report of the period with its charts and a CSV link each (one day: by hour)."""
    scope = TenantScope.of(principal)
    one_day = first is None or last is None or first == last
    granularity = granularity or ("hour" if one_day else "day")
    filters = _filters(first, last, store_id, device_id, granularity)
    # the first report catches the rollups up (one writer); the others only read, side by side
    first_name, *others = REPORTS
    tables: dict[str, Table] = {
        first_name: await build(engine, scope=scope, name=first_name, filters=filters)
    }
    built = await asyncio.gather(
        *(build(engine, scope=scope, name=name, filters=filters) for name in others)
    )
    tables |= dict(zip(others, built, strict=True))
    query = {
        "first": str(filters.period.first),
        "last": str(filters.period.last),
        "granularity": granularity,
    }
    if store_id:
        query["store_id"] = store_id
    if device_id:
        query["device_id"] = device_id
    today = datetime.now(UTC).date()
    secret = request.cookies.get(SESSION_COOKIE)
    context = {
        "principal": principal,
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
        "tables": tables,
        "filters": filters,
        "query": "&".join(f"{k}={v}" for k, v in query.items()),
        "stores": await stores_in_scope(engine, scope=scope),
        "ranges": {
            "Today": (today, today),
            "Yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
            "Last 7 days": (today - timedelta(days=6), today),
            "Last 28 days": (today - timedelta(days=27), today),
        },
        "charts": {
            "trends": charts.trend_chart(tables["trends"]),
            "tenders": charts.share_chart(tables["tenders"], "tender", "net", "Tender mix"),
            "categories": charts.share_chart(
                tables["categories"], "department", "net", "Net sales by category"
            ),
        },
    }
    return templates.TemplateResponse(request, "reports.html", context)
