"""loyalty ledger (issue 14): a sale's customer in ``sales.customer_id`` (pseudonymous id, NULL
without one, indexed by tenant and customer for the customer's history), the ledger of points and
store-credit movements (UNIQUE by the journal record or adjustment they came from) and each
customer's running balance with its tier and overdraft (control_plane/loyalty/tables.py)

Revision ID: 0022_loyalty_ledger
Revises: 0018_report_rollups_detail
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_loyalty_ledger"
down_revision = "0018_report_rollups_detail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sales") as batch:
        batch.add_column(sa.Column("customer_id", sa.String(32), nullable=True))
    op.create_index(
        "ix_sales_tenant_customer", "sales", ["tenant_id", "customer_id", "ts"], unique=False
    )
    op.create_table(
        "loyalty_movements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("credit_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("store_id", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("sale_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(254), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_movements")),
    )
    op.create_index("uq_loyalty_movements_source", "loyalty_movements", ["source"], unique=True)
    op.create_index(
        "ix_loyalty_movements_customer",
        "loyalty_movements",
        ["tenant_id", "customer_id", "at"],
        unique=False,
    )
    op.create_table(
        "loyalty_balances",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("lifetime_points", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("credit_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tier", sa.String(32), nullable=False, server_default=""),
        sa.Column("overdraft_device_id", sa.String(64), nullable=True),
        sa.Column("overdraft_store_id", sa.String(64), nullable=True),
        sa.Column("overdrawn_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_loyalty_balances")),
    )
    op.create_index(
        "ix_loyalty_balances_overdrawn", "loyalty_balances", ["overdrawn_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("loyalty_balances")
    op.drop_table("loyalty_movements")
    op.drop_index("ix_sales_tenant_customer", table_name="sales")
    with op.batch_alter_table("sales") as batch:
        batch.drop_column("customer_id")
