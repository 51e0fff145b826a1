"""layered configuration: settings per layer, store groups and tags, effective documents,
reports, drift, store staff (control_plane/configuration/tables.py)

Revision ID: 0012_configuration
Revises: 0010b_store_tags
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_configuration"
down_revision = "0010b_store_tags"  # creates store_tags, shared with rollouts
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_settings",
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(254), nullable=False),
        sa.Column("set_at", sa.BigInteger(), nullable=False),
        sa.Column("audit_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("layer", "target", "key", name="pk_config_settings"),
    )
    op.create_index("ix_config_settings_tenant_id", "config_settings", ["tenant_id"])
    op.create_table(
        "config_groups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_config_groups_tenant_id", "config_groups", ["tenant_id"])
    op.create_table(
        "config_effective",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("computed_at", sa.BigInteger(), nullable=False),
        sa.Column("published_version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("published_at", sa.BigInteger()),
    )
    op.create_index("ix_config_effective_tenant_id", "config_effective", ["tenant_id"])
    op.create_table(
        "config_reports",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("hashes", sa.Text()),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "config_drift",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "key", name="pk_config_drift"),
    )
    op.create_table(
        "store_staff",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("pin_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(254), nullable=False),
    )
    op.create_index("ix_store_staff_store_id", "store_staff", ["store_id"])


def downgrade() -> None:
    op.drop_index("ix_store_staff_store_id", table_name="store_staff")
    op.drop_table("store_staff")
    op.drop_table("config_drift")
    op.drop_table("config_reports")
    op.drop_index("ix_config_effective_tenant_id", table_name="config_effective")
    op.drop_table("config_effective")
    op.drop_index("ix_config_groups_tenant_id", table_name="config_groups")
    op.drop_table("config_groups")
    op.drop_index("ix_config_settings_tenant_id", table_name="config_settings")
    op.drop_table("config_settings")
