"""store tags: the groups a store belongs to (configuration's store groups, rollout targets)

Revision ID: 0010b_store_tags
Revises: 0010_journal_heads
"""

import sqlalchemy as sa
from alembic import op

revision = "0010b_store_tags"
down_revision = "0010_journal_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_tags",
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "tag", name="pk_store_tags"),
    )
    op.create_index("ix_store_tags_tag", "store_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_store_tags_tag", table_name="store_tags")
    op.drop_table("store_tags")
