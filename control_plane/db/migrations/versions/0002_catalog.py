"""catalog items and versions

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_catalog_versions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_catalog_versions")),
    )
    op.create_table(
        "catalog_items",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_catalog_items_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "item_id", name=op.f("pk_catalog_items")),
    )
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_items_tenant_version", ["tenant_id", "version"])


def downgrade() -> None:
    with op.batch_alter_table("catalog_items", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_items_tenant_version")
    op.drop_table("catalog_items")
    op.drop_table("catalog_versions")
