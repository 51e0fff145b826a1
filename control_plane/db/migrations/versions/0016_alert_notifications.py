"""alert notifications: per-tenant channels (signed webhook, e-mail) and the durable outbox their
deliveries are claimed from (control_plane/notifications/tables.py)

Revision ID: 0016_alert_notifications
Revises: 0015_config_history
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_alert_notifications"
down_revision = "0015_config_history"  # the newest revision when this was written
branch_labels = None
depends_on = "0013_reports_alerts"  # notifications tell of alerts


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(100), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=True),
        sa.Column("kinds", sa.Text(), nullable=False, server_default=""),
        sa.Column("min_severity", sa.String(16), nullable=False, server_default="warning"),
        sa.Column("on_clear", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(254), nullable=False),
    )
    op.create_index("ix_notification_channels_tenant", "notification_channels", ["tenant_id"])
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("done_at", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("channel_id", "alert_id", "event", name="uq_notification_outbox_event"),
    )
    op.create_index("ix_notification_outbox_due", "notification_outbox", ["status", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_index("ix_notification_channels_tenant", table_name="notification_channels")
    op.drop_table("notification_channels")
