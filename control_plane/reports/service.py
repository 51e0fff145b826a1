"""Building a named report for a principal's scope: which facts it reads, which fold it runs.

How it works: :func:`build` checks the filters against the scope first — a store or register of
another tenant answers the same 404 as a missing one — then reads the report's sums from the rollups
(:mod:`~control_plane.reports.rollups`: every report but the shift close and the stock counts;
per store and local day for the stores, one register's and trends by hour per quarter hour)
or folds the period's facts from the journal (the trends also the previous period's, loss
prevention the 8 weeks before) into a :class:`~control_plane.reports.tables.Table`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Literal, cast

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
    per: rollups.Per = "store" if query.per_store_bucket else "currency"
    quarter_hours = not any(edge % rollups.BUCKET_MS for b in bounds.values() for edge in b)
    if filters.rollups and quarter_hours and filters.device_id is None:
        await rollups.catch_up_stores(engine, list(stores))
        rows = await rollups.read_daily_sums(  # per store and local day
            engine, query.spec, stores=stores, period=period, by=query.by,
            by_day=query.per_store_bucket, per=per, nonzero=query.nonzero,
        )  # fmt: skip
    elif filters.rollups and quarter_hours:  # one register: its 15-minute rows
        await rollups.catch_up_stores(engine, list(stores), device_id=filters.device_id)
        rows = await rollups.read_sums(
            engine,
            query.spec,
            stores=stores,
            bounds=bounds,
            device_id=filters.device_id,
            by=query.by,
            by_bucket=query.per_store_bucket,
            per=per,
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
    (then the journal is folded instead). The daily rollups answer it, but for one register
    and for trends by hour of day (the 15-minute ones)."""
    period = filters.period
    periods = [period, period.previous()] if name == "trends" else [period]
    all_bounds = [
        {store_id: each.bounds(info.timezone) for store_id, info in stores.items()}
        for each in periods
    ]
    if any(edge % rollups.BUCKET_MS for b in all_bounds for pair in b.values() for edge in pair):
        return None
    exponent = figures.exponent_of_stores(stores.values())
    daily = filters.device_id is None and not (name == "trends" and filters.granularity == "hour")
    await rollups.catch_up_stores(engine, list(stores), device_id=filters.device_id)

    async def sums(
        spec: Spec, each: Period, bounds: dict[str, tuple[int, int]], *, per: rollups.Per,
        by: tuple[str, ...] = (), by_time: bool = False,
    ) -> dict[tuple[object, ...], Row]:  # fmt: skip
        if daily:
            return await rollups.read_daily_sums(
                engine, spec, stores=stores, period=each, by=by, by_day=by_time, per=per
            )
        return await rollups.read_sums(
            engine, spec, stores=stores, bounds=bounds, device_id=filters.device_id, by=by,
            by_bucket=by_time, per=per,
        )  # fmt: skip

    if name == "trends":
        series = []
        for each, bounds in zip(periods, all_bounds, strict=True):
            # net per time zone and bucket (or day): the database adds the stores of a zone up
            rows = await sums(NET, each, bounds, per="timezone", by_time=True)
            if daily:
                days = (
                    (cast(date, day), int(row["sales_minor"]) - int(row["returns_minor"]))
                    for (_, day), row in rows.items()
                )
                series.append(figures.by_day(days, each, filters.granularity))
                continue
            points = (
                (int(str(bucket)), str(zone), int(row["sales_minor"]) - int(row["returns_minor"]))
                for (zone, bucket), row in rows.items()
            )
            series.append(figures.bucketed(points, each, filters.granularity))
        return figures.trend_table(series[0], series[1], period, filters.granularity, exponent)
    if name == "summary":  # the database adds every store of a currency up
        by_currency: dict[str, Totals] = defaultdict(Totals)
        rows = await sums(rollup_tables.TOTALS, period, all_bounds[0], per="currency")
        for (currency,), row in rows.items():
            _add_totals(by_currency[str(currency)], row)
        tender_rows = await sums(
            rollup_tables.TENDERS, period, all_bounds[0], per="currency", by=("tender",)
        )
        for (currency, tender), row in tender_rows.items():
            pair = by_currency[str(currency)].tenders.setdefault(str(tender), [0, 0])
            pair[0] += int(row["count"])
            pair[1] += int(row["amount_minor"])
        return figures.summary_of(dict(by_currency), exponent)
    # the store comparison: the database adds each store's days (or buckets) up
    by_store: dict[str, Totals] = {}
    for (store_id,), row in (
        await sums(rollup_tables.TOTALS, period, all_bounds[0], per="store")
    ).items():
        _add_totals(by_store.setdefault(str(store_id), Totals()), row)
    return figures.stores_of(stores, by_store, exponent)


def _add_totals(totals: Totals, row: Row) -> None:
    for field_name in figures.SUMMED:
        setattr(totals, field_name, getattr(totals, field_name) + int(row[field_name]))
