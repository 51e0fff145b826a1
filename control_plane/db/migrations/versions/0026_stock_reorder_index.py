"""stock: a partial index of the figures that have a low-stock threshold (issue 14).

The reorder list reads only the figures that can need an order: those sold in its window and
those with a threshold. Without this index the second half read every figure of the tenant (24 s
for every store at 1,000 stores x 100,000 items, docs/stock.md); with it, one index of the few
figures that have a threshold.

Revision ID: 0026_stock_reorder_index
Revises: 0023_stock_across_stores
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_stock_reorder_index"
down_revision = "0023_stock_across_stores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_stock_on_hand_low",
        "stock_on_hand",
        ["store_id", "gtin"],
        postgresql_where=sa.text("low_at IS NOT NULL"),
        sqlite_where=sa.text("low_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_stock_on_hand_low", table_name="stock_on_hand")
