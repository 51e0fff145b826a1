"""fleet alerts (one open per device and kind), device events kept for alerts, lag/backlog history,
and the reports' rollups (sums per device and 15 minutes, kept by the ingest)

Revision ID: 0013_reports_alerts
Revises: 0010_journal_heads
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_reports_alerts"
down_revision = "0010_journal_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        # "<device_id> <kind>" while open, NULL once cleared: UNIQUE keeps one open per pair
        sa.Column("open_key", sa.String(100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("cleared_at", sa.BigInteger(), nullable=True),
        sa.Column("acked_at", sa.BigInteger(), nullable=True),
        sa.Column("acked_by", sa.String(254), nullable=True),
    )
    op.create_index("uq_alerts_open_key", "alerts", ["open_key"], unique=True)
    op.create_index("ix_alerts_tenant_opened", "alerts", ["tenant_id", "opened_at"])
    op.create_index("ix_alerts_device_opened", "alerts", ["device_id", "opened_at"])
    op.create_table(
        "device_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_device_events_device_kind", "device_events", ["device_id", "kind", "id"])
    op.create_table(
        "device_history",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("backlog", sa.BigInteger(), nullable=False),
        sa.Column("lag_ms", sa.BigInteger(), nullable=True),
        sa.Column("ingest_lag_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "at"),
    )

    money = [
        "sales_count", "sales_minor", "discounts_minor", "sales_tax_minor", "rounding_minor",
        "returns_count", "returns_minor", "returns_tax_minor", "voids_count", "voided_lines",
        "cash_in_minor", "cash_out_minor",
    ]  # fmt: skip
    op.create_table(
        "report_rollups",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in money],
        sa.PrimaryKeyConstraint("device_id", "bucket"),
    )
    op.create_table(
        "report_tender_rollups",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("tender", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("device_id", "bucket", "tender"),
    )
    op.create_table(
        "report_rollup_marks",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("upto_seq", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_rollup_marks")
    op.drop_table("report_tender_rollups")
    op.drop_table("report_rollups")
    op.drop_table("device_history")
    op.drop_index("ix_device_events_device_kind", table_name="device_events")
    op.drop_table("device_events")
    op.drop_index("ix_alerts_device_opened", table_name="alerts")
    op.drop_index("ix_alerts_tenant_opened", table_name="alerts")
    op.drop_index("uq_alerts_open_key", table_name="alerts")
    op.drop_table("alerts")
