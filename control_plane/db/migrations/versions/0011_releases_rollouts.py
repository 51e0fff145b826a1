"""releases (signed bundles) and staged rollouts: waves, per-device states, the driver's lease

Revision ID: 0011_releases_rollouts
Revises: 0010_journal_heads (and needs 0010b_store_tags: rollouts target stores by tag)
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_releases_rollouts"
down_revision = "0010_journal_heads"
branch_labels = None
depends_on = "0010b_store_tags"  # store_tags, shared with configuration


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("min_agent_version", sa.String(100), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(254), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column(
            "release_version", sa.String(100), sa.ForeignKey("releases.version"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("waves", sa.Text(), nullable=False),
        sa.Column("deadlines", sa.Text(), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("on_silence", sa.String(16), nullable=False, server_default="time_out"),
        sa.Column("force", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("maintenance_window", sa.String(11)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("wave_reached_at", sa.BigInteger()),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_rollouts_tenant_id", "rollouts", ["tenant_id"])
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", sa.String(32), sa.ForeignKey("rollouts.id"), nullable=False),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("previous_release", sa.String(100), nullable=False, server_default=""),
        sa.Column("state_at", sa.BigInteger(), nullable=False),
        sa.Column("deadline_at", sa.BigInteger()),
        sa.Column("notified_at", sa.BigInteger()),
        sa.Column("published_at", sa.BigInteger()),
        sa.Column("reported_succeeded", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("rolled_back_at", sa.BigInteger()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("rollout_id", "device_id"),
    )
    op.create_index("ix_rollout_devices_device_id", "rollout_devices", ["device_id"])
    op.create_index(
        "ix_rollout_devices_rollout_id_state", "rollout_devices", ["rollout_id", "state"]
    )
    op.create_table(
        "rollout_device_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("rollout_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_rollout_device_history_rollout_id_device_id",
        "rollout_device_history",
        ["rollout_id", "device_id"],
    )
    op.create_table(
        "rollout_leases",
        sa.Column("rollout_id", sa.String(32), sa.ForeignKey("rollouts.id"), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "store_windows",
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id"), primary_key=True),
        sa.Column("maintenance_window", sa.String(11), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_windows")
    op.drop_table("rollout_leases")
    op.drop_index(
        "ix_rollout_device_history_rollout_id_device_id", table_name="rollout_device_history"
    )
    op.drop_table("rollout_device_history")
    op.drop_index("ix_rollout_devices_rollout_id_state", table_name="rollout_devices")
    op.drop_index("ix_rollout_devices_device_id", table_name="rollout_devices")
    op.drop_table("rollout_devices")
    op.drop_index("ix_rollouts_tenant_id", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("releases")
