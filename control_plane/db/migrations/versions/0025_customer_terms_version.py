"""customers' search terms versioned (issue 14): ``customers.terms_version`` says which
``blind_index.TERMS_VERSION`` wrote a customer's search terms. Every customer before this is 1
(name prefixes only); version 2 adds the word-pair terms that make a name search fast at
1,000,000 customers. SQL cannot compute them (they are HMACs of the sealed profile under the
tenant's key), so the control plane re-indexes the older customers in the background
(``control_plane.customers.service.reindex_customers``); until a tenant has none left, its name
searches intersect the name prefixes as before.

Revision ID: 0025_customer_terms_version
Revises: 0021_customers
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_customer_terms_version"
down_revision = "0021_customers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("terms_version", sa.SmallInteger(), nullable=False, server_default="1")
        )
    # a search asks whether its tenant still has customers to re-index: one index probe
    op.create_index(
        "ix_customers_tenant_terms_version", "customers", ["tenant_id", "terms_version"]
    )


def downgrade() -> None:
    op.drop_index("ix_customers_tenant_terms_version", table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("terms_version")
