"""rollout indexes: the driver's tick reads the devices that changed or ran late, not every
device of the rollout (issue 11; control_plane/rollouts/tables.py says which query uses which)

Revision ID: 0017_rollout_indexes
Revises: 0016_alert_notifications
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_rollout_indexes"
down_revision = "0016_alert_notifications"  # the newest revision when this was written
branch_labels = None
depends_on = "0011_releases_rollouts"

_UNPUBLISHED = "notified_at IS NOT NULL AND published_at IS NULL AND rolled_back_at IS NULL"


def upgrade() -> None:
    # (rollout_id, state) is this one's prefix: kept twice it would only cost every update.
    op.drop_index("ix_rollout_devices_rollout_id_state", table_name="rollout_devices")
    op.create_index(
        "ix_rollout_devices_rollout_id_state_deadline_at",
        "rollout_devices",
        ["rollout_id", "state", "deadline_at"],
    )
    op.create_index(
        "ix_rollout_devices_rollout_id_wave_state",
        "rollout_devices",
        ["rollout_id", "wave", "state"],
    )
    op.create_index(
        "ix_rollout_devices_rollout_id_notified_at",
        "rollout_devices",
        ["rollout_id", "notified_at"],
    )
    op.create_index(
        "ix_rollout_devices_unpublished",
        "rollout_devices",
        ["rollout_id", "published_at"],  # tables.py says why published_at
        sqlite_where=sa.text(_UNPUBLISHED),
        postgresql_where=sa.text(_UNPUBLISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_rollout_devices_unpublished", table_name="rollout_devices")
    op.drop_index("ix_rollout_devices_rollout_id_notified_at", table_name="rollout_devices")
    op.drop_index("ix_rollout_devices_rollout_id_wave_state", table_name="rollout_devices")
    op.drop_index("ix_rollout_devices_rollout_id_state_deadline_at", table_name="rollout_devices")
    op.create_index(
        "ix_rollout_devices_rollout_id_state", "rollout_devices", ["rollout_id", "state"]
    )
