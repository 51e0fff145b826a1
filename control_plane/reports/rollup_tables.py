"""The rollup tables: sums per device and 15-minute bucket, and per store and local day, one table
per thing a report groups by.

Each table is described once by a :class:`Spec` (its grouping keys, its summed columns and its
labels), and that one description drives catching up, verifying and reading
(:mod:`~control_plane.reports.rollups`), so a new rollup is a table and a spec, never new code.
A label (an item's name) is not summed: a read takes the greatest one of the group.

Two levels: the 15-minute rows (``bucket``: the quarter hour's UTC start, epoch ms) answer a day
or an hour of one register; the daily rows (``day``: the store's local date, in the store's time
zone, so a clock-change day holds 23 or 25 hours of buckets) answer every read over days,
weeks and the fleet. Both are written from the same folded rows in the same transaction
(:mod:`~control_plane.reports.rollup_upsert`), so a day's row is the sum of its buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Date, ForeignKey, PrimaryKeyConstraint, String, Table

from control_plane.db.metadata import metadata

#: The summary's sums, and the loss-prevention counts kept beside them.
SUMS = (
    "sales_count", "sales_minor", "discounts_minor", "sales_tax_minor", "rounding_minor",
    "returns_count", "returns_minor", "returns_tax_minor", "voids_count", "voided_lines",
    "cash_in_minor", "cash_out_minor",
)  # fmt: skip
LP_SUMS = ("returns_unreceipted", "manual_discounts", "drawer_opens", "overrides")
TENDER_SUMS = ("count", "amount_minor", "payments", "paid_minor", "refunded_minor")
ITEM_SUMS = (
    "sold_micro", "returned_micro", "sales_minor", "returns_minor", "sale_lines", "return_lines",
)  # fmt: skip
TAX_SUMS = ("net_minor", "tax_minor", "gross_minor")
STAFF_SUMS = (
    "sales_count", "sales_minor", "voids", "voided_lines", "discounts_minor", "returns_count",
    "returns_minor", "overrides",
)  # fmt: skip

#: Key lengths: the fold cuts a longer key to these (facts cut tenders to 64 the same way).
ITEM_ID_LEN, DEPARTMENT_LEN, NAME_LEN, RATE_LEN, CASHIER_LEN = 64, 100, 200, 40, 64


def _sums(names: tuple[str, ...]) -> list[Column[int]]:
    return [Column(name, BigInteger, nullable=False, server_default="0") for name in names]


def _device() -> Column[str]:
    return Column("device_id", String(64), ForeignKey("devices.id"), nullable=False)


report_rollups = Table(
    "report_rollups",
    metadata,
    _device(),
    Column("bucket", BigInteger, nullable=False),
    *_sums(SUMS + LP_SUMS),
    PrimaryKeyConstraint("device_id", "bucket"),
)
report_tender_rollups = Table(
    "report_tender_rollups",
    metadata,
    _device(),
    Column("bucket", BigInteger, nullable=False),
    Column("tender", String(64), nullable=False),
    *_sums(TENDER_SUMS),
    PrimaryKeyConstraint("device_id", "bucket", "tender"),
)
report_item_rollups = Table(
    "report_item_rollups",
    metadata,
    _device(),
    Column("bucket", BigInteger, nullable=False),
    Column("item_id", String(ITEM_ID_LEN), nullable=False),
    Column("department", String(DEPARTMENT_LEN), nullable=False),
    Column("name", String(NAME_LEN), nullable=False),
    *_sums(ITEM_SUMS),
    PrimaryKeyConstraint("device_id", "bucket", "item_id", "department"),
)
report_tax_rollups = Table(
    "report_tax_rollups",
    metadata,
    _device(),
    Column("bucket", BigInteger, nullable=False),
    Column("rate", String(RATE_LEN), nullable=False),
    *_sums(TAX_SUMS),
    PrimaryKeyConstraint("device_id", "bucket", "rate"),
)
report_staff_rollups = Table(
    "report_staff_rollups",
    metadata,
    _device(),
    Column("bucket", BigInteger, nullable=False),
    Column("cashier", String(CASHIER_LEN), nullable=False),
    *_sums(STAFF_SUMS),
    PrimaryKeyConstraint("device_id", "bucket", "cashier"),
)


def _store() -> Column[str]:
    return Column("store_id", String(64), ForeignKey("stores.id"), nullable=False)


report_daily_rollups = Table(
    "report_daily_rollups",
    metadata,
    _store(),
    Column("day", Date, nullable=False),
    *_sums(SUMS + LP_SUMS),
    PrimaryKeyConstraint("store_id", "day"),
)
report_daily_tender_rollups = Table(
    "report_daily_tender_rollups",
    metadata,
    _store(),
    Column("day", Date, nullable=False),
    Column("tender", String(64), nullable=False),
    *_sums(TENDER_SUMS),
    PrimaryKeyConstraint("store_id", "day", "tender"),
)
report_daily_item_rollups = Table(
    "report_daily_item_rollups",
    metadata,
    _store(),
    Column("day", Date, nullable=False),
    Column("item_id", String(ITEM_ID_LEN), nullable=False),
    Column("department", String(DEPARTMENT_LEN), nullable=False),
    Column("name", String(NAME_LEN), nullable=False),
    *_sums(ITEM_SUMS),
    PrimaryKeyConstraint("store_id", "day", "item_id", "department"),
)
report_daily_tax_rollups = Table(
    "report_daily_tax_rollups",
    metadata,
    _store(),
    Column("day", Date, nullable=False),
    Column("rate", String(RATE_LEN), nullable=False),
    *_sums(TAX_SUMS),
    PrimaryKeyConstraint("store_id", "day", "rate"),
)
report_daily_staff_rollups = Table(
    "report_daily_staff_rollups",
    metadata,
    _store(),
    Column("day", Date, nullable=False),
    Column("cashier", String(CASHIER_LEN), nullable=False),
    *_sums(STAFF_SUMS),
    PrimaryKeyConstraint("store_id", "day", "cashier"),
)
report_rollup_marks = Table(
    "report_rollup_marks",
    metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("upto_seq", BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Spec:
    """A rollup table: grouped by device, bucket and ``keys``; ``sums`` added; ``labels`` kept."""

    table: Table
    keys: tuple[str, ...]
    sums: tuple[str, ...]
    labels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def daily(self) -> Spec:
        """The same sums per store and local day."""
        return DAILY[self.name]


TOTALS = Spec(report_rollups, (), SUMS + LP_SUMS)
TENDERS = Spec(report_tender_rollups, ("tender",), TENDER_SUMS)
ITEMS = Spec(report_item_rollups, ("item_id", "department"), ITEM_SUMS, ("name",))
TAXES = Spec(report_tax_rollups, ("rate",), TAX_SUMS)
STAFF = Spec(report_staff_rollups, ("cashier",), STAFF_SUMS)
SPECS = (TOTALS, TENDERS, ITEMS, TAXES, STAFF)
#: Each 15-minute table's daily counterpart: the same keys, sums and labels.
DAILY = {
    spec.name: Spec(daily, spec.keys, spec.sums, spec.labels)
    for spec, daily in zip(
        SPECS,
        (
            report_daily_rollups,
            report_daily_tender_rollups,
            report_daily_item_rollups,
            report_daily_tax_rollups,
            report_daily_staff_rollups,
        ),
        strict=True,
    )
}
