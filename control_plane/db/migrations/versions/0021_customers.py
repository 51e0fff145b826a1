"""customers (issue 14): per-tenant keys sealed under the master key, customer profiles sealed
under their own keys, keyed blind-index search terms and the outbox of digital receipts
(control_plane/customers/tables.py)

Revision ID: 0021_customers
Revises: 0018_report_rollups_detail
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_customers"
down_revision = "0018_report_rollups_detail"  # as assigned for issue 14
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_tenant_keys",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("master_key_id", sa.String(16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_customer_tenant_keys")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(14), nullable=False),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_profile", sa.LargeBinary(), nullable=True),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("receipt_consent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("consent_at", sa.BigInteger(), nullable=True),
        sa.Column("consent_via", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("erased_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_index("ix_customers_tenant_created", "customers", ["tenant_id", "created_at"])
    op.create_table(
        "customer_search_terms",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("term", sa.LargeBinary(16), nullable=False),
        sa.Column("customer_id", sa.String(14), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "term", "customer_id", name=op.f("pk_customer_search_terms")
        ),
    )
    op.create_index("ix_customer_search_terms_customer", "customer_search_terms", ["customer_id"])
    op.create_table(
        "customer_receipts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(14), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sale_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("done_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_receipts")),
        sa.UniqueConstraint("device_id", "seq", name="uq_customer_receipts_record"),
    )
    op.create_index("ix_customer_receipts_due", "customer_receipts", ["status", "next_at"])
    op.create_index("ix_customer_receipts_customer", "customer_receipts", ["customer_id"])


def downgrade() -> None:
    op.drop_table("customer_receipts")
    op.drop_table("customer_search_terms")
    op.drop_table("customers")
    op.drop_table("customer_tenant_keys")
