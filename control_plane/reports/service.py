"""Building a named report for a principal's scope: which facts it reads, which fold it runs.

How it works: :func:`build` checks the filters against the scope first — a store or register of
another tenant answers the same 404 as a missing one — then reads the report's sums from the rollups
(:mod:`~control_plane.reports.rollups`: every report but the shift close and the stock counts)
or folds the period's facts from the journal (the trends also the previous period's, loss
prevention the 8 weeks before) into a :class:`~control_plane.reports.tables.Table`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices import service as registry
from control_plane.devices.errors import StoreNotFound
from control_plane.reports import figures, rollup_tables, rollups, sum_figures
from control_plane.reports.facts import KINDS, StoreInfo, Where, read_facts, stores_in_scope
from control_plane.reports.figures import Granularity, Totals
from control_plane.reports.period import Period
from control_plane.reports.rollup_fold import Row, fold_facts, regroup
from control_plane.reports.rollup_tables import Spec
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
    if name in SUM_REPORTS:
        return await _sum_report(engine, stores, filters, name)
    facts = await read_facts(
        engine, stores_=stores, period=period, device_id=filters.device_id, kinds=READS[name]
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
    fold = {
        "summary": figures.summary,
        "shifts": figures.shifts,
        "stock": figures.stock,
        "stores": figures.stores,
    }[name]
    return fold(facts)


@dataclass(frozen=True, slots=True)
class SumQuery:
    """A report that is the sums of one rollup table, grouped by ``by`` (and per store and
    bucket, or per currency)."""

    spec: Spec
    by: tuple[str, ...] = ()
    per_store_bucket: bool = False
    nonzero: tuple[str, ...] = ()


SUM_REPORTS: dict[ReportName, SumQuery] = {
    "items": SumQuery(rollup_tables.ITEMS, ("item_id", "department")),
    "categories": SumQuery(rollup_tables.ITEMS, ("department",)),
    "tenders": SumQuery(rollup_tables.TENDERS, ("tender",)),
    "staff": SumQuery(rollup_tables.STAFF, ("cashier",)),
    "taxes": SumQuery(rollup_tables.TAXES, ("rate",)),
    "loss": SumQuery(
        rollup_tables.TOTALS,
        per_store_bucket=True,
        nonzero=tuple(sum_figures.MEASURES.values()),
    ),
}


async def _sum_report(
    engine: AsyncEngine, stores: dict[str, StoreInfo], filters: Filters, name: ReportName
) -> Table:
    """A report of sums: read from the rollups (caught up first), or — with ``rollups`` off or a
    store whose day does not start on a quarter hour — folded from the journal the same way."""
    query = SUM_REPORTS[name]
    period = sum_figures.history_period(filters.period) if name == "loss" else filters.period
    bounds = {store_id: period.bounds(info.timezone) for store_id, info in stores.items()}
    rows: dict[tuple[object, ...], Row]
    if filters.rollups and not any(edge % rollups.BUCKET_MS for b in bounds.values() for edge in b):
        await rollups.catch_up_stores(engine, list(stores), device_id=filters.device_id)
        rows = await rollups.read_sums(
            engine,
            query.spec,
            stores=stores,
            bounds=bounds,
            device_id=filters.device_id,
            by=query.by,
            by_bucket=query.per_store_bucket,
            per="store" if query.per_store_bucket else "currency",
            nonzero=query.nonzero,
        )
    else:
        facts = await read_facts(
            engine, stores_=stores, period=period, device_id=filters.device_id, kinds=READS[name]
        )

        def group(at: Where) -> tuple[object, ...]:
            if query.per_store_bucket:
                return (at.store_id, rollups.bucket_of(at.ts))
            return (stores[at.store_id].currency,)

        folded = fold_facts(facts, group)[query.spec.name]
        keep = 2 if query.per_store_bucket else 1
        rows = regroup(folded.items(), query.spec, by=query.by, keep=keep)
    if name == "loss":
        return sum_figures.loss_prevention(rows, stores, filters.period)
    exponent = figures.exponent_of_stores(stores.values())
    table_of = {
        "items": sum_figures.items,
        "categories": sum_figures.categories,
        "tenders": sum_figures.tenders,
        "staff": sum_figures.staff,
        "taxes": sum_figures.taxes,
    }[name]
    return table_of(rows, exponent)


#: The reports that need only sums, read from the rollups (the others fold the journal).
ROLLED_UP = ("summary", "stores", "trends")


#: The trends read only net sales (sales − returns) from the totals' rollup.
NET = Spec(rollup_tables.report_rollups, (), ("sales_minor", "returns_minor"))


async def _from_rollups(
    engine: AsyncEngine, stores: dict[str, StoreInfo], filters: Filters, name: ReportName
) -> Table | None:
    """The report from the rollups, or None when a store's day does not start on a quarter hour
    (then the journal is folded instead)."""
    period = filters.period
    periods = [period, period.previous()] if name == "trends" else [period]
    all_bounds = [
        {store_id: each.bounds(info.timezone) for store_id, info in stores.items()}
        for each in periods
    ]
    if any(edge % rollups.BUCKET_MS for b in all_bounds for pair in b.values() for edge in pair):
        return None
    exponent = figures.exponent_of_stores(stores.values())
    if name == "trends":
        await rollups.catch_up_stores(engine, list(stores), device_id=filters.device_id)
        series = []
        for each, bounds in zip(periods, all_bounds, strict=True):
            # net per time zone and bucket: the database adds the stores of a zone up
            rows = await rollups.read_sums(
                engine, NET, stores=stores, bounds=bounds, device_id=filters.device_id,
                by_bucket=True, per="timezone",
            )  # fmt: skip
            points = (
                (int(str(bucket)), str(zone), int(row["sales_minor"]) - int(row["returns_minor"]))
                for (zone, bucket), row in rows.items()
            )
            series.append(figures.bucketed(points, each, filters.granularity))
        return figures.trend_table(series[0], series[1], period, filters.granularity, exponent)
    if name == "summary":  # the database adds every store of a currency up
        await rollups.catch_up_stores(engine, list(stores), device_id=filters.device_id)
        common: dict[str, Any] = {
            "stores": stores, "bounds": all_bounds[0], "device_id": filters.device_id,
            "per": "currency",
        }  # fmt: skip
        by_currency: dict[str, Totals] = defaultdict(Totals)
        for key, row in (await rollups.read_sums(engine, rollup_tables.TOTALS, **common)).items():
            totals = by_currency[str(key[0])]
            for field_name in figures.SUMMED:
                setattr(totals, field_name, getattr(totals, field_name) + int(row[field_name]))
        tender_rows = await rollups.read_sums(
            engine, rollup_tables.TENDERS, by=("tender",), **common
        )
        for (currency, tender), row in tender_rows.items():
            pair = by_currency[str(currency)].tenders.setdefault(str(tender), [0, 0])
            pair[0] += int(row["count"])
            pair[1] += int(row["amount_minor"])
        return figures.summary_of(dict(by_currency), exponent)
    read = [
        await rollups.read(
            engine, stores=stores, bounds=all_bounds[0], device_id=filters.device_id,
            by_bucket=False,  # the store comparison: the database adds the buckets up
        )
    ]  # fmt: skip
    by_store = {
        store_id: _merged(buckets.values()) for store_id, buckets in read[0].items() if buckets
    }
    return figures.stores_of(stores, by_store, exponent)


def _merged(parts: Iterable[Totals]) -> Totals:
    total = Totals()
    for part in parts:
        figures.merge(total, part)
    return total
