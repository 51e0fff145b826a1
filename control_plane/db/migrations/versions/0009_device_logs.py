"""logs appliances upload on request (control_plane/devices/logs.py)

Revision ID: 0009_device_logs
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_device_logs"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_logs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_logs_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_logs")),
    )
    op.create_index("ix_device_logs_device_received", "device_logs", ["device_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_device_logs_device_received", table_name="device_logs")
    op.drop_table("device_logs")
