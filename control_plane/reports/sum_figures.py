"""The reports that are sums of rollup rows: items, categories, tender mix, staff, taxes by rate
and loss prevention, as tables.

Each takes rows keyed ``(currency, *keys)`` (loss prevention: ``(store, bucket)``) — what
:func:`~control_plane.reports.rollups.read_sums` reads from the rollups and what
:func:`~control_plane.reports.rollup_fold.regroup` adds up from the journal's facts — so a report
is the same table whichever way its sums came. Money stays integer minor units.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from statistics import fmean, pstdev

from control_plane.reports.facts import StoreInfo
from control_plane.reports.period import Period, local
from control_plane.reports.rollup_fold import MICRO, Row
from control_plane.reports.tables import Table, table

Rows = Mapping[tuple[object, ...], Row]


def _int(row: Row, name: str) -> int:
    return int(row[name])


def _quantity(millionths: int) -> Decimal:
    """A quantity kept in millionths, without trailing zeros: 3000000 → 3, 750000 → 0.75."""
    return (Decimal(millionths) / MICRO).normalize() if millionths else Decimal(0)


def _share(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"))


# -- 3. items, categories -----------------------------------------------------------------------


def items(rows: Rows, exponent: int, limit: int | None = None) -> Table:
    """Items by net amount, top sellers first: quantities and money sold and returned
    (rows keyed (currency, item, category); an item shows the greatest of its names)."""
    out = table(
        "items",
        "Items and top sellers",
        [
            ("item_id", "Item", "text"),
            ("name", "Name", "text"),
            ("department", "Category", "text"),
            ("sold", "Sold", "quantity"),
            ("returned", "Returned", "quantity"),
            ("sales", "Sales", "money"),
            ("returns", "Returns", "money"),
            ("net", "Net", "money"),
        ],
        exponent=exponent,
    )
    merged: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    labels: dict[str, tuple[str, str]] = {}
    for (_, item_id, department), row in rows.items():
        key = str(item_id)
        sums = merged[key]
        for n, name in enumerate(("sold_micro", "returned_micro", "sales_minor", "returns_minor")):
            sums[n] += _int(row, name)
        name_, dept = labels.get(key, ("", ""))
        labels[key] = (max(name_, str(row["name"])), max(dept, str(department)))
    ordered = sorted(merged.items(), key=lambda kv: (-(kv[1][2] - kv[1][3]), kv[0]))
    for item_id, (sold, returned, sales, returns) in ordered[:limit]:
        name, department = labels[item_id]
        out.rows.append(
            (item_id, name, department, _quantity(sold), _quantity(returned), sales, returns,
             sales - returns)
        )  # fmt: skip
    return out


def categories(rows: Rows, exponent: int) -> Table:
    """Net sales by category (the catalog's department), with each one's share (rows keyed
    (currency, category)); lines counts sold and returned lines."""
    out = table(
        "categories",
        "Categories",
        [
            ("department", "Category", "text"),
            ("lines", "Lines", "count"),
            ("net", "Net sales", "money"),
            ("share", "Share", "percent"),
        ],
        exponent=exponent,
    )
    total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (_, department), row in rows.items():
        pair = total[str(department)]
        pair[0] += _int(row, "sale_lines") + _int(row, "return_lines")
        pair[1] += _int(row, "sales_minor") - _int(row, "returns_minor")
    whole = sum(amount for _, amount in total.values())
    for key, (count, amount) in sorted(total.items(), key=lambda kv: (-kv[1][1], kv[0])):
        out.rows.append((key or "(none)", count, amount, _share(amount, whole)))
    return out


# -- 4. tender mix ------------------------------------------------------------------------------


def tenders(rows: Rows, exponent: int) -> Table:
    """Each tender's payments and refunds, net, and share of the net, per currency (rows keyed
    (currency, tender))."""
    out = table(
        "tenders",
        "Tender mix",
        [
            ("currency", "Currency", "text"),
            ("tender", "Tender", "text"),
            ("payments", "Payments", "count"),
            ("paid", "Paid", "money"),
            ("refunded", "Refunded", "money"),
            ("net", "Net", "money"),
            ("share", "Share", "percent"),
        ],
        exponent=exponent,
    )
    wholes: dict[str, int] = defaultdict(int)
    for (currency, _), row in rows.items():
        wholes[str(currency)] += _int(row, "paid_minor") - _int(row, "refunded_minor")
    for (currency, kind), row in sorted(rows.items(), key=lambda kv: str(kv[0])):
        paid, refunded = _int(row, "paid_minor"), _int(row, "refunded_minor")
        out.rows.append(
            (
                str(currency),
                str(kind),
                _int(row, "payments"),
                paid,
                refunded,
                paid - refunded,
                _share(paid - refunded, wholes[str(currency)]),
            )
        )
    return out


# -- 6. staff -----------------------------------------------------------------------------------

_STAFF = (
    "sales_count", "sales_minor", "voids", "voided_lines", "discounts_minor", "returns_count",
    "returns_minor", "overrides",
)  # fmt: skip


def staff(rows: Rows, exponent: int) -> Table:
    """Per cashier: sales, voids, discounts, returns and manager overrides (rows keyed
    (currency, cashier))."""
    out = table(
        "staff",
        "Staff",
        [
            ("cashier", "Cashier", "text"),
            ("sales_count", "Sales", "count"),
            ("sales", "Sales amount", "money"),
            ("voids", "Voids", "count"),
            ("voided_lines", "Voided lines", "count"),
            ("discounts", "Discounts", "money"),
            ("returns_count", "Returns", "count"),
            ("returns", "Returns amount", "money"),
            ("overrides", "Overrides", "count"),
        ],
        exponent=exponent,
    )
    merged: dict[str, list[int]] = defaultdict(lambda: [0] * len(_STAFF))
    for (_, cashier), row in rows.items():
        sums = merged[str(cashier)]
        for n, name in enumerate(_STAFF):
            sums[n] += _int(row, name)
    for cashier, sums in sorted(merged.items()):
        out.rows.append((cashier, *sums))
    return out


# -- 7. loss prevention -------------------------------------------------------------------------

#: The measures loss prevention watches, per store and local day, and the rollup sum of each.
MEASURES = {
    "voids": "voids_count",
    "voided_lines": "voided_lines",
    "returns_without_receipt": "returns_unreceipted",
    "manual_discounts": "manual_discounts",
    "drawer_opened_without_sale": "drawer_opens",
    "manager_overrides": "overrides",
}
#: How many previous same weekdays make a measure's usual level.
HISTORY_WEEKS = 8
#: A day is flagged when a measure exceeds mean + SIGMAS × σ of its usual level …
SIGMAS = 3
#: … and exceeds the mean by at least this many events (a quiet store's 1 against 0 is no alarm).
MIN_EXCESS = 3


def history_period(period: Period) -> Period:
    """The period loss prevention reads: the report's, and the 8 weeks before it."""
    return Period(period.first - timedelta(days=7 * HISTORY_WEEKS), period.last)


def lp_counts(
    rows: Rows, stores: Mapping[str, StoreInfo]
) -> dict[tuple[str, date], dict[str, int]]:
    """Each measure per (store, local date), from rows keyed (store, local date) — the daily
    rollups — or (store, bucket): a bucket is a quarter hour, inside one local day of any time
    zone."""
    counts: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for (store_id, when), row in rows.items():
        store = str(store_id)
        when_day = (
            when if isinstance(when, date) else local(int(str(when)), stores[store].timezone).date()
        )
        day = counts[(store, when_day)]
        for measure, column in MEASURES.items():
            day[measure] += _int(row, column)
    return counts


def loss_prevention(rows: Rows, stores: Mapping[str, StoreInfo], period: Period) -> Table:
    """Each measure per store and day, beside its usual level; flagged when well above it.

    The rule: a day's value is flagged when it is above mean + 3σ (population σ) of the same
    measure on the 8 previous same weekdays at that store (a day without records counts 0), and
    at least 3 above that mean. ``rows`` must cover :func:`history_period`.
    """
    out = table(
        "loss",
        "Loss prevention",
        [
            ("store", "Store", "text"),
            ("date", "Date", "text"),
            ("measure", "Measure", "text"),
            ("value", "Value", "count"),
            ("usual", "Usual (mean)", "quantity"),
            ("threshold", "Flag above", "quantity"),
            ("flagged", "Flagged", "flag"),
        ],
        note=(
            f"Flagged: above mean + {SIGMAS}σ of the previous {HISTORY_WEEKS} same weekdays,"
            f" and at least {MIN_EXCESS} above the mean."
        ),
    )
    counts = lp_counts(rows, stores)
    empty = dict.fromkeys(MEASURES, 0)
    for store_id in sorted(stores):
        for day in period.dates():
            today = counts.get((store_id, day), empty)
            history = [
                counts.get((store_id, day - timedelta(days=7 * w)), empty)
                for w in range(1, HISTORY_WEEKS + 1)
            ]
            for measure in MEASURES:
                past = [h[measure] for h in history]
                mean, sigma = fmean(past), pstdev(past)
                threshold = max(mean + SIGMAS * sigma, mean + MIN_EXCESS)
                value = today[measure]
                if value == 0 and mean == 0:
                    continue
                out.rows.append(
                    (
                        store_id,
                        day.isoformat(),
                        measure.replace("_", " "),
                        value,
                        Decimal(str(round(mean, 2))),
                        Decimal(str(round(threshold, 2))),
                        value > threshold,
                    )
                )
    return out


# -- 8. taxes -----------------------------------------------------------------------------------


def taxes(rows: Rows, exponent: int) -> Table:
    """Net, tax and gross per rate: sales minus refunds, per currency (rows keyed
    (currency, rate))."""
    out = table(
        "taxes",
        "Taxes by rate",
        [
            ("currency", "Currency", "text"),
            ("rate", "Rate", "quantity"),
            ("net", "Net", "money"),
            ("tax", "Tax", "money"),
            ("gross", "Gross", "money"),
        ],
        exponent=exponent,
    )
    ordered = sorted(rows.items(), key=lambda kv: (str(kv[0][0]), Decimal(str(kv[0][1]))))
    for (currency, rate), row in ordered:
        out.rows.append(
            (
                str(currency),
                Decimal(str(rate)),
                _int(row, "net_minor"),
                _int(row, "tax_minor"),
                _int(row, "gross_minor"),
            )
        )
    return out
