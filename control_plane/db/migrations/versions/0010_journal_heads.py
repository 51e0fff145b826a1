"""signed journal heads and the certificates that signed them

Revision ID: 0010_journal_heads
Revises: 0009_device_logs
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_journal_heads"
down_revision = "0009_device_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_certificates",
        sa.Column("fingerprint", sa.String(43), primary_key=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("der", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_journal_certificates_device_id", "journal_certificates", ["device_id"])
    op.create_table(
        "journal_heads",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("head_sig", sa.String(1024), nullable=False),
        sa.Column("cert_fp", sa.String(43), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("journal_heads")
    op.drop_index("ix_journal_certificates_device_id", table_name="journal_certificates")
    op.drop_table("journal_certificates")
