"""The console's audit page: admins search the audit log by actor, action, outcome and dates,
page back through it, and download what they found as CSV.

Who may: ``audit:read`` (tenant and platform admins; ``policy.page``: a visitor who is not
logged in is sent to ``/login``). A tenant admin sees the entries of their own tenant only — the
same `AuditQuery` scoping as ``GET /api/audit`` — and the CSV link is that API's export with the
same filters, so what is downloaded is what was shown (and more than one page of it). Dates are
whole UTC days, as the page says: from the start of ``first`` to the end of ``last``.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from control_plane.inputs import Utf8
from control_plane.operators import audit
from control_plane.operators.gatekeeper import get_gatekeeper
from control_plane.operators.policy import Action, page
from control_plane.operators.principal import Principal
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from protocols.limits import INT64_MAX, PRINTABLE_PATTERN

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")

AuditPage = Annotated[Principal, page(Action.AUDIT_READ)]
Text = Annotated[str | None, Query(max_length=254, pattern=PRINTABLE_PATTERN), Utf8]
# the search form sends every field, empty ones as "": no filter
Day = Annotated[date | Literal[""] | None, Query(description="a UTC day, YYYY-MM-DD")]
Before = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
PAGE_SIZE = 100


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _when(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, tz=UTC):%Y-%m-%d %H:%M:%S} UTC"


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    principal: AuditPage,
    actor: Text = None,
    action: Text = None,
    outcome: Literal["ok", "refused", ""] | None = None,
    first: Day = None,
    last: Day = None,
    before_id: Before = None,
) -> HTMLResponse:
    """The newest matching entries (100 a page, "older" pages back), with a CSV link."""
    actor, action = actor or None, action or None  # an empty field of the form: no filter
    outcome = outcome or None
    first, last = first or None, last or None
    query = audit.AuditQuery(
        tenant_id=principal.tenant_id,  # a tenant admin sees their tenant's entries only
        actor=actor,
        action=action,
        outcome=outcome,
        since=None if first is None else _day_ms(first),
        until=None if last is None else _day_ms(last + timedelta(days=1)),
        before_id=before_id,
    )
    engine = get_gatekeeper(request).engine
    rows = await audit.search(engine, query=query, limit=PAGE_SIZE)
    filters: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "since": None if first is None else f"{first}T00:00:00Z",
        "until": None if last is None else f"{last + timedelta(days=1)}T00:00:00Z",
    }
    shown = {"actor": actor, "action": action, "outcome": outcome, "first": first, "last": last}
    given = {key: str(value) for key, value in shown.items() if value}
    secret = request.cookies.get(SESSION_COOKIE)
    context = {
        "principal": principal,
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
        "entries": [row | {"when": _when(row["at"])} for row in rows],
        "filters": shown,
        "csv": "/api/audit.csv?" + urlencode({k: v for k, v in filters.items() if v}),
        "older": (
            "/audit?" + urlencode(given | {"before_id": rows[-1]["id"]})
            if len(rows) == PAGE_SIZE
            else None
        ),
        "today": datetime.fromtimestamp(time.time(), tz=UTC).date(),
    }
    return templates.TemplateResponse(request, "audit.html", context)
