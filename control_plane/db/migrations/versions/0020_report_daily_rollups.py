"""report rollups per store and local day (issue 13): totals, tenders, items, taxes and staff
summed per store and day in the store's time zone, beside the 15-minute rollups per device. Every
read over days, weeks or the fleet sums them instead of 96 quarter hours a day. Rollups are
derived from the journal: the 15-minute rows and marks are emptied here so both levels are
rebuilt together (the next read catches every device up, then the ingest keeps them current).

Revision ID: 0020_report_daily_rollups
Revises: 0018_report_rollups_detail
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_report_daily_rollups"
down_revision = "0018_report_rollups_detail"
branch_labels = None
depends_on = None

SUMS = (
    "sales_count", "sales_minor", "discounts_minor", "sales_tax_minor", "rounding_minor",
    "returns_count", "returns_minor", "returns_tax_minor", "voids_count", "voided_lines",
    "cash_in_minor", "cash_out_minor",
    "returns_unreceipted", "manual_discounts", "drawer_opens", "overrides",
)  # fmt: skip
TENDER_SUMS = ("count", "amount_minor", "payments", "paid_minor", "refunded_minor")
ITEM_SUMS = (
    "sold_micro", "returned_micro", "sales_minor", "returns_minor", "sale_lines", "return_lines",
)  # fmt: skip
TAX_SUMS = ("net_minor", "tax_minor", "gross_minor")
STAFF_SUMS = (
    "sales_count", "sales_minor", "voids", "voided_lines", "discounts_minor", "returns_count",
    "returns_minor", "overrides",
)  # fmt: skip
DERIVED = (
    "report_rollups", "report_tender_rollups", "report_item_rollups", "report_tax_rollups",
    "report_staff_rollups", "report_rollup_marks",
)  # fmt: skip


def _sums(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in names]


def _head() -> list[sa.Column[object]]:
    return [
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
    ]


def _empty_derived() -> None:
    for table in DERIVED:
        op.execute(f"DELETE FROM {table}")


def upgrade() -> None:
    _empty_derived()
    op.create_table(
        "report_daily_rollups",
        *_head(),
        *_sums(SUMS),
        sa.PrimaryKeyConstraint("store_id", "day"),
    )
    op.create_table(
        "report_daily_tender_rollups",
        *_head(),
        sa.Column("tender", sa.String(64), nullable=False),
        *_sums(TENDER_SUMS),
        sa.PrimaryKeyConstraint("store_id", "day", "tender"),
    )
    op.create_table(
        "report_daily_item_rollups",
        *_head(),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_sums(ITEM_SUMS),
        sa.PrimaryKeyConstraint("store_id", "day", "item_id", "department"),
    )
    op.create_table(
        "report_daily_tax_rollups",
        *_head(),
        sa.Column("rate", sa.String(40), nullable=False),
        *_sums(TAX_SUMS),
        sa.PrimaryKeyConstraint("store_id", "day", "rate"),
    )
    op.create_table(
        "report_daily_staff_rollups",
        *_head(),
        sa.Column("cashier", sa.String(64), nullable=False),
        *_sums(STAFF_SUMS),
        sa.PrimaryKeyConstraint("store_id", "day", "cashier"),
    )


def downgrade() -> None:
    for table in ("staff", "tax", "item", "tender"):
        op.drop_table(f"report_daily_{table}_rollups")
    op.drop_table("report_daily_rollups")
    _empty_derived()
