"""Folding the period's facts into the reports' tables, in integer minor units.

The definitions, the same as the register's Z report so the two reconcile to the cent:

* *sales* is what the sales totalled (``Sale.total_minor``: after discounts, tax included, before
  cash rounding); *discounts* are line plus basket discounts; *gross* = sales + discounts;
* *returns* is what was refunded (``refund_minor``, tax included, before rounding);
  *net* = sales − returns; *tax* = tax on sales − tax refunded; *net excluding tax* = net − tax;
* *cash rounding* = rounding on sales − rounding on refunds (what the drawer gained by it);
* a tender's amount is what it paid after change, minus what was refunded to it.

Every table is per currency where stores of several currencies are covered: amounts of
different currencies are never added.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from control_plane.reports.facts import Facts, Return, Sale, StoreInfo, Where
from control_plane.reports.period import Period, local
from control_plane.reports.tables import Table, table
from protocols.currency import minor_unit_digits

Granularity = Literal["hour", "day", "week"]
GRANULARITIES: tuple[Granularity, ...] = ("hour", "day", "week")


@dataclass(slots=True)
class Totals:
    """The sales summary's figures of one currency (or one store, register, shift)."""

    sales_count: int = 0
    sales_minor: int = 0
    discounts_minor: int = 0
    returns_count: int = 0
    returns_minor: int = 0
    sales_tax_minor: int = 0
    returns_tax_minor: int = 0
    rounding_minor: int = 0
    cash_in_minor: int = 0
    cash_out_minor: int = 0
    voids_count: int = 0
    voided_lines: int = 0
    tenders: dict[str, list[int]] = field(default_factory=dict)  # kind -> [count, amount]
    taxes: dict[Decimal, list[int]] = field(default_factory=dict)  # rate -> [net, tax, gross]
    departments: dict[str, list[int]] = field(default_factory=dict)  # -> [count, amount]

    @property
    def gross_minor(self) -> int:
        return self.sales_minor + self.discounts_minor

    @property
    def net_minor(self) -> int:
        return self.sales_minor - self.returns_minor

    @property
    def tax_minor(self) -> int:
        return self.sales_tax_minor - self.returns_tax_minor

    def add_sale(self, sale: Sale) -> None:
        self.sales_count += 1
        self.sales_minor += sale.total_minor
        self.discounts_minor += sale.discount_minor
        self.sales_tax_minor += sale.tax_minor
        self.rounding_minor += sale.rounding_minor
        self.voided_lines += sale.voided_lines
        for kind, amount in sale.tenders:
            _bucket(self.tenders, kind, amount)
        for line in sale.lines:
            _bucket(self.departments, line.department, line.total_minor)
        for part in sale.taxes:
            row = self.taxes.setdefault(part.rate, [0, 0, 0])
            row[0] += part.net_minor
            row[1] += part.tax_minor
            row[2] += part.gross_minor

    def add_return(self, ret: Return) -> None:
        self.returns_count += 1
        self.returns_minor += ret.refund_minor
        self.returns_tax_minor += ret.tax_minor
        self.rounding_minor -= ret.rounding_minor
        for kind, amount in ret.refunds:
            _bucket(self.tenders, kind, -amount)
        for line in ret.lines:
            _bucket(self.departments, line.department, -line.total_minor)
        for part in ret.taxes:
            row = self.taxes.setdefault(part.rate, [0, 0, 0])
            row[0] -= part.net_minor
            row[1] -= part.tax_minor
            row[2] -= part.gross_minor


def _bucket(buckets: dict[str, list[int]], key: str, amount: int) -> None:
    row = buckets.setdefault(key, [0, 0])
    row[0] += 1
    row[1] += amount


def fold(facts: Facts, key: object = None) -> dict[object, Totals]:
    """Totals by ``key``: ``"currency"``, ``"store"``, ``"shift"`` (register, shift) or None."""
    out: dict[object, Totals] = defaultdict(Totals)

    def of(at: Where, shift_id: str) -> object:
        if key == "currency":
            return facts.stores[at.store_id].currency
        if key == "store":
            return at.store_id
        if key == "shift":
            return (at.device_id, shift_id)
        return None

    for sale in facts.sales:
        out[of(sale.at, sale.shift_id)].add_sale(sale)
    for ret in facts.returns:
        out[of(ret.at, ret.shift_id)].add_return(ret)
    for void in facts.voids:
        out[of(void.at, void.shift_id)].voids_count += 1
    for move in facts.cash_moves:
        totals = out[of(move.at, move.shift_id)]
        if move.direction == "in":
            totals.cash_in_minor += move.amount_minor
        else:
            totals.cash_out_minor += move.amount_minor
    return dict(out)


def _exponent(facts: Facts) -> int:
    return exponent_of_stores(facts.stores.values())


def exponent_of_stores(stores: Iterable[StoreInfo]) -> int:
    """Minor-unit digits of the stores' money (ISO 4217: JPY 0, EUR 2, KWD 3).

    A table carries one exponent; stores of mixed ones take the fewest, so a yen amount is never
    shown with cents.
    """
    return min((exponent_of(s.currency) for s in stores), default=2)


def exponent_of(currency: str) -> int:
    """Minor-unit digits of one currency, from the contract's ISO 4217 table."""
    return minor_unit_digits(currency)


# -- 1. sales summary ---------------------------------------------------------------------------


def summary(facts: Facts) -> Table:
    """Gross, discounts, returns, net, tax, tenders, cash rounding, cash in/out, per currency."""
    return summary_of(fold(facts, "currency"), _exponent(facts))  # type: ignore[arg-type]


def summary_of(by_currency: dict[str, Totals], exponent: int) -> Table:
    """The summary table of totals per currency (folded from the journal or from rollups)."""
    out = table(
        "summary",
        "Sales summary",
        [
            ("currency", "Currency", "text"),
            ("figure", "Figure", "text"),
            ("count", "Count", "count"),
            ("amount", "Amount", "money"),
        ],
        exponent=exponent,
    )
    for c, t in sorted(by_currency.items()):
        out.rows.extend(
            [
                (c, "Gross sales", t.sales_count, t.gross_minor),
                (c, "Discounts", None, t.discounts_minor),
                (c, "Sales", t.sales_count, t.sales_minor),
                (c, "Returns", t.returns_count, t.returns_minor),
                (c, "Net sales", None, t.net_minor),
                (c, "Tax", None, t.tax_minor),
                (c, "Net excluding tax", None, t.net_minor - t.tax_minor),
                (c, "Cash rounding", None, t.rounding_minor),
                (c, "Cash in", None, t.cash_in_minor),
                (c, "Cash out", None, t.cash_out_minor),
                (c, "Voided sales", t.voids_count, None),
            ]
        )
        for kind, (count, amount) in sorted(t.tenders.items()):
            out.rows.append((c, f"Tender: {kind}", count, amount))
    return out


def merge(into: Totals, other: Totals) -> Totals:
    """``into`` plus the summary's sums and tenders of ``other`` (rollups of many buckets)."""
    for name in SUMMED:
        setattr(into, name, getattr(into, name) + getattr(other, name))
    for kind, (count, amount) in other.tenders.items():
        row = into.tenders.setdefault(kind, [0, 0])
        row[0] += count
        row[1] += amount
    return into


#: The fields of :class:`Totals` that rollups keep (the summary's sums).
SUMMED = (
    "sales_count", "sales_minor", "discounts_minor", "sales_tax_minor", "rounding_minor",
    "returns_count", "returns_minor", "returns_tax_minor", "voids_count", "voided_lines",
    "cash_in_minor", "cash_out_minor",
)  # fmt: skip


# -- 2. trends ----------------------------------------------------------------------------------


def bucket_of(ts: int, timezone: str, period: Period, granularity: Granularity) -> int:
    """The index of the bucket a moment falls in: hour of day, day or week of the period."""
    moment = local(ts, timezone)
    if granularity == "hour":
        return moment.hour
    days = (moment.date() - period.first).days
    return days if granularity == "day" else days // 7


def bucket_labels(period: Period, granularity: Granularity) -> list[str]:
    if granularity == "hour":
        return [f"{h:02d}:00" for h in range(24)]
    if granularity == "day":
        return [d.isoformat() for d in period.dates()]
    weeks = (period.days + 6) // 7
    return [f"week of {(period.first + timedelta(days=7 * w)).isoformat()}" for w in range(weeks)]


def net_by_bucket(facts: Facts, period: Period, granularity: Granularity) -> list[int]:
    """Net sales (sales − returns) per bucket of ``period``."""
    points = [
        (sale.at.ts, facts.stores[sale.at.store_id].timezone, sale.total_minor)
        for sale in facts.sales
    ] + [
        (ret.at.ts, facts.stores[ret.at.store_id].timezone, -ret.refund_minor)
        for ret in facts.returns
    ]
    return bucketed(points, period, granularity)


def bucketed(
    points: Iterable[tuple[int, str, int]], period: Period, granularity: Granularity
) -> list[int]:
    """Amounts ``(ts, time zone, amount)`` summed per bucket of ``period``."""
    values = [0] * len(bucket_labels(period, granularity))
    for ts, tz, amount in points:
        index = bucket_of(ts, tz, period, granularity)
        if 0 <= index < len(values):
            values[index] += amount
    return values


def by_day(
    amounts: Iterable[tuple[date, int]], period: Period, granularity: Granularity
) -> list[int]:
    """Amounts per local date summed per day or week of ``period`` (daily rollups: a date is
    already the store's own)."""
    values = [0] * len(bucket_labels(period, granularity))
    size = 7 if granularity == "week" else 1
    for day, amount in amounts:
        index = (day - period.first).days // size
        if 0 <= index < len(values):
            values[index] += amount
    return values


def trends(current: Facts, previous: Facts, period: Period, granularity: Granularity) -> Table:
    """Net sales per hour of day, day or week, beside the same bucket of the previous period."""
    now = net_by_bucket(current, period, granularity)
    before = net_by_bucket(previous, period.previous(), granularity)
    return trend_table(now, before, period, granularity, _exponent(current))


def trend_table(
    now: list[int], before: list[int], period: Period, granularity: Granularity, exponent: int
) -> Table:
    """The trend of net sales per bucket beside the previous period's."""
    out = table(
        "trends",
        f"Net sales by {granularity}, against the previous {period.days} day(s)",
        [
            ("bucket", granularity.title(), "text"),
            ("net", "Net sales", "money"),
            ("previous", "Previous period", "money"),
            ("change", "Change", "money"),
            ("change_pct", "Change %", "percent"),
        ],
        exponent=exponent,
    )
    for label, a, b in zip(bucket_labels(period, granularity), now, before, strict=True):
        pct = None if b == 0 else (Decimal(a - b) * 100 / Decimal(b)).quantize(Decimal("0.1"))
        out.rows.append((label, a, b, a - b, pct))
    return out


# -- 5. shift close -----------------------------------------------------------------------------


def shifts(facts: Facts) -> Table:
    """Every shift closed in the period, per register: float, expected, counted, discrepancy —
    and whether the register's own Z report agrees with the journal to the cent."""
    out = table(
        "shifts",
        "Shift close per register",
        [
            ("store", "Store", "text"),
            ("register", "Register", "text"),
            ("shift", "Shift", "text"),
            ("closed", "Closed", "text"),
            ("float", "Float", "money"),
            ("expected", "Expected cash", "money"),
            ("counted", "Counted cash", "money"),
            ("discrepancy", "Discrepancy", "money"),
            ("sales", "Sales", "money"),
            ("returns", "Returns", "money"),
            ("z_agrees", "Z report agrees", "flag"),
        ],
        exponent=_exponent(facts),
    )
    folded = fold(facts, "shift")
    floats = {(o.at.device_id, o.shift_id): o.float_minor for o in facts.shifts_opened}
    zs = {(z.at.device_id, z.shift_id): z for z in facts.z_reports}
    for closed in sorted(
        facts.shifts_closed, key=lambda c: (c.at.store_id, c.at.register, c.at.ts)
    ):
        key = (closed.at.device_id, closed.shift_id)
        t = folded.get(key, Totals())
        z = zs.get(key)
        tz = facts.stores[closed.at.store_id].timezone
        out.rows.append(
            (
                closed.at.store_id,
                closed.at.register,
                closed.shift_id,
                local(closed.at.ts, tz).strftime("%Y-%m-%d %H:%M"),
                floats.get(key),
                closed.expected_minor,
                closed.counted_minor,
                closed.variance_minor,
                t.sales_minor,
                t.returns_minor,
                z is not None and not z_differences(z.body, t),
            )
        )
    return out


def z_differences(z: dict[str, object], t: Totals) -> list[str]:
    """Where the journal's figures for a shift differ from the register's Z report (empty: none)."""
    mine: dict[str, object] = {
        "sales_count": t.sales_count,
        "returns_count": t.returns_count,
        "voided_sales_count": t.voids_count,
        "voided_lines_count": t.voided_lines,
        "sales_minor": t.sales_minor,
        "returns_minor": t.returns_minor,
        "discounts_minor": t.discounts_minor,
        "rounding_minor": t.rounding_minor,
        "cash_in_minor": t.cash_in_minor,
        "cash_out_minor": t.cash_out_minor,
        "by_tender": {k: (c, a) for k, (c, a) in t.tenders.items()},
        "by_department": {k: (c, a) for k, (c, a) in t.departments.items()},
        "by_tax_rate": {r: tuple(v) for r, v in t.taxes.items() if any(v)},
    }
    theirs: dict[str, object] = {key: z.get(key) for key in mine if not key.startswith("by_")}
    theirs["by_tender"] = {
        b["key"]: (b["count"], b["amount_minor"]) for b in _list(z.get("by_tender"))
    }
    theirs["by_department"] = {
        b["key"]: (b["count"], b["amount_minor"]) for b in _list(z.get("by_department"))
    }
    theirs["by_tax_rate"] = {
        Decimal(str(r["rate"])): (r["net_minor"], r["tax_minor"], r["gross_minor"])
        for r in _list(z.get("by_tax_rate"))
        if any((r["net_minor"], r["tax_minor"], r["gross_minor"]))
    }
    return [key for key in mine if mine[key] != theirs[key]]


def _list(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# -- 9. stock counts ----------------------------------------------------------------------------


def stock(facts: Facts) -> Table:
    """The latest RFID count of each item per store in the period: expected, counted, variance;
    shrink is the units missing (a negative variance)."""
    out = table(
        "stock",
        "Stock counts (RFID variance)",
        [
            ("store", "Store", "text"),
            ("gtin", "Item (GTIN)", "text"),
            ("expected", "Expected", "count"),
            ("counted", "Counted", "count"),
            ("variance", "Variance", "count"),
            ("shrink", "Shrink", "count"),
            ("counted_at", "Counted", "text"),
        ],
    )
    latest: dict[tuple[str, str], tuple[int, int, int]] = {}
    for count in sorted(facts.stock_counts, key=lambda c: c.at.ts):
        lines = count.body.get("lines")
        for line in lines if isinstance(lines, list) else []:
            if not isinstance(line, dict):
                continue
            expected, counted = line.get("expected"), line.get("counted")
            if type(expected) is int and type(counted) is int:
                latest[(count.at.store_id, str(line.get("gtin", "")))] = (
                    expected,
                    counted,
                    count.at.ts,
                )
    for (store_id, gtin), (expected, counted, ts) in sorted(latest.items()):
        tz = facts.stores[store_id].timezone
        out.rows.append(
            (
                store_id,
                gtin,
                expected,
                counted,
                counted - expected,
                max(0, expected - counted),
                local(ts, tz).strftime("%Y-%m-%d %H:%M"),
            )
        )
    return out


# -- 10. store comparison -----------------------------------------------------------------------


def stores(facts: Facts) -> Table:
    """Every store in scope side by side, those without a sale too."""
    folded = fold(facts, "store")
    return stores_of(facts.stores, folded, _exponent(facts))  # type: ignore[arg-type]


def stores_of(infos: dict[str, StoreInfo], by_store: dict[str, Totals], exponent: int) -> Table:
    """The store comparison of totals per store (folded from the journal or from rollups)."""
    out = table(
        "stores",
        "Store comparison",
        [
            ("store", "Store", "text"),
            ("name", "Name", "text"),
            ("currency", "Currency", "text"),
            ("sales_count", "Sales", "count"),
            ("net", "Net sales", "money"),
            ("average", "Average sale", "money"),
            ("discounts", "Discounts", "money"),
            ("returns", "Returns", "money"),
            ("voids", "Voids", "count"),
            ("tax", "Tax", "money"),
        ],
        exponent=exponent,
    )
    for store_id, info in sorted(infos.items()):
        t = by_store.get(store_id, Totals())
        average = t.sales_minor // t.sales_count if t.sales_count else 0
        out.rows.append(
            (
                store_id,
                info.name,
                info.currency,
                t.sales_count,
                t.net_minor,
                average,
                t.discounts_minor,
                t.returns_minor,
                t.voids_count,
                t.tax_minor,
            )
        )
    return out
