"""report rollups for every report of sums (issue 13): items and categories, taxes by rate and
staff per device and 15 minutes; the tender rollups split payments from refunds and the totals
keep the loss-prevention counts. Rollups are derived from the journal: they are emptied here and
the next read folds every device's journal into them again (control_plane/reports/rollups.py).
Webhook signing secrets are stored sealed, longer than in clear: their column widens to 200
(control_plane/notifications/secret_box.py; the notifier seals clear ones when it starts)

Revision ID: 0018_report_rollups_detail
Revises: 0017_rollout_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_report_rollups_detail"
down_revision = "0017_rollout_indexes"  # the newest revision when this was written
branch_labels = None
depends_on = ("0013_reports_alerts", "0016_alert_notifications")

LP_SUMS = ("returns_unreceipted", "manual_discounts", "drawer_opens", "overrides")
TENDER_SUMS = ("payments", "paid_minor", "refunded_minor")
ITEM_SUMS = (
    "sold_micro", "returned_micro", "sales_minor", "returns_minor", "sale_lines", "return_lines",
)  # fmt: skip
TAX_SUMS = ("net_minor", "tax_minor", "gross_minor")
STAFF_SUMS = (
    "sales_count", "sales_minor", "voids", "voided_lines", "discounts_minor", "returns_count",
    "returns_minor", "overrides",
)  # fmt: skip


def _sums(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in names]


def _device() -> sa.Column[str]:
    return sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("notification_channels") as batch:
        batch.alter_column("secret", type_=sa.String(200), existing_type=sa.String(100))
    # derived rows: emptied, so no bucket lacks what the new columns count
    op.execute("DELETE FROM report_tender_rollups")
    op.execute("DELETE FROM report_rollups")
    op.execute("DELETE FROM report_rollup_marks")
    with op.batch_alter_table("report_rollups") as batch:
        for column in _sums(LP_SUMS):
            batch.add_column(column)
    with op.batch_alter_table("report_tender_rollups") as batch:
        for column in _sums(TENDER_SUMS):
            batch.add_column(column)
    op.create_table(
        "report_item_rollups",
        _device(),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_sums(ITEM_SUMS),
        sa.PrimaryKeyConstraint("device_id", "bucket", "item_id", "department"),
    )
    op.create_table(
        "report_tax_rollups",
        _device(),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        *_sums(TAX_SUMS),
        sa.PrimaryKeyConstraint("device_id", "bucket", "rate"),
    )
    op.create_table(
        "report_staff_rollups",
        _device(),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("cashier", sa.String(64), nullable=False),
        *_sums(STAFF_SUMS),
        sa.PrimaryKeyConstraint("device_id", "bucket", "cashier"),
    )


def downgrade() -> None:
    # sealed secrets do not fit the clear column: those channels must be recreated
    op.execute("UPDATE notification_channels SET secret = NULL WHERE secret LIKE 'sealed:%'")
    with op.batch_alter_table("notification_channels") as batch:
        batch.alter_column("secret", type_=sa.String(100), existing_type=sa.String(200))
    op.drop_table("report_staff_rollups")
    op.drop_table("report_tax_rollups")
    op.drop_table("report_item_rollups")
    op.execute("DELETE FROM report_tender_rollups")
    op.execute("DELETE FROM report_rollups")
    op.execute("DELETE FROM report_rollup_marks")
    with op.batch_alter_table("report_tender_rollups") as batch:
        for name in TENDER_SUMS:
            batch.drop_column(name)
    with op.batch_alter_table("report_rollups") as batch:
        for name in LP_SUMS:
            batch.drop_column(name)
