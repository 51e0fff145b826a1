"""Building a named report for a principal's scope: which facts it reads, which fold it runs.

How it works: :func:`build` checks the filters against the scope first — a store or register of
another tenant answers the same 404 as a missing one — then reads the period's facts (the trends
also the previous period's, loss prevention the 8 weeks before) and folds them into a
:class:`~control_plane.reports.tables.Table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices import service as registry
from control_plane.devices.errors import StoreNotFound
from control_plane.reports import figures
from control_plane.reports.facts import KINDS, read_facts, stores_in_scope
from control_plane.reports.figures import Granularity
from control_plane.reports.period import Period
from control_plane.reports.tables import Table
from control_plane.tenancy import TenantScope
from protocols.vocabulary import JournalKind

ReportName = Literal[
    "summary", "trends", "items", "categories", "tenders", "shifts", "staff", "loss", "taxes",
    "stock", "stores",
]  # fmt: skip
REPORTS: tuple[ReportName, ...] = (
    "summary", "trends", "items", "categories", "tenders", "shifts", "staff", "loss", "taxes",
    "stock", "stores",
)  # fmt: skip

K = JournalKind
_SALES_KINDS = (K.SALE_COMPLETED, K.SALE_RETURNED)
#: What each report reads: fewer kinds, fewer rows.
READS: dict[ReportName, tuple[str, ...]] = {
    "summary": (*_SALES_KINDS, K.SALE_VOIDED, K.SHIFT_CASH_MOVED),
    "trends": _SALES_KINDS,
    "items": _SALES_KINDS,
    "categories": _SALES_KINDS,
    "tenders": _SALES_KINDS,
    "shifts": tuple(KINDS),
    "staff": (*_SALES_KINDS, K.SALE_VOIDED),
    "loss": (*_SALES_KINDS, K.SALE_VOIDED, K.DRAWER_OPENED),
    "taxes": _SALES_KINDS,
    "stock": (K.STOCK_COUNT_COMMITTED,),
    "stores": (*_SALES_KINDS, K.SALE_VOIDED),
}


@dataclass(frozen=True, slots=True)
class Filters:
    """What a report is asked for: the period, and optionally one store or one register."""

    period: Period
    store_id: str | None = None
    device_id: str | None = None
    granularity: Granularity = "day"


async def build(
    engine: AsyncEngine, *, scope: TenantScope, name: ReportName, filters: Filters
) -> Table:
    """The report ``name`` over ``filters``, of the stores ``scope`` sees."""
    store_id = filters.store_id
    if filters.device_id is not None:
        device = await registry.get_device(engine, scope=scope, device_id=filters.device_id)
        if store_id is not None and device["store_id"] != store_id:
            raise StoreNotFound(store_id)
        store_id = device["store_id"]
    stores = await stores_in_scope(engine, scope=scope, store_id=store_id)
    period = filters.period
    reading = period
    if name == "loss":
        reading = figures.history_period(period)
    facts = await read_facts(
        engine, stores_=stores, period=reading, device_id=filters.device_id, kinds=READS[name]
    )
    if name == "trends":
        previous = await read_facts(
            engine,
            stores_=stores,
            period=period.previous(),
            device_id=filters.device_id,
            kinds=READS[name],
        )
        return figures.trends(facts, previous, period, filters.granularity)
    if name == "loss":
        return figures.loss_prevention(facts, period)
    fold = {
        "summary": figures.summary,
        "items": figures.items,
        "categories": figures.categories,
        "tenders": figures.tenders,
        "shifts": figures.shifts,
        "staff": figures.staff,
        "taxes": figures.taxes,
        "stock": figures.stock,
        "stores": figures.stores,
    }[name]
    return fold(facts)
