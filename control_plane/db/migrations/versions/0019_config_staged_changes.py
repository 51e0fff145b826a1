"""configuration changes through waves: the change, its registers, the driver's lease (issue 12;
control_plane/configuration/staged.py)

Revision ID: 0019_config_staged_changes
Revises: 0018_report_rollups_detail
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_config_staged_changes"
down_revision = "0018_report_rollups_detail"
branch_labels = None
depends_on = "0015_config_history"


def upgrade() -> None:
    op.create_table(
        "config_changes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("waves", sa.Text(), nullable=False),
        sa.Column("health_s", sa.Integer(), nullable=False),
        sa.Column("deadline_s", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_wave", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wave_reached_at", sa.BigInteger()),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_config_changes_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_config_changes"),
    )
    op.create_index("ix_config_changes_tenant_id", "config_changes", ["tenant_id"])
    op.create_table(
        "config_change_devices",
        sa.Column("change_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("version", sa.BigInteger()),
        sa.Column("state_at", sa.BigInteger(), nullable=False),
        sa.Column("notified_at", sa.BigInteger()),
        sa.Column("applied_at", sa.BigInteger()),
        sa.Column("rolled_back_to", sa.BigInteger()),
        sa.Column("rolled_back_at", sa.BigInteger()),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["config_changes.id"],
            name="fk_config_change_devices_change_id_config_changes",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_config_change_devices_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("change_id", "device_id", name="pk_config_change_devices"),
    )
    op.create_index("ix_config_change_devices_device_id", "config_change_devices", ["device_id"])
    op.create_table(
        "config_change_leases",
        sa.Column("change_id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["config_changes.id"],
            name="fk_config_change_leases_change_id_config_changes",
        ),
        sa.PrimaryKeyConstraint("change_id", name="pk_config_change_leases"),
    )


def downgrade() -> None:
    op.drop_table("config_change_leases")
    op.drop_index("ix_config_change_devices_device_id", table_name="config_change_devices")
    op.drop_table("config_change_devices")
    op.drop_index("ix_config_changes_tenant_id", table_name="config_changes")
    op.drop_table("config_changes")
