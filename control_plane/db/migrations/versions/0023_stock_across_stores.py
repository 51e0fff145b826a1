"""stock across stores (issue 14; control_plane/stock): on-hand per store and GTIN projected from
the replicated journal, transfers and their lines, units sold per day, and each device's mark.
The projection is derived: a fresh database folds every device's journal on its first read.

Revision ID: 0023_stock_across_stores
Revises: 0018_report_rollups_detail
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_stock_across_stores"
down_revision = "0018_report_rollups_detail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_on_hand",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("gtin", sa.String(14), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("on_hand", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("low_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("store_id", "gtin", name="pk_stock_on_hand"),
    )
    op.create_index("ix_stock_on_hand_tenant_gtin", "stock_on_hand", ["tenant_id", "gtin"])
    op.create_table(
        "stock_transfers",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("from_store", sa.String(64), nullable=True),
        sa.Column("to_store", sa.String(64), nullable=True),
        sa.Column("received_store", sa.String(64), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "transfer_id", name="pk_stock_transfers"),
    )
    op.create_index("ix_stock_transfers_tenant_sent", "stock_transfers", ["tenant_id", "sent_at"])
    op.create_table(
        "stock_transfer_lines",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("gtin", sa.String(14), nullable=False),
        sa.Column("sent", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("received", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "transfer_id", "gtin", name="pk_stock_transfer_lines"),
    )
    op.create_table(
        "stock_daily_sales",
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("gtin", sa.String(14), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("store_id", "gtin", "day", name="pk_stock_daily_sales"),
    )
    op.create_table(
        "stock_marks",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("upto_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_stock_marks"),
    )


def downgrade() -> None:
    op.drop_table("stock_marks")
    op.drop_table("stock_daily_sales")
    op.drop_table("stock_transfer_lines")
    op.drop_index("ix_stock_transfers_tenant_sent", table_name="stock_transfers")
    op.drop_table("stock_transfers")
    op.drop_index("ix_stock_on_hand_tenant_gtin", table_name="stock_on_hand")
    op.drop_table("stock_on_hand")
