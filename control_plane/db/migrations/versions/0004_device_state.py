"""reported device state, remote commands, journal by kind

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_state",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("config_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("app_release", sa.String(length=100), server_default="", nullable=False),
        sa.Column("slot", sa.String(length=16), server_default="", nullable=False),
        sa.Column("peripherals", sa.Text(), server_default="{}", nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_state_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_state")),
    )
    op.create_table(
        "commands",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("deadline_at", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_commands_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    op.create_index("ix_commands_device_created", "commands", ["device_id", "created_at"])
    op.create_index("ix_journal_kind_ts", "journal", ["kind", "ts"])


def downgrade() -> None:
    op.drop_index("ix_journal_kind_ts", table_name="journal")
    op.drop_index("ix_commands_device_created", table_name="commands")
    op.drop_table("commands")
    op.drop_table("device_state")
