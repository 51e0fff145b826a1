"""configuration history: every change to a layer as a version of it, every version of a device's
effective document (control_plane/configuration/tables.py)

Revision ID: 0015_config_history
Revises: 0012_configuration
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_config_history"
down_revision = "0012_configuration"  # the configuration tables' head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_layer_versions",
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("keys", sa.Text(), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("restored", sa.BigInteger()),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("audit_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("layer", "target", "version", name="pk_config_layer_versions"),
    )
    op.create_index("ix_config_layer_versions_tenant_id", "config_layer_versions", ["tenant_id"])
    op.create_table(
        "config_device_versions",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("keys", sa.Text()),
        sa.Column("layer", sa.String(16)),
        sa.Column("target", sa.String(64)),
        sa.Column("layer_version", sa.BigInteger()),
        sa.Column("actor", sa.String(254)),
        sa.Column("audit_id", sa.BigInteger()),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "version", name="pk_config_device_versions"),
    )
    op.create_index("ix_config_device_versions_tenant_id", "config_device_versions", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_config_device_versions_tenant_id", table_name="config_device_versions")
    op.drop_table("config_device_versions")
    op.drop_index("ix_config_layer_versions_tenant_id", table_name="config_layer_versions")
    op.drop_table("config_layer_versions")
