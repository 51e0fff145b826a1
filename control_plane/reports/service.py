"""Building a named report for a principal's scope: which facts it reads, which fold it runs.

How it works: :func:`build` checks the filters against the scope first — a store or register of
another tenant answers the same 404 as a missing one — then reads the period's facts (the trends
also the previous period's, loss prevention the 8 weeks before) and folds them into a
:class:`~control_plane.reports.tables.Table`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices import service as registry
from control_plane.devices.errors import StoreNotFound
from control_plane.reports import figures, rollups
from control_plane.reports.facts import KINDS, StoreInfo, read_facts, stores_in_scope
from control_plane.reports.figures import Granularity, Totals
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
    #: the summary, store comparison and trends from the rollups (False: fold the journal)
    rollups: bool = True


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
    if filters.rollups and name in ROLLED_UP:
        rolled = await _from_rollups(engine, stores, filters, name)
        if rolled is not None:
            return rolled
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


#: The reports that need only sums, read from the rollups (the others fold the journal).
ROLLED_UP = ("summary", "stores", "trends")


async def _from_rollups(
    engine: AsyncEngine, stores: dict[str, StoreInfo], filters: Filters, name: ReportName
) -> Table | None:
    """The report from the rollups, or None when a store's day does not start on a quarter hour
    (then the journal is folded instead)."""
    period = filters.period
    periods = [period, period.previous()] if name == "trends" else [period]
    read: list[dict[str, dict[int, Totals]]] = []
    for each in periods:
        bounds = {store_id: each.bounds(info.timezone) for store_id, info in stores.items()}
        if any(edge % rollups.BUCKET_MS for pair in bounds.values() for edge in pair):
            return None
        read.append(
            await rollups.read(
                engine,
                stores=stores,
                bounds=bounds,
                device_id=filters.device_id,
                by_bucket=name == "trends",  # the summaries: the database adds the buckets up
            )
        )
    exponent = figures.exponent_of_stores(stores.values())
    if name == "trends":
        series = [
            figures.bucketed(
                (
                    (bucket, stores[store_id].timezone, totals.net_minor)
                    for store_id, buckets in by_store.items()
                    for bucket, totals in buckets.items()
                ),
                each,
                filters.granularity,
            )
            for each, by_store in zip(periods, read, strict=True)
        ]
        return figures.trend_table(series[0], series[1], period, filters.granularity, exponent)
    by_store = {
        store_id: _merged(buckets.values()) for store_id, buckets in read[0].items() if buckets
    }
    if name == "stores":
        return figures.stores_of(stores, by_store, exponent)
    by_currency: dict[str, Totals] = {}
    for store_id, totals in by_store.items():
        currency = stores[store_id].currency
        by_currency[currency] = figures.merge(by_currency.get(currency, Totals()), totals)
    return figures.summary_of(by_currency, exponent)


def _merged(parts: Iterable[Totals]) -> Totals:
    total = Totals()
    for part in parts:
        figures.merge(total, part)
    return total
