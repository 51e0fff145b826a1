"""Stock across stores over HTTP: on-hand, transfers and the reorder list as JSON and CSV, the
low-stock thresholds, and the console's stock page.

Reading needs ``stock:read`` (every role), setting a threshold ``stock:write`` (operators up).
The principal's tenant is the scope: a store filter naming another tenant's store answers the
same 404 as a missing one, and lists never show another tenant's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.dependencies import get_engine
from control_plane.devices.errors import StoreNotFound
from control_plane.inputs import Identifier, IdentifierFilter
from control_plane.operators.policy import Action, StockPage, StockRead, StockWrite, permits
from control_plane.operators.sessions import SESSION_COOKIE, csrf_token
from control_plane.problems import problem_responses
from control_plane.reports.facts import stores_in_scope
from control_plane.reports.tables import Table, table
from control_plane.stock import service
from control_plane.stock.errors import BadThreshold
from control_plane.tenancy import TenantScope

router = APIRouter(tags=["stock"])
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "console" / "templates")
Engine = Annotated[AsyncEngine, Depends(get_engine)]
GtinFilter = Annotated[str | None, Query(pattern=r"^[0-9]{14}$", description="a GTIN-14")]
WindowDays = Annotated[int, Query(ge=1, le=365, description="days of sales averaged")]
CoverDays = Annotated[int, Query(ge=1, le=365, description="days the order should cover")]
Limit = Annotated[int, Query(ge=1, le=5000)]
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


class LevelOut(BaseModel):
    """One store's figure for one GTIN; ``low_at``: its low-stock threshold, if any."""

    store_id: str
    gtin: str
    item_id: str | None
    on_hand: int
    low_at: int | None


class TransferLineOut(BaseModel):
    gtin: str
    sent: int
    received: int
    difference: int


class TransferOut(BaseModel):
    """A transfer's two halves as the cloud has them; ``state``: in_transit, received, or
    received_unsent (the sender's half has not replicated yet)."""

    transfer_id: str
    state: str
    from_store: str | None
    to_store: str | None
    received_store: str | None
    sent_at: int | None
    received_at: int | None
    lines: list[TransferLineOut]


class SuggestionOut(BaseModel):
    """A reorder line; ``per_day`` and ``days_of_cover`` are decimal strings (never floats)."""

    store_id: str
    gtin: str
    item_id: str | None
    on_hand: int
    inbound: int
    low_at: int | None
    per_day: str
    days_of_cover: str | None
    order: int


class ThresholdIn(BaseModel):
    """A level's low-stock threshold in units; null removes it."""

    store_id: Identifier
    gtin: str = Field(pattern=r"^[0-9]{14}$")
    low_at: int | None = Field(default=None, le=10**12)


def _transfer(found: service.Transfer) -> TransferOut:
    return TransferOut(
        transfer_id=found.transfer_id,
        state=found.state,
        from_store=found.from_store,
        to_store=found.to_store,
        received_store=found.received_store,
        sent_at=found.sent_at,
        received_at=found.received_at,
        lines=[
            TransferLineOut(gtin=x.gtin, sent=x.sent, received=x.received, difference=x.difference)
            for x in found.lines
        ],
    )


def _suggestion(s: service.Suggestion) -> SuggestionOut:
    return SuggestionOut(
        store_id=s.store_id, gtin=s.gtin, item_id=s.item_id, on_hand=s.on_hand,
        inbound=s.inbound, low_at=s.low_at, per_day=str(s.per_day),
        days_of_cover=None if s.days_of_cover is None else str(s.days_of_cover), order=s.order,
    )  # fmt: skip


def on_hand_table(levels: Sequence[service.Level]) -> Table:
    out = table(
        "on_hand",
        "On hand",
        [("store", "Store", "text"), ("gtin", "GTIN", "text"), ("item", "Item", "text"),
         ("on_hand", "On hand", "count"), ("low_at", "Low at", "count")],
    )  # fmt: skip
    out.rows.extend((x.store_id, x.gtin, x.item_id or "", x.on_hand, x.low_at) for x in levels)
    return out


def reorder_table(suggestions: Sequence[service.Suggestion]) -> Table:
    out = table(
        "reorder",
        "Reorder suggestions",
        [("store", "Store", "text"), ("gtin", "GTIN", "text"), ("item", "Item", "text"),
         ("on_hand", "On hand", "count"), ("inbound", "In transit to it", "count"),
         ("low_at", "Low at", "count"), ("per_day", "Sold per day", "quantity"),
         ("cover", "Days of cover", "quantity"), ("order", "Order", "count")],
    )  # fmt: skip
    out.rows.extend(
        (s.store_id, s.gtin, s.item_id or "", s.on_hand, s.inbound, s.low_at, s.per_day,
         s.days_of_cover, s.order)
        for s in suggestions
    )  # fmt: skip
    return out


def _csv(out: Table, name: str) -> Response:
    return Response(
        out.as_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="storefleet-{name}.csv"'},
    )


@router.get("/api/stock/on-hand", responses=problem_responses(StoreNotFound))
async def get_on_hand(
    engine: Engine,
    principal: StockRead,
    store_id: IdentifierFilter = None,
    gtin: GtinFilter = None,
    limit: Limit = 500,
) -> list[LevelOut]:
    """On-hand per store and GTIN in your tenant, projected from the replicated journal."""
    levels = await service.on_hand(
        engine, scope=TenantScope.of(principal), store_id=store_id, gtin=gtin, limit=limit
    )
    return [LevelOut.model_validate(service.as_dict(x)) for x in levels]


@router.get(
    "/api/stock/on-hand.csv",
    response_class=Response,
    responses=problem_responses(StoreNotFound) | CSV,
)
async def on_hand_csv(
    engine: Engine,
    principal: StockRead,
    store_id: IdentifierFilter = None,
    gtin: GtinFilter = None,
    limit: Limit = 5000,
) -> Response:
    """The same figures as CSV."""
    levels = await service.on_hand(
        engine, scope=TenantScope.of(principal), store_id=store_id, gtin=gtin, limit=limit
    )
    return _csv(on_hand_table(levels), "on-hand")


@router.get("/api/stock/transfers", responses=problem_responses(StoreNotFound))
async def get_transfers(
    engine: Engine, principal: StockRead, store_id: IdentifierFilter = None
) -> list[TransferOut]:
    """Transfers of your tenant (or touching one store), newest first, with their differences."""
    found = await service.transfers(engine, scope=TenantScope.of(principal), store_id=store_id)
    return [_transfer(x) for x in found]


@router.get("/api/stock/reorder", responses=problem_responses(StoreNotFound))
async def get_reorder(
    engine: Engine,
    principal: StockRead,
    store_id: IdentifierFilter = None,
    window_days: WindowDays = 28,
    cover_days: CoverDays = 14,
) -> list[SuggestionOut]:
    """What to order: items short of ``cover_days`` of their average sales, or at threshold."""
    found = await service.reorder(
        engine, scope=TenantScope.of(principal), store_id=store_id,
        window_days=window_days, cover_days=cover_days,
    )  # fmt: skip
    return [_suggestion(s) for s in found]


@router.get(
    "/api/stock/reorder.csv",
    response_class=Response,
    responses=problem_responses(StoreNotFound) | CSV,
)
async def reorder_csv(
    engine: Engine,
    principal: StockRead,
    store_id: IdentifierFilter = None,
    window_days: WindowDays = 28,
    cover_days: CoverDays = 14,
) -> Response:
    """The reorder list as CSV."""
    found = await service.reorder(
        engine, scope=TenantScope.of(principal), store_id=store_id,
        window_days=window_days, cover_days=cover_days,
    )  # fmt: skip
    return _csv(reorder_table(found), "reorder")


@router.put("/api/stock/thresholds", responses=problem_responses(StoreNotFound, BadThreshold))
async def put_threshold(engine: Engine, body: ThresholdIn, principal: StockWrite) -> LevelOut:
    """Set a store's low-stock threshold for a GTIN: an alert opens when the figure crosses it."""
    level = await service.set_threshold(
        engine, scope=TenantScope.of(principal), store_id=body.store_id, gtin=body.gtin,
        low_at=body.low_at,
    )  # fmt: skip
    return LevelOut.model_validate(service.as_dict(level))


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@router.get("/stock", response_class=HTMLResponse, include_in_schema=False)
async def stock_page(
    request: Request,
    engine: Engine,
    principal: StockPage,
    store_id: IdentifierFilter = None,
) -> HTMLResponse:
    """On-hand of a store (or every store), the reorder list and transfers, with CSV links."""
    scope = TenantScope.of(principal)
    stores = await stores_in_scope(engine, scope=scope)
    levels = await service.on_hand(engine, scope=scope, store_id=store_id, limit=500)
    suggestions = await service.reorder(engine, scope=scope, store_id=store_id, limit=200)
    moved = await service.transfers(engine, scope=scope, store_id=store_id, limit=50)
    secret = request.cookies.get(SESSION_COOKIE)
    context: dict[str, Any] = {
        "principal": principal,
        "csrf_token": csrf_token(secret) if secret and principal.via == "session" else "",
        "can_write": permits(principal, Action.STOCK_WRITE),
        "stores": stores,
        "store_id": store_id or "",
        "on_hand": on_hand_table(levels),
        "reorder": reorder_table(suggestions),
        "transfers": [_transfer(x) for x in moved],
        "when": _when,
    }
    return templates.TemplateResponse(request, "stock.html", context)
